'use strict';
// libwebrtc test-bed client: StanzaJS + @roamhq/wrtc (or, with `engine: "chromium"`,
// Debian's Chromium through playwright-core: see chromium.js), extended with XEP-0353
// so it behaves like Conversations. Driven by the Rust harness (tests/src/webrtc.rs) over
// JSON lines: commands on stdin, events on stdout. Diagnostics go to stderr.
//
// Usage: node client.js CONFIG   (CONFIG is a JSON object or the path of a JSON file)
//
// Config keys (defaults in DEFAULTS below):
//   jid, password, resource        account; resource defaults to "testbed"
//   websocket_url | bosh_url       how to reach the server
//   stanza_log                     file that receives every stanza sent/received (JSON lines)
//   tone_hz, tone_amplitude        the sine tone we send (amplitude: fraction of full scale)
//   candidates                     "auto" (inline iff the peer advertises urn:ietf:rfc:3264),
//                                  "inline" or "trickle"
//   advertise_rfc3264              put urn:ietf:rfc:3264 into our own disco#info
//   advertise_jmi                  put urn:xmpp:jingle-message:0 into our own disco#info
//                                  (false: like Gajim 1.x, callers must session-initiate)
//   renomination                   munge `a=ice-options:trickle renomination` into our SDP
//   codecs                         e.g. ["PCMU"]: setCodecPreferences before offer/answer
//   on_propose                     "answer" | "reject" | "ignore"
//   send_ringing                   send JMI <ringing/> on propose
//   answer_delay_ms                delay between <ringing/> and <proceed/>
//   reject_reason                  Jingle reason condition for <reject/> (e.g. "busy")
//   accept_direct                  accept a session-initiate that had no JMI before it
//   auto_subscribe                 approve and reciprocate presence subscription requests
//   proceed_timeout_ms             caller gives up (retract) after this long
//   engine                         "wrtc" (default: @roamhq/wrtc in Node) or "chromium"
//                                  (a real RTCPeerConnection in headless Chromium; the
//                                  only engine with RTCDTMFSender)
//   chromium_path                  the Chromium binary (default /usr/bin/chromium)
//
// Commands:  {"cmd":"call","to":JID,"jmi":true}  {"cmd":"hangup","reason":"success"}
//   {"cmd":"retract"} {"cmd":"disco","to":JID,"node":…} {"cmd":"subscribe","to":JID}
//   {"cmd":"presence"} {"cmd":"stats"} {"cmd":"audio","window_ms":1000}
//   {"cmd":"ice_restart"} {"cmd":"dtmf","digits":"123","duration_ms":100,"gap_ms":70}
//   {"cmd":"dtmf_heard"} {"cmd":"send_raw","xml":"…"} {"cmd":"ping"} {"cmd":"quit"}
// Unprompted events include `tonechange` (chromium engine: RTCDTMFSender started the
// tone `tone`, "" at the end) and `dtmf_heard` (a DTMF key tone detected in the
// received audio, with its duration_ms) and `ice_restart_answered` (after an
// `ice_restart` by the responder: the peer's transport-info applied as the answer).
// Every command may carry "req" (any value), echoed in its reply event.

const fs = require('fs');
const readline = require('readline');
const wrtc = require('@roamhq/wrtc');
const { createClient, JID, Utils } = require('stanza');
const jmi = require('./jmi.js');
const { ToneSource, AudioAnalyser } = require('./audio.js');
const { TestbedSession, filterJingleCandidates, mungeRenomination } = require('./session.js');
const SDPUtils = require('sdp');
const { importFromSDP } = require('stanza/jingle/sdp/Intermediate');
const { convertCandidateToIntermediate } = require('stanza/jingle/sdp/Protocol');
const EntityCaps = require('stanza/helpers/LegacyEntityCapabilities');
const chromium = require('./chromium.js');

const DEFAULTS = {
  resource: 'testbed',
  tone_hz: 440,
  tone_amplitude: 0.3,
  candidates: 'auto',
  advertise_rfc3264: false,
  advertise_jmi: true,
  renomination: false,
  codecs: null,
  on_propose: 'answer',
  send_ringing: true,
  answer_delay_ms: 0,
  reject_reason: 'busy',
  accept_direct: true,
  auto_subscribe: true,
  proceed_timeout_ms: 30000,
  gather_timeout_ms: 5000,
  engine: 'wrtc',
  chromium_path: '/usr/bin/chromium',
};

const NS_RFC3264 = 'urn:ietf:rfc:3264';
const T0 = Date.now();

function loadConfig() {
  const arg = process.argv[2];
  if (!arg) {
    process.stderr.write('usage: node client.js CONFIG_JSON|CONFIG_FILE\n');
    process.exit(2);
  }
  const text = arg.trim().startsWith('{') ? arg : fs.readFileSync(arg, 'utf8');
  return { ...DEFAULTS, ...JSON.parse(text) };
}

const cfg = loadConfig();
const CHROMIUM = cfg.engine === 'chromium';
const stanzaLog = cfg.stanza_log ? fs.openSync(cfg.stanza_log, 'a') : undefined;

function emit(event, data = {}) {
  process.stdout.write(`${JSON.stringify({ event, t: Date.now() - T0, ...data })}\n`);
}

function debug(...args) {
  process.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(3)}] ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}\n`);
}

function logStanza(dir, xml) {
  if (stanzaLog !== undefined) fs.writeSync(stanzaLog, `${JSON.stringify({ t: Date.now() - T0, dir, xml })}\n`);
}

// ---------------------------------------------------------------- client

const transports = cfg.websocket_url
  ? { websocket: cfg.websocket_url, bosh: false }
  : { websocket: false, bosh: cfg.bosh_url };

const client = createClient({
  jid: cfg.jid,
  password: cfg.password,
  resource: cfg.resource,
  transports,
  allowResumption: false,
  capsNode: 'https://testbed.jingle-sip-gateway.invalid',
  jingle: {
    hasRTCPeerConnection: true,
    advertiseAudio: true,
    advertiseVideo: false,
    advertiseFileTransfer: false,
    trickleIce: true,
    iceServers: [],
    createPeerConnection: (_session, opts) =>
      CHROMIUM ? new chromium.ChromiumPeerConnection({ ...opts, iceServers: [] }) : new wrtc.RTCPeerConnection({ ...opts, iceServers: [] }),
    prepareSession: (opts) => {
      const s = new TestbedSession({ ...opts, tb: sessionOptions(false) });
      return s;
    },
  },
});
jmi.register(client);
if (cfg.advertise_jmi) client.disco.addFeature(jmi.NS_JMI);
if (cfg.advertise_rfc3264) client.disco.addFeature(NS_RFC3264);

client.on('raw:incoming', (xml) => logStanza('in', xml));
client.on('raw:outgoing', (xml) => logStanza('out', xml));

// Candidates from the far end: loopback only (the harness runs in a namespace with
// only `lo`, this keeps the client honest outside of it too).
client.removeAllListeners('iq:set:jingle');
client.on('iq:set:jingle', (iq) => {
  const dropped = filterJingleCandidates(iq.jingle);
  if (dropped) debug('dropped non-loopback remote candidates:', dropped);
  client.jingle.process(iq);
});

function sessionOptions(inline) {
  return {
    inline,
    renomination: cfg.renomination,
    codecs: cfg.codecs,
    RTCRtpReceiver: wrtc.RTCRtpReceiver,
    gatherTimeoutMs: cfg.gather_timeout_ms,
  };
}

// ---------------------------------------------------------------- state

const presences = new Map(); // full JID -> { caps }
const discoCache = new Map(); // JID -> features[]
const calls = new Map(); // sid -> call record
let currentSid;

function callRecord(sid) {
  if (!calls.has(sid)) {
    calls.set(sid, { sid, peer: undefined, jmi: false, session: undefined, tone: undefined, analyser: undefined, proposeTimer: undefined, state: 'new' });
  }
  return calls.get(sid);
}

async function disco(jid, node, caps) {
  const resp = await client.sendIQ({ disco: { node, type: 'info' }, to: jid, type: 'get' });
  const info = { extensions: [], features: [], identities: [], ...resp.disco };
  const features = info.features;
  const event = { jid, node, features, identities: info.identities };
  if (caps) {
    // XEP-0115 §5.4: the ver must match the result, else Conversations drops it. StanzaJS
    // gives identities the xml:lang inherited from the <iq/> (Prosody sets one); only
    // an identity's own xml:lang belongs in the verification string.
    const identities = info.identities.map((i) => (i.lang === resp.lang ? { ...i, lang: undefined } : i));
    event.caps_verified = EntityCaps.verify({ ...info, identities }, caps.algorithm, caps.value);
  }
  emit('disco', event);
  return caps && !event.caps_verified ? [] : features;
}

/**
 * The features of a resource, like Conversations learns them: through its XEP-0115
 * caps (disco#info of node#ver, verified) when its presence carried caps, else a
 * plain disco#info. Cached per JID.
 */
async function featuresOf(jid) {
  if (discoCache.has(jid)) return discoCache.get(jid);
  const pres = presences.get(jid);
  const caps = pres && pres.caps && pres.caps[0];
  try {
    const features = caps ? await disco(jid, `${caps.node}#${caps.value}`, caps) : await disco(jid);
    discoCache.set(jid, features);
    return features;
  } catch (err) {
    emit('disco_error', { jid, error: errorText(err) });
    return [];
  }
}

function errorText(err) {
  if (!err) return 'unknown';
  if (err.error) return err.error.condition || JSON.stringify(err.error);
  return err.message || String(err);
}

async function wantInline(peer) {
  if (cfg.candidates === 'inline') return true;
  if (cfg.candidates === 'trickle') return false;
  const features = await featuresOf(peer);
  return features.includes(NS_RFC3264);
}

// ---------------------------------------------------------------- media sessions

function attachMedia(call, session) {
  call.session = session;
  call.tone = CHROMIUM ? new chromium.PageTone(cfg.tone_hz, cfg.tone_amplitude) : new ToneSource(cfg.tone_hz, cfg.tone_amplitude);
  call.tone.start();
  const stream = CHROMIUM ? undefined : new wrtc.MediaStream([call.tone.track]);
  session.addTrack(call.tone.track, stream);
  session.pc.addEventListener('tonechange', (e) => {
    emit('tonechange', { sid: call.sid, tone: e.tone, at_ms: e.at });
  });
  session.pc.addEventListener('iceconnectionstatechange', () => {
    emit('ice', { sid: call.sid, state: session.pc.iceConnectionState });
  });
  session.pc.addEventListener('connectionstatechange', () => {
    emit('connection', { sid: call.sid, state: session.pc.connectionState });
  });
}

client.jingle.on('peerTrackAdded', (session, track) => {
  // arrives while the session-initiate is processed, before 'incoming'
  const call = callRecord(session.sid);
  if (track.kind !== 'audio') return;
  if (call.analyser) call.analyser.stop();
  const onDigit = (d) => emit('dtmf_heard', { sid: session.sid, ...d });
  if (CHROMIUM) {
    call.analyser = new AudioAnalyser(null, 4, onDigit);
    session.pc.onaudio = (data) => call.analyser && call.analyser.onData(data);
  } else {
    call.analyser = new AudioAnalyser(track, 4, onDigit);
  }
  emit('track', { sid: session.sid, kind: track.kind });
});

client.jingle.on('accepted', (session) => {
  emit('accepted', { sid: session.sid, from: session.peerID });
});

client.jingle.on('terminated', (session, reason) => {
  const call = callRecord(session.sid);
  if (call.terminated) return; // StanzaJS ends a session again when its pc closes
  call.terminated = true;
  emit('terminated', { sid: session.sid, reason: reason || {} });
  endMedia(call);
});

client.jingle.on('outgoing', (session) => {
  emit('session_initiate_sent', {
    sid: session.sid,
    to: session.peerID,
    inline: session.tb.inline,
    candidates: session.candidatesInline,
  });
});

client.jingle.on('send', (data) => {
  if (data.type === 'set' && data.jingle && data.jingle.action === 'session-accept') {
    const s = client.jingle.sessions[data.jingle.sid];
    emit('session_accept_sent', { sid: data.jingle.sid, to: data.to, inline: s ? s.tb.inline : undefined, candidates: s ? s.candidatesInline : 0 });
  }
});

client.jingle.on('log', (level, message) => {
  if (level !== 'debug') debug('jingle', level, message);
});

client.jingle.on('incoming', async (session) => {
  const call = callRecord(session.sid);
  const fromJmi = call.jmi && call.state === 'proceeded' && call.peer === session.peerID;
  call.peer = session.peerID;
  emit('incoming', { sid: session.sid, from: session.peerID, jmi: fromJmi });
  if (!fromJmi && !cfg.accept_direct) {
    session.decline();
    return;
  }
  try {
    session.tb.inline = await wantInline(session.peerID);
    attachMedia(call, session);
    call.state = 'accepting';
    currentSid = session.sid;
    await session.accept();
    call.state = 'active';
  } catch (err) {
    emit('error', { message: `accept failed: ${errorText(err)}` });
  }
});

function endMedia(call) {
  if (call.proposeTimer) clearTimeout(call.proposeTimer);
  call.proposeTimer = undefined;
  if (call.tone) call.tone.stop();
  call.tone = undefined;
  // keep the analyser's last measurement available; stop the sink
  if (call.analyser) {
    call.lastAudio = call.analyser.measure(1000);
    call.lastHeard = call.analyser.dtmf.heard;
    call.analyser.stop();
    call.analyser = undefined;
  }
  call.state = 'ended';
}

// ---------------------------------------------------------------- JMI

function sendJmi(to, action, id, extra = {}) {
  const msg = { to, type: 'chat', id: `jm-${action}-${id}`, jmi: { action, id, ...extra } };
  if (action === 'propose') msg.receipt = { type: 'request' };
  if (action !== 'ringing') msg.processingHints = { store: true };
  client.sendMessage(msg);
  emit('jmi_sent', { action, to, id });
}

client.on('message', async (msg) => {
  if (msg.receipt && msg.receipt.type === 'received') emit('receipt', { from: msg.from, id: msg.receipt.id });
  if (!msg.jmi) return;
  const { action, id } = msg.jmi;
  emit('jmi', { action, from: msg.from, id, media: msg.jmi.media, reason: msg.jmi.reason });
  const call = callRecord(id);
  switch (action) {
    case 'propose':
      if (JID.equalBare(msg.from, client.jid)) return; // our own, via carbons
      call.peer = msg.from;
      call.jmi = true;
      call.state = 'proposed';
      currentSid = id;
      if (cfg.on_propose === 'ignore') return;
      if (cfg.on_propose === 'reject') {
        sendJmi(msg.from, 'reject', id, { reason: { condition: cfg.reject_reason } });
        call.state = 'ended';
        return;
      }
      if (cfg.send_ringing) sendJmi(msg.from, 'ringing', id);
      setTimeout(() => {
        if (call.state !== 'proposed') return;
        call.state = 'proceeded';
        sendJmi(msg.from, 'proceed', id);
      }, cfg.answer_delay_ms);
      return;
    case 'proceed':
      if (call.state !== 'proposing') {
        emit('error', { message: `unexpected proceed for ${id} in state ${call.state}` });
        return;
      }
      if (call.proposeTimer) clearTimeout(call.proposeTimer);
      call.proposeTimer = undefined;
      call.state = 'initiating';
      call.peer = msg.from;
      await initiate(call, msg.from);
      return;
    case 'reject':
    case 'retract':
      if (call.proposeTimer) clearTimeout(call.proposeTimer);
      endMedia(call);
      return;
    default:
  }
});

// ---------------------------------------------------------------- caller

async function initiate(call, peer) {
  const inline = await wantInline(peer);
  const session = new TestbedSession({
    config: client.jingle.config.peerConnectionConfig,
    constraints: client.jingle.config.peerConnectionConstraints,
    iceServers: [],
    initiator: true,
    parent: client.jingle,
    peerID: peer,
    sid: call.sid,
    tb: sessionOptions(inline),
  });
  client.jingle.addSession(session);
  attachMedia(call, session);
  await session.start();
}

async function call(cmd) {
  const to = cmd.to;
  const sid = cmd.id || Utils.uuid();
  const rec = callRecord(sid);
  rec.peer = to;
  currentSid = sid;
  const useJmi = cmd.jmi !== false;
  if (!useJmi) {
    rec.state = 'initiating';
    await initiate(rec, to);
    return sid;
  }
  // Like Conversations: learn the peer's features first (its resources' caps, or
  // the bare JID), then propose to the BARE JID.
  const bare = JID.toBare(to);
  const resources = [...presences.keys()].filter((j) => JID.equalBare(j, bare) && j !== bare);
  for (const jid of resources.length ? resources : [bare]) await featuresOf(jid);
  rec.jmi = true;
  rec.state = 'proposing';
  sendJmi(bare, 'propose', sid, { media: ['audio'] });
  rec.proposeTimer = setTimeout(() => {
    if (rec.state !== 'proposing') return;
    sendJmi(bare, 'retract', sid, { reason: { condition: 'timeout' } });
    rec.state = 'ended';
    emit('propose_timeout', { sid });
  }, cfg.proceed_timeout_ms);
  return sid;
}

// ---------------------------------------------------------------- stats

async function stats(sid) {
  const rec = calls.get(sid);
  if (!rec || !rec.session) return { sid, error: 'no session' };
  const report = await rec.session.pc.getStats();
  const out = { sid, inbound: [], outbound: [], codecs: {}, pair: undefined, local: undefined, remote: undefined };
  const byId = new Map();
  report.forEach((r) => byId.set(r.id, r));
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      out.inbound.push({ ssrc: r.ssrc, packets: r.packetsReceived, bytes: r.bytesReceived, lost: r.packetsLost, jitter: r.jitter, codec_id: r.codecId });
    }
    if (r.type === 'outbound-rtp' && r.kind === 'audio') {
      out.outbound.push({ ssrc: r.ssrc, packets: r.packetsSent, bytes: r.bytesSent, codec_id: r.codecId });
    }
    if (r.type === 'codec') out.codecs[r.id] = { mime: r.mimeType, clock_rate: r.clockRate, payload_type: r.payloadType };
    if (r.type === 'transport' && r.selectedCandidatePairId) {
      const pair = byId.get(r.selectedCandidatePairId);
      out.dtls_state = r.dtlsState;
      out.ice_role = r.iceRole;
      if (pair) {
        out.pair = { state: pair.state, nominated: pair.nominated, requests_sent: pair.requestsSent, responses_received: pair.responsesReceived, requests_received: pair.requestsReceived };
        const l = byId.get(pair.localCandidateId);
        const rm = byId.get(pair.remoteCandidateId);
        if (l) out.local = { address: l.address || l.ip, port: l.port, type: l.candidateType, protocol: l.protocol };
        if (rm) out.remote = { address: rm.address || rm.ip, port: rm.port, type: rm.candidateType, protocol: rm.protocol };
      }
    }
  });
  for (const list of [out.inbound, out.outbound]) {
    for (const s of list) s.codec = s.codec_id && out.codecs[s.codec_id] ? out.codecs[s.codec_id].mime : undefined;
  }
  out.candidates_trickled = rec.session.candidatesSent;
  out.candidates_inline = rec.session.candidatesInline;
  out.ice_state = rec.session.pc.iceConnectionState;
  const local = rec.session.pc.localDescription;
  const remote = rec.session.pc.remoteDescription;
  const ufrag = (d) => (d && d.sdp.match(/a=ice-ufrag:(\S+)/) ? d.sdp.match(/a=ice-ufrag:(\S+)/)[1] : undefined);
  out.local_ufrag = ufrag(local);
  out.remote_ufrag = ufrag(remote);
  const iceOptions = (d) => (d ? d.sdp.split('\r\n').filter((l) => l.startsWith('a=ice-options:')).map((l) => l.slice(14)) : []);
  out.local_ice_options = iceOptions(local);
  const rtpmaps = (d) => (d ? d.sdp.split('\r\n').filter((l) => l.startsWith('a=rtpmap:')).map((l) => l.slice(9)) : []);
  out.local_rtpmap = rtpmaps(local);
  out.remote_rtpmap = rtpmaps(remote);
  out.remote_ice_options = iceOptions(remote);
  return out;
}

// ---------------------------------------------------------------- ICE restart as responder

// StanzaJS's restartIce() only works for the initiator, and its transport-info handler
// takes new remote credentials as a new remote *offer*. Conversations restarts ICE
// whatever its Jingle role (on PeerConnectionState FAILED after having been
// connected): its renegotiate() sets a new local offer with iceRestart, sends a
// transport-info with the new ufrag/pwd and no candidates (INTEROP.md E.8), then
// applies the peer's transport-info (new ufrag/pwd + fingerprint, then candidates) as
// the remote answer. The functions below do the same on the RTCPeerConnection.

const ufragOf = (sdp) => (sdp.match(/a=ice-ufrag:(\S+)/) || [])[1];
const setupOf = (sdp) => (sdp.match(/a=setup:(\S+)/) || [])[1];

/**
 * The remote answer to our restart offer: the remote description we already have
 * (the peer's session-initiate) with its ICE credentials, candidates, fingerprint and
 * DTLS setup replaced. `setup` keeps the DTLS roles already negotiated (the opposite
 * of ours), so DTLS and SRTP carry on over the new pair.
 */
function restartAnswerSdp(remoteSdp, transport, setup) {
  const fp = (transport.fingerprints || [])[0];
  const lines = remoteSdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates');
  return lines
    .map((l) => {
      if (l.startsWith('a=ice-ufrag:')) return `a=ice-ufrag:${transport.usernameFragment}`;
      if (l.startsWith('a=ice-pwd:')) return `a=ice-pwd:${transport.password}`;
      if (l.startsWith('a=setup:')) return `a=setup:${setup}`;
      if (l.startsWith('a=fingerprint:') && fp && fp.value) return `a=fingerprint:${fp.algorithm} ${fp.value}`;
      return l;
    })
    .join('\r\n');
}

/**
 * Takes over `session`'s transport-info handling while our restart offer waits for
 * its answer: the first transport-info with a ufrag other than `r.oldRemoteUfrag`
 * becomes the remote answer; candidates that come before it are kept for after it.
 * Once answered, StanzaJS's own handler takes the (same-ufrag) trickled candidates.
 */
function hookRestartAnswer(session, r) {
  const original = Object.getPrototypeOf(session).onTransportInfo.bind(session);
  session.onTransportInfo = async (changes, cb) => {
    if (r.done) return original(changes, cb);
    const contents = changes.contents || [];
    const fresh = contents.find((c) => c.transport && c.transport.usernameFragment && c.transport.usernameFragment !== r.oldRemoteUfrag);
    if (!fresh) {
      for (const c of contents) {
        const t = c.transport || {};
        if (t.gatheringComplete) r.early.push({ sdpMid: c.name, candidate: '' });
        for (const cand of t.candidates || []) r.early.push({ sdpMid: c.name, candidate: SDPUtils.writeCandidate(convertCandidateToIntermediate(cand)) });
      }
      return cb();
    }
    const t = fresh.transport;
    const fp = (t.fingerprints || [])[0];
    try {
      await r.offerSet;
      const sdp = restartAnswerSdp(session.pc.remoteDescription.sdp, t, r.remoteSetup);
      await session.pc.setRemoteDescription({ type: 'answer', sdp });
      r.done = true;
      let added = 0;
      for (const c of contents) {
        for (const cand of (c.transport && c.transport.candidates) || []) {
          await session.pc.addIceCandidate({ sdpMid: c.name, candidate: SDPUtils.writeCandidate(convertCandidateToIntermediate(cand)) });
          added++;
        }
      }
      for (const cand of r.early) await session.pc.addIceCandidate(cand).catch((err) => debug('early candidate', errorText(err)));
      emit('ice_restart_answered', {
        sid: session.sid,
        remote_ufrag: t.usernameFragment,
        peer_setup: fp ? fp.setup : undefined,
        peer_fingerprint: fp ? fp.value : undefined,
        applied_setup: r.remoteSetup,
        candidates: added,
        early_candidates: r.early.length,
      });
      return cb();
    } catch (err) {
      r.done = true;
      emit('error', { sid: session.sid, message: `ice restart answer not applied: ${errorText(err)}` });
      return cb({ condition: 'general-error' });
    }
  };
}

/** ICE restart started by the responder (see above); replies `ice_restarted` once acked. */
async function restartIceAsResponder(rec, req) {
  const session = rec.session;
  const pc = session.pc;
  if (pc.signalingState !== 'stable') return emit('error', { req, message: `cannot restart ICE in signaling state ${pc.signalingState}` });
  const before = ufragOf(pc.localDescription.sdp);
  const ourSetup = setupOf(pc.localDescription.sdp);
  const r = {
    done: false,
    early: [],
    oldRemoteUfrag: ufragOf(pc.remoteDescription.sdp),
    remoteSetup: ourSetup === 'active' ? 'passive' : 'active',
    offerSet: undefined,
  };
  let offerSet;
  r.offerSet = new Promise((resolve) => {
    offerSet = resolve;
  });
  hookRestartAnswer(session, r);
  // New local candidates trickle, as after Conversations' restart.
  session.tb.inline = false;
  let ack;
  let sentAt;
  let after;
  // In the session's queue: the peer's answer is processed only after our offer is set.
  const queued = session.processLocal('restart-ice-responder', async () => {
    const offer = await pc.createOffer({ iceRestart: true });
    const sdp = session.tb.renomination ? mungeRenomination(offer.sdp) : offer.sdp;
    const json = importFromSDP(sdp);
    after = ufragOf(sdp);
    sentAt = Date.now() - T0;
    ack = client.sendIQ({
      to: session.peerID,
      type: 'set',
      jingle: {
        action: 'transport-info',
        sid: session.sid,
        contents: json.media.map((m) => ({
          creator: 'initiator',
          name: m.mid,
          transport: { transportType: session.transportType, usernameFragment: m.iceParameters.usernameFragment, password: m.iceParameters.password },
        })),
      },
    });
    ack.catch(() => undefined); // reported below
    await pc.setLocalDescription({ type: 'offer', sdp });
    offerSet();
  });
  try {
    await queued;
  } catch (err) {
    r.done = true;
    offerSet();
    return emit('error', { req, message: `restart offer failed: ${errorText(err)}` });
  }
  try {
    await ack;
  } catch (err) {
    r.done = true;
    return emit('error', { req, message: `transport-info refused: ${errorText(err)}` });
  }
  return emit('ice_restarted', { req, sid: session.sid, role: 'responder', old_ufrag: before, new_ufrag: after, acked: true, sent_t: sentAt, local_setup: ourSetup });
}

// ---------------------------------------------------------------- commands

async function handle(cmd) {
  const req = cmd.req;
  const sid = cmd.sid || currentSid;
  switch (cmd.cmd) {
    case 'ping':
      return emit('pong', { req });
    case 'presence':
      client.sendPresence({ legacyCapabilities: client.disco.getCaps() });
      return emit('presence_sent', { req });
    case 'subscribe':
      client.subscribe(cmd.to);
      return emit('subscribe_sent', { req, to: cmd.to });
    case 'disco':
      try {
        await disco(cmd.to, cmd.node);
      } catch (err) {
        emit('disco_error', { req, jid: cmd.to, error: errorText(err) });
      }
      return undefined;
    case 'call': {
      const id = await call(cmd);
      return emit('calling', { req, sid: id, to: cmd.to });
    }
    case 'hangup': {
      const rec = calls.get(sid);
      if (!rec || !rec.session) return emit('error', { req, message: 'no session to hang up' });
      const reason = cmd.reason || 'success';
      rec.session.end(reason);
      if (rec.jmi && cmd.finish !== false) sendJmi(JID.toBare(rec.peer), 'finish', sid, { reason: { condition: reason } });
      return emit('hung_up', { req, sid });
    }
    case 'retract': {
      const rec = calls.get(sid);
      if (!rec) return emit('error', { req, message: 'no call to retract' });
      sendJmi(JID.toBare(rec.peer), 'retract', sid, { reason: { condition: 'cancel' } });
      endMedia(rec);
      return emit('retracted', { req, sid });
    }
    case 'ice_restart': {
      // Like Conversations (XEP-0176 §2.5, INTEROP E.8): the initiator sends a
      // transport-info with a new ufrag/pwd and no candidates, then trickles. The
      // responder does the same on the RTCPeerConnection (restartIceAsResponder) and
      // also reports `ice_restart_answered` once the peer's answer is applied.
      const rec = calls.get(sid);
      if (!rec || !rec.session) return emit('error', { req, message: 'no session to restart' });
      if (!rec.session.isInitiator) return restartIceAsResponder(rec, req);
      const before = rec.session.pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1];
      rec.session.tb.inline = false;
      await rec.session.restartIce();
      const after = rec.session.pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1];
      return emit('ice_restarted', { req, sid, old_ufrag: before, new_ufrag: after });
    }
    case 'stats':
      return emit('stats', { req, ...(await stats(sid)) });
    case 'audio': {
      const rec = calls.get(sid);
      const m = rec && rec.analyser ? rec.analyser.measure(cmd.window_ms || 1000) : rec && rec.lastAudio;
      return emit('audio', { req, sid, ...(m || { frames_received: 0, samples: 0, frequency_hz: 0, rms: 0, rms_dbfs: -200, tone_ratio: 0 }) });
    }
    case 'dtmf': {
      // @roamhq/wrtc 0.10.0 binds no RTCDTMFSender (RTCRtpSender has no `dtmf`), so
      // only the chromium engine can emit RFC 4733 events. Say so rather than pretend.
      if (!CHROMIUM) {
        return emit('dtmf_unsupported', { req, digits: cmd.digits, message: 'RTCRtpSender.dtmf is not available in @roamhq/wrtc 0.10.0 (use engine "chromium")' });
      }
      const rec = calls.get(sid);
      if (!rec || !rec.session) return emit('error', { req, message: 'no session for DTMF' });
      const duration = cmd.duration_ms || 100;
      const gap = cmd.gap_ms || 70;
      const r = await rec.session.pc.insertDTMF(cmd.digits, duration, gap);
      return emit('dtmf_inserted', { req, sid, digits: cmd.digits, duration_ms: duration, gap_ms: gap, tone_buffer: r.tone_buffer });
    }
    case 'dtmf_heard': {
      const rec = calls.get(sid);
      const heard = rec && rec.analyser ? rec.analyser.dtmf.heard : (rec && rec.lastHeard) || [];
      return emit('dtmf_heard_list', { req, sid, digits: heard.map((d) => d.digit).join(''), heard });
    }
    case 'send_raw':
      client.transport.write(cmd.xml);
      return emit('raw_sent', { req });
    case 'quit':
      return quit(0);
    default:
      return emit('error', { req, message: `unknown command ${cmd.cmd}` });
  }
}

let quitting = false;
async function quit(code) {
  if (quitting) return;
  quitting = true;
  for (const rec of calls.values()) {
    if (rec.session && rec.session.state !== 'ended') rec.session.end('success');
    endMedia(rec);
  }
  emit('bye', {});
  try {
    await Promise.race([client.disconnect(), new Promise((r) => setTimeout(r, 1000))]);
  } catch (_) {
    /* exiting anyway */
  }
  if (CHROMIUM) await Promise.race([chromium.close(), new Promise((r) => setTimeout(r, 3000))]);
  // Exit explicitly: letting libwebrtc's threads unwind at process teardown can crash.
  setTimeout(() => process.exit(code), 50);
}

// ---------------------------------------------------------------- presence

client.on('available', (pres) => {
  presences.set(pres.from, { caps: pres.legacyCapabilities });
  discoCache.delete(pres.from);
  emit('presence', { from: pres.from, type: 'available', caps: pres.legacyCapabilities });
});
client.on('unavailable', (pres) => {
  presences.delete(pres.from);
  discoCache.delete(pres.from);
  emit('presence', { from: pres.from, type: 'unavailable' });
});
client.on('subscribe', (pres) => {
  emit('presence', { from: pres.from, type: 'subscribe' });
  if (cfg.auto_subscribe) {
    client.acceptSubscription(pres.from);
    client.subscribe(pres.from);
  }
});
for (const type of ['subscribed', 'unsubscribe', 'unsubscribed', 'presence:error']) {
  client.on(type, (pres) => emit('presence', { from: pres.from, type, error: pres.error }));
}

client.on('session:started', async () => {
  client.updateCaps();
  await client.getRoster().catch((err) => debug('roster', errorText(err)));
  client.sendPresence({ legacyCapabilities: client.disco.getCaps() });
  emit('ready', { jid: client.jid });
});
client.on('auth:failed', () => {
  emit('error', { message: 'authentication failed' });
  quit(3);
});
client.on('disconnected', () => {
  if (!quitting) {
    emit('disconnected', {});
  }
});

process.on('unhandledRejection', (err) => {
  emit('error', { message: `unhandled: ${errorText(err)}` });
});

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    emit('error', { message: `bad command line: ${err.message}` });
    return;
  }
  handle(cmd).catch((err) => emit('error', { req: cmd.req, message: errorText(err) }));
});
rl.on('close', () => quit(0));

if (CHROMIUM) {
  chromium
    .launch(cfg.chromium_path, (text) => debug(text))
    .then(({ version }) => {
      emit('engine', { engine: 'chromium', version });
      client.connect();
    })
    .catch((err) => {
      emit('error', { message: `chromium did not start: ${errorText(err)}` });
      quit(4);
    });
} else {
  client.connect();
}
