'use strict';
// libwebrtc ICE peer for tests/tests/ice_webrtc.rs: an @roamhq/wrtc RTCPeerConnection
// whose remote description is built from our agent's ICE credentials. Only ICE is under
// test: the remote DTLS fingerprint is a placeholder, so DTLS never completes, but the
// ICE transport connects and getStats() reports the selected candidate pair.
//
// Usage: node ice-peer.js offerer|answerer [renomination]
//   offerer: libwebrtc offers, so it is ICE-controlling; answerer: controlled.
//   renomination: munge `a=ice-options:trickle renomination` into the local SDP and
//   into the remote SDP built from our credentials (Conversations writes both SDPs
//   itself when it maps Jingle). libwebrtc M106 sends NOMINATION (0xC001) instead of
//   USE-CANDIDATE only when both descriptions carry it (P2PTransportChannel::PingConnection).
// stdin (JSON lines):  {"creds":{"ufrag","pwd"}}  {"candidate":"candidate:…"}  {"quit":true}
// stdout (JSON lines): {"creds":{…}} {"candidate":"candidate:…"} {"ice":STATE}
//                      {"selected":{"local":"ip:port","remote":"ip:port"}}
// Diagnostics go to stderr.

const readline = require('readline');
const wrtc = require('@roamhq/wrtc');

const role = process.argv[2];
const renomination = process.argv.includes('renomination');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const log = (...a) => process.stderr.write(a.join(' ') + '\n');

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase().padStart(2, '0')).join(':');

function remoteSdp(ufrag, pwd, setup) {
  return [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=msid-semantic: WMS',
    'm=audio 9 UDP/TLS/RTP/SAVPF 0',
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${pwd}`,
    renomination ? 'a=ice-options:trickle renomination' : 'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${FINGERPRINT}`,
    `a=setup:${setup}`,
    'a=mid:0',
    'a=sendrecv',
    'a=rtcp-mux',
    'a=rtpmap:0 PCMU/8000',
    '',
  ].join('\r\n');
}

function munge(sdp) {
  if (!renomination) return sdp;
  if (/a=ice-options:/.test(sdp)) {
    return sdp.replace(/a=ice-options:([^\r\n]*)/g, (m, o) => (o.includes('renomination') ? m : `a=ice-options:${o} renomination`));
  }
  return sdp.replace(/(a=ice-ufrag:[^\r\n]*\r\n)/g, '$1a=ice-options:trickle renomination\r\n');
}

function creds(sdp) {
  return {
    ufrag: /a=ice-ufrag:([^\r\n]*)/.exec(sdp)[1],
    pwd: /a=ice-pwd:([^\r\n]*)/.exec(sdp)[1],
  };
}

const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
pc.onicecandidate = (e) => {
  if (e.candidate && e.candidate.candidate) out({ candidate: e.candidate.candidate });
};
pc.oniceconnectionstatechange = () => out({ ice: pc.iceConnectionState });

let lastSelected = '';
const statsTimer = setInterval(async () => {
  try {
    const stats = await pc.getStats();
    let pairId = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    if (!pairId) return;
    const pair = stats.get(pairId);
    const l = stats.get(pair.localCandidateId);
    const r = stats.get(pair.remoteCandidateId);
    // libwebrtc redacts the address of remote peer-reflexive candidates: then ":port".
    const fmt = (c) => { const a = c.address || c.ip || ''; return a.includes(':') ? `[${a}]:${c.port}` : `${a}:${c.port}`; };
    const sel = { local: fmt(l), remote: fmt(r), state: pair.state, nominated: !!pair.nominated, writable: !!pair.writable };
    const key = JSON.stringify(sel);
    if (key !== lastSelected) {
      lastSelected = key;
      out({ selected: sel });
    }
  } catch (e) {
    log('stats error', e && e.message);
  }
}, 50);

let remoteSet = false;
const pendingCandidates = [];
let localCreds = null;

let ready = Promise.resolve();

async function start() {
  if (role === 'offerer') {
    pc.addTransceiver('audio', { direction: 'sendrecv' });
    const offer = await pc.createOffer();
    const sdp = munge(offer.sdp);
    await pc.setLocalDescription({ type: 'offer', sdp });
    localCreds = creds(sdp);
    out({ creds: localCreds });
  }
}

async function onRemoteCreds(c) {
  if (role === 'offerer') {
    await pc.setRemoteDescription({ type: 'answer', sdp: remoteSdp(c.ufrag, c.pwd, 'active') });
  } else {
    await pc.setRemoteDescription({ type: 'offer', sdp: remoteSdp(c.ufrag, c.pwd, 'actpass') });
    const answer = await pc.createAnswer();
    const sdp = munge(answer.sdp);
    await pc.setLocalDescription({ type: 'answer', sdp });
    localCreds = creds(sdp);
    out({ creds: localCreds });
  }
  remoteSet = true;
  for (const cand of pendingCandidates.splice(0)) await addCandidate(cand);
}

async function addCandidate(cand) {
  try {
    await pc.addIceCandidate({ candidate: cand, sdpMid: '0', sdpMLineIndex: 0 });
  } catch (e) {
    log('addIceCandidate failed', cand, e && e.message);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch (e) { return; }
  await ready;
  if (msg.creds) { ready = onRemoteCreds(msg.creds); await ready; }
  else if (msg.candidate) {
    if (remoteSet) await addCandidate(msg.candidate);
    else pendingCandidates.push(msg.candidate);
  } else if (msg.quit) {
    clearInterval(statsTimer);
    pc.close();
    process.exit(0);
  }
});
rl.on('close', () => { clearInterval(statsTimer); pc.close(); process.exit(0); });

ready = start().catch((e) => { log('start failed', e && e.stack); process.exit(1); });
