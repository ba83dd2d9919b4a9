'use strict';
// Runs INSIDE the Chromium page (injected by chromium.js as a script tag): real
// RTCPeerConnections of Chromium's libwebrtc, a WebAudio sine tone as the sent track,
// the received audio streamed back to Node as 16-bit PCM, and RTCDTMFSender.
//
// Node talks to it through window.tb* functions (page.evaluate); the page reports
// through two bindings Node exposes: tbEvent(id, name, data, snapshot) and
// tbAudio(id, base64Int16, sampleRate).
(() => {
  const pcs = new Map(); // id -> { pc, sender, capture }
  let ctx;

  function audioContext() {
    if (!ctx) ctx = new AudioContext({ sampleRate: 48000 });
    if (ctx.state !== 'running') ctx.resume();
    return ctx;
  }

  function desc(d) {
    return d ? { type: d.type, sdp: d.sdp } : null;
  }

  function snapshot(pc) {
    return {
      signalingState: pc.signalingState,
      iceConnectionState: pc.iceConnectionState,
      connectionState: pc.connectionState,
      iceGatheringState: pc.iceGatheringState,
      localDescription: desc(pc.localDescription),
      remoteDescription: desc(pc.remoteDescription),
    };
  }

  function rec(id) {
    const r = pcs.get(id);
    if (!r) throw new Error(`no peer connection ${id}`);
    return r;
  }

  function toBase64(int16) {
    const bytes = new Uint8Array(int16.buffer, int16.byteOffset, int16.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }

  // Chromium renders remote WebRTC audio into WebAudio only while a media element
  // plays the stream, so the stream goes to a (muted) <audio> element as well.
  function startCapture(id, r, track, stream) {
    if (track.kind !== 'audio' || r.capture) return;
    const el = document.createElement('audio');
    el.srcObject = stream || new MediaStream([track]);
    el.muted = true;
    document.body.appendChild(el);
    el.play().catch(() => undefined);
    const ac = audioContext();
    const source = ac.createMediaStreamSource(new MediaStream([track]));
    const proc = ac.createScriptProcessor(1024, 1, 1);
    const sink = ac.createGain();
    sink.gain.value = 0;
    let pending = [];
    let pendingLen = 0;
    proc.onaudioprocess = (e) => {
      const x = e.inputBuffer.getChannelData(0);
      const out = new Int16Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(x[i] * 32768)));
      pending.push(out);
      pendingLen += out.length;
      if (pendingLen >= ac.sampleRate / 20) {
        const all = new Int16Array(pendingLen);
        let off = 0;
        for (const p of pending) {
          all.set(p, off);
          off += p.length;
        }
        pending = [];
        pendingLen = 0;
        window.tbAudio(id, toBase64(all), ac.sampleRate);
      }
    };
    source.connect(proc);
    proc.connect(sink);
    sink.connect(ac.destination);
    r.capture = { el, source, proc, sink };
  }

  /** getUserMedia once (the fake device; its track is stopped at once). */
  window.tbGrantMedia = async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const t of stream.getTracks()) t.stop();
    return true;
  };

  window.tbCreate = (id, config) => {
    const pc = new RTCPeerConnection(config);
    const r = { pc, sender: undefined, capture: undefined };
    pcs.set(id, r);
    const fire = (name, data) => window.tbEvent(id, name, data || {}, snapshot(pc));
    pc.addEventListener('icecandidate', (e) => fire('icecandidate', { candidate: e.candidate ? e.candidate.toJSON() : null }));
    for (const name of ['iceconnectionstatechange', 'connectionstatechange', 'signalingstatechange', 'icegatheringstatechange']) {
      pc.addEventListener(name, () => fire(name));
    }
    pc.addEventListener('track', (e) => {
      startCapture(id, r, e.track, e.streams[0]);
      fire('track', { kind: e.track.kind, track_id: e.track.id, stream_id: e.streams[0] ? e.streams[0].id : undefined });
    });
    return snapshot(pc);
  };

  /** Calls an RTCPeerConnection method; descriptions come back as plain objects. */
  window.tbCall = async (id, method, args) => {
    const { pc } = rec(id);
    const value = await pc[method](...args);
    const out = value && typeof value === 'object' && 'sdp' in value ? desc(value) : undefined;
    return { value: out, snapshot: snapshot(pc) };
  };

  /** A sine tone of `hz` at `amplitude` (fraction of full scale) as the sent track. */
  window.tbAddTone = (id, hz, amplitude) => {
    const r = rec(id);
    const ac = audioContext();
    const osc = ac.createOscillator();
    osc.frequency.value = hz;
    const gain = ac.createGain();
    gain.gain.value = amplitude;
    const dest = ac.createMediaStreamDestination();
    osc.connect(gain);
    gain.connect(dest);
    osc.start();
    const track = dest.stream.getAudioTracks()[0];
    r.sender = r.pc.addTrack(track, dest.stream);
    r.tone = { osc, gain, dest };
    return { snapshot: snapshot(r.pc), context_state: ac.state, sample_rate: ac.sampleRate };
  };

  /** Codec order for every transceiver: `names` first, telephone-event kept. */
  window.tbCodecPreferences = (id, names) => {
    const { pc } = rec(id);
    const caps = RTCRtpReceiver.getCapabilities('audio').codecs;
    const chosen = [];
    for (const name of names.map((n) => n.toLowerCase())) {
      for (const c of caps) if (c.mimeType.toLowerCase() === `audio/${name}`) chosen.push(c);
    }
    for (const c of caps) {
      if (c.mimeType.toLowerCase() === 'audio/telephone-event' && !chosen.includes(c)) chosen.push(c);
    }
    for (const t of pc.getTransceivers()) t.setCodecPreferences(chosen);
    return chosen.map((c) => `${c.mimeType}/${c.clockRate}`);
  };

  window.tbStats = async (id) => {
    const report = await rec(id).pc.getStats();
    return [...report.values()].map((s) => ({ ...s }));
  };

  /** RTCDTMFSender.insertDTMF; every tonechange is reported as a `tonechange` event. */
  window.tbDtmf = (id, digits, durationMs, gapMs) => {
    const r = rec(id);
    if (!r.sender || !r.sender.dtmf) throw new Error('no RTCDTMFSender on the audio sender');
    const dtmf = r.sender.dtmf;
    if (!dtmf.canInsertDTMF) throw new Error('canInsertDTMF is false (no telephone-event negotiated?)');
    dtmf.ontonechange = (e) => window.tbEvent(id, 'tonechange', { tone: e.tone, at: performance.now() }, snapshot(r.pc));
    dtmf.insertDTMF(digits, durationMs, gapMs);
    return { tone_buffer: dtmf.toneBuffer };
  };

  window.tbClose = (id) => {
    const r = pcs.get(id);
    if (!r) return;
    if (r.tone) r.tone.osc.stop();
    if (r.capture) {
      r.capture.proc.disconnect();
      r.capture.el.srcObject = null;
    }
    r.pc.close();
    pcs.delete(id);
  };
})();
