'use strict';
// A StanzaJS media session that behaves like Conversations' libwebrtc stack:
// candidates inline in session-initiate / session-accept (rfc3264 mode) or trickled
// in transport-info, optional `a=ice-options:trickle renomination` munging,
// codec preferences, and loopback-only candidates.

const SDPUtils = require('sdp');
const MediaSession = require('stanza/jingle/MediaSession').default;
const { importFromSDP } = require('stanza/jingle/sdp/Intermediate');
const { convertIntermediateToRequest } = require('stanza/jingle/sdp/Protocol');

const LOOPBACK = new Set(['127.0.0.1', '::1']);

function isLoopback(ip) {
  return LOOPBACK.has(ip);
}

/** Keeps only loopback candidates in a Jingle request object (in place). */
function filterJingleCandidates(jingle) {
  let dropped = 0;
  for (const content of (jingle && jingle.contents) || []) {
    const transport = content.transport;
    if (!transport || !transport.candidates) continue;
    const keep = transport.candidates.filter((c) => isLoopback(c.ip));
    dropped += transport.candidates.length - keep.length;
    transport.candidates = keep;
  }
  return dropped;
}

/** Adds `renomination` to every `a=ice-options` line (adding one if missing). */
function mungeRenomination(sdp) {
  const lines = sdp.split('\r\n');
  let seen = false;
  const out = lines.map((line) => {
    if (line.startsWith('a=ice-options:')) {
      seen = true;
      return line.includes('renomination') ? line : `${line} renomination`;
    }
    return line;
  });
  if (!seen) {
    const idx = out.findIndex((l) => l.startsWith('a=ice-ufrag:'));
    out.splice(idx >= 0 ? idx : out.length - 1, 0, 'a=ice-options:trickle renomination');
  }
  return out.join('\r\n');
}

/** Orders the transceivers' codecs: the named ones first (telephone-event kept). */
function applyCodecPreferences(pc, RTCRtpReceiver, names) {
  if (!names || !names.length) return;
  const caps = RTCRtpReceiver.getCapabilities('audio').codecs;
  const wanted = names.map((n) => n.toLowerCase());
  const chosen = [];
  for (const name of wanted) {
    for (const c of caps) {
      if (c.mimeType.toLowerCase() === `audio/${name}`) chosen.push(c);
    }
  }
  for (const c of caps) {
    if (c.mimeType.toLowerCase() === 'audio/telephone-event' && !chosen.includes(c)) chosen.push(c);
  }
  for (const t of pc.getTransceivers()) {
    t.setCodecPreferences(chosen);
  }
}

function waitGatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', check);
      resolve(false);
    }, timeoutMs);
    function check() {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve(true);
      }
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

class TestbedSession extends MediaSession {
  /**
   * opts.tb: { inline: bool, renomination: bool, codecs: [names], RTCRtpReceiver,
   *            gatherTimeoutMs, onLog(fn) }
   */
  constructor(opts) {
    super(opts);
    this.tb = { inline: false, renomination: false, codecs: null, gatherTimeoutMs: 5000, ...(opts.tb || {}) };
    this.candidatesSent = 0;
    this.candidatesInline = 0;
    // Conversations writes both SDPs itself (the remote one from the peer's Jingle),
    // and libwebrtc M106 nominates with NOMINATION (0xC001) only when both carry
    // `renomination`: munge the remote description too.
    const setRemote = this.pc.setRemoteDescription.bind(this.pc);
    this.pc.setRemoteDescription = (desc) =>
      setRemote(this.tb.renomination && desc && desc.sdp ? { type: desc.type, sdp: mungeRenomination(desc.sdp) } : desc);
  }

  async localDescription(kind) {
    if (this.pc.setCodecNames) {
      // the chromium engine: setCodecPreferences runs inside the page
      if (this.tb.codecs && this.tb.codecs.length) await this.pc.setCodecNames(this.tb.codecs);
    } else {
      applyCodecPreferences(this.pc, this.tb.RTCRtpReceiver, this.tb.codecs);
    }
    const desc = kind === 'offer' ? await this.pc.createOffer({}) : await this.pc.createAnswer({});
    const sdp = this.tb.renomination ? mungeRenomination(desc.sdp) : desc.sdp;
    await this.pc.setLocalDescription({ type: kind, sdp });
    if (this.tb.inline) {
      await waitGatheringComplete(this.pc, this.tb.gatherTimeoutMs);
      return this.pc.localDescription.sdp;
    }
    return sdp;
  }

  buildRequest(sdp, action) {
    const json = importFromSDP(sdp);
    for (const media of json.media) {
      media.candidates = (media.candidates || []).filter((c) => isLoopback(c.ip || c.address));
      if (!this.tb.inline) media.candidates = [];
      this.candidatesInline += media.candidates.length;
    }
    const jingle = convertIntermediateToRequest(json, this.role, this.transportType);
    jingle.sid = this.sid;
    jingle.action = action;
    for (const content of jingle.contents || []) content.creator = 'initiator';
    return jingle;
  }

  async start(opts, next) {
    this.state = 'pending';
    this.role = 'initiator';
    next = typeof opts === 'function' ? opts : next || (() => undefined);
    try {
      await this.processLocal('session-initiate', async () => {
        const sdp = await this.localDescription('offer');
        this.send('session-initiate', this.buildRequest(sdp, 'session-initiate'));
      });
      next();
    } catch (err) {
      this._log('error', 'Could not create WebRTC offer', err);
      this.end('failed-application', true);
    }
  }

  async accept(opts, next) {
    next = typeof opts === 'function' ? opts : next || (() => undefined);
    this.state = 'active';
    this.role = 'responder';
    try {
      await this.processLocal('session-accept', async () => {
        const sdp = await this.localDescription('answer');
        await this.processBufferedCandidates();
        this.send('session-accept', this.buildRequest(sdp, 'session-accept'));
      });
      next();
    } catch (err) {
      this._log('error', 'Could not create WebRTC answer', err);
      this.end('failed-application');
    }
  }

  // StanzaJS ends a session a second time when libwebrtc reports the closed
  // peer connection, which would send a second session-terminate: end once.
  end(reason = 'success', silent = false) {
    if (this.state === 'ended') return;
    super.end(reason, silent);
  }

  onIceCandidate(e) {
    if (this.tb.inline || !e.candidate || !e.candidate.candidate) return;
    const parsed = SDPUtils.parseCandidate(e.candidate.candidate);
    if (!isLoopback(parsed.ip || parsed.address)) return;
    this.candidatesSent++;
    super.onIceCandidate(e);
  }

  onIceEndOfCandidates() {
    if (this.tb.inline) return;
    super.onIceEndOfCandidates();
  }
}

module.exports = { TestbedSession, filterJingleCandidates, mungeRenomination, isLoopback };
