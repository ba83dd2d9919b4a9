'use strict';
// libwebrtc media peer for tests/tests/media_webrtc.rs: an @roamhq/wrtc RTCPeerConnection
// that sends a sine tone and measures what arrives, signalled over stdio with plain SDP
// (the Rust test writes the SDP of our media driver and reads libwebrtc's).
//
// Usage: node media-peer.js offerer|answerer TONE_HZ [pcmu]
//   offerer: libwebrtc creates the offer (a=setup:actpass; it becomes DTLS passive when
//   we answer active); answerer: it answers our offer (actpass → libwebrtc picks active).
//   pcmu: as offerer, setCodecPreferences puts PCMU first (Opus is still offered).
// stdin (JSON lines):  {"offer": SDP} (answerer)  {"answer": SDP} (offerer)
//                      {"candidate":"candidate:…"}  {"stats":true}  {"quit":true}
// stdout (JSON lines): {"offer": SDP} | {"answer": SDP}  {"candidate":"candidate:…"}
//                      {"ice":STATE} {"connection":STATE} {"track":true}
//                      {"stats":{inbound, outbound, dtls_state, srtp_cipher, audio}}
//                      {"error":"…"} (setRemoteDescription or the like failed)
// Diagnostics go to stderr.

const readline = require('readline');
const wrtc = require('@roamhq/wrtc');
const { ToneSource, AudioAnalyser } = require('./audio');

const role = process.argv[2];
const toneHz = Number(process.argv[3] || 440);
const preferPcmu = process.argv.includes('pcmu');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const log = (...a) => process.stderr.write(a.join(' ') + '\n');

const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
const tone = new ToneSource(toneHz, 0.5);
const stream = new wrtc.MediaStream([tone.track]);
let analyser = null;

pc.onicecandidate = (e) => {
  if (e.candidate && e.candidate.candidate) {
    // loopback only: the namespace has nothing else, and the test must not leak.
    if (/ (127\.0\.0\.1|::1) /.test(e.candidate.candidate)) out({ candidate: e.candidate.candidate });
  }
};
pc.oniceconnectionstatechange = () => out({ ice: pc.iceConnectionState });
pc.onconnectionstatechange = () => out({ connection: pc.connectionState });
pc.ontrack = (e) => {
  if (!analyser) {
    analyser = new AudioAnalyser(e.track, 3);
    out({ track: true });
  }
};

async function stats() {
  const s = await pc.getStats();
  const r = { inbound: null, outbound: null, dtls_state: null, srtp_cipher: null, codec: null };
  s.forEach((x) => {
    if (x.type === 'inbound-rtp' && x.kind === 'audio') {
      r.inbound = { packets_received: x.packetsReceived, packets_lost: x.packetsLost, jitter: x.jitter, codec_id: x.codecId };
      const c = s.get(x.codecId);
      if (c) r.codec = c.mimeType;
    }
    if (x.type === 'outbound-rtp' && x.kind === 'audio') r.outbound = { packets_sent: x.packetsSent };
    if (x.type === 'transport') {
      r.dtls_state = x.dtlsState;
      r.srtp_cipher = x.srtpCipher;
    }
  });
  r.audio = analyser ? analyser.measure(1000) : null;
  return r;
}

let remoteSet = false;
const pending = [];

async function addCandidate(c) {
  try {
    await pc.addIceCandidate({ candidate: c, sdpMid: '0', sdpMLineIndex: 0 });
  } catch (e) {
    log('addIceCandidate failed', c, e && e.message);
  }
}

async function start() {
  if (role !== 'offerer') return;
  const tr = pc.addTransceiver(tone.track, { direction: 'sendrecv', streams: [stream] });
  if (preferPcmu) {
    const caps = wrtc.RTCRtpReceiver.getCapabilities('audio').codecs;
    const first = caps.filter((c) => c.mimeType.toLowerCase() === 'audio/pcmu');
    tr.setCodecPreferences(first.concat(caps.filter((c) => c.mimeType.toLowerCase() !== 'audio/pcmu')));
  }
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  out({ offer: offer.sdp });
  tone.start();
}

async function onOffer(sdp) {
  await pc.setRemoteDescription({ type: 'offer', sdp });
  pc.getTransceivers().forEach((t) => { t.direction = 'sendrecv'; });
  pc.addTrack(tone.track, stream);
  const answer = await pc.createAnswer();
  await pc.setLocalDescription(answer);
  out({ answer: answer.sdp });
  tone.start();
}

let ready = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch (e) { return; }
  ready = ready.then(async () => {
    try {
      if (msg.offer) {
        await onOffer(msg.offer);
        remoteSet = true;
        for (const c of pending.splice(0)) await addCandidate(c);
      } else if (msg.answer) {
        await pc.setRemoteDescription({ type: 'answer', sdp: msg.answer });
        remoteSet = true;
        for (const c of pending.splice(0)) await addCandidate(c);
      } else if (msg.candidate) {
        if (remoteSet) await addCandidate(msg.candidate);
        else pending.push(msg.candidate);
      } else if (msg.stats) {
        out({ stats: await stats() });
      } else if (msg.quit) {
        quit();
      }
    } catch (e) {
      log('command failed', line.slice(0, 80), e && e.stack);
      out({ error: String(e && e.message) });
    }
  });
});

function quit() {
  tone.stop();
  if (analyser) analyser.stop();
  pc.close();
  process.exit(0);
}
rl.on('close', quit);

ready = start().catch((e) => { log('start failed', e && e.stack); process.exit(1); });
