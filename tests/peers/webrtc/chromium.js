'use strict';
// The `chromium` engine of the test-bed client: Debian's Chromium (real libwebrtc, with
// RTCDTMFSender) driven by playwright-core. StanzaJS keeps running in Node; its peer
// connection is a ChromiumPeerConnection, a Node-side stand-in that forwards every call
// to a real RTCPeerConnection in a headless Chromium page (chromium-page.js) and
// mirrors the page's state and events.
//
// Only the part of RTCPeerConnection that StanzaJS's MediaSession, session.js and
// client.js use exists here.

const fs = require('fs');
const path = require('path');

const PAGE_SOURCE = fs.readFileSync(path.join(__dirname, 'chromium-page.js'), 'utf8');

// Headless Chromium as root on loopback: no sandbox (root), loopback candidates
// allowed, host candidates as IP addresses rather than mDNS names, audio without a
// user gesture, and nothing that reaches out to the network.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
  // A granted getUserMedia (fake device, no prompt) lifts Chromium's "default route
  // only" candidate gathering; in a namespace with only `lo` there is no default route.
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

const PAGE_URL = 'http://localhost/jsg-testbed';

let browser;
let page;
const peers = new Map(); // id -> ChromiumPeerConnection
let nextId = 1;

/**
 * Launches Chromium (`executable`, default /usr/bin/chromium; playwright-core gives
 * it a fresh temporary profile directory and removes it on close) and opens the page
 * that holds the peer connections.
 * `log(text)` receives the page's console and errors.
 */
async function launch(executable, log) {
  const { chromium } = require('playwright-core');
  browser = await chromium.launch({
    executablePath: executable || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30000,
  });
  page = await browser.newPage();
  page.on('console', (m) => log(`page ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.exposeBinding('tbEvent', (_src, id, name, data, snapshot) => {
    const pc = peers.get(id);
    if (pc) pc.onPageEvent(name, data, snapshot);
  });
  await page.exposeBinding('tbAudio', (_src, id, b64, rate) => {
    const pc = peers.get(id);
    if (pc && pc.onaudio) {
      // a copy at offset 0 (a pooled Buffer may start at an odd offset)
      const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
      const samples = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
      pc.onaudio({ samples, sampleRate: rate, channelCount: 1, numberOfFrames: samples.length });
    }
  });
  // A page served by playwright itself (no network) at http://localhost/, a secure
  // context, so navigator.mediaDevices exists.
  await page.route(PAGE_URL, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><html><head><title>jsg test bed</title></head><body></body></html>' }),
  );
  await page.goto(PAGE_URL);
  await page.addScriptTag({ content: PAGE_SOURCE });
  await page.evaluate(() => window.tbGrantMedia());
  const version = browser.version();
  return { version };
}

async function close() {
  if (browser) await browser.close().catch(() => undefined);
  browser = undefined;
}

class FakeTrack {
  constructor(kind, id) {
    this.kind = kind;
    this.id = id;
    this.readyState = 'live';
  }

  stop() {
    this.readyState = 'ended';
  }
}

/** The sent track of the chromium engine: a WebAudio tone made inside the page. */
class PageTone {
  constructor(frequencyHz, amplitude) {
    this.frequencyHz = frequencyHz;
    this.amplitude = amplitude;
    this.track = new FakeTrack('audio', 'tone');
    this.track.tbTone = this;
  }

  start() {}

  stop() {
    this.track.stop();
  }
}

class ChromiumPeerConnection {
  constructor(config) {
    this.id = nextId++;
    this.listeners = new Map();
    this.signalingState = 'stable';
    this.iceConnectionState = 'new';
    this.connectionState = 'new';
    this.iceGatheringState = 'new';
    this.localDescription = null;
    this.remoteDescription = null;
    this.receivers = [];
    this.streams = [];
    this.onaudio = undefined;
    this.onicecandidate = null;
    this.oniceconnectionstatechange = null;
    this.onconnectionstatechange = null;
    this.onsignalingstatechange = null;
    this.onicegatheringstatechange = null;
    this.ontrack = null;
    peers.set(this.id, this);
    const clean = JSON.parse(JSON.stringify(config || {}));
    this.ready = page.evaluate(([id, c]) => window.tbCreate(id, c), [this.id, clean]).then((s) => this.apply(s));
    this.ready.catch(() => undefined);
  }

  apply(snapshot) {
    if (!snapshot) return;
    Object.assign(this, snapshot);
  }

  addEventListener(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, []);
    this.listeners.get(name).push(fn);
  }

  removeEventListener(name, fn) {
    const list = this.listeners.get(name);
    if (list) this.listeners.set(name, list.filter((f) => f !== fn));
  }

  dispatch(name, event) {
    const handler = this[`on${name}`];
    if (typeof handler === 'function') handler.call(this, event);
    for (const fn of [...(this.listeners.get(name) || [])]) fn.call(this, event);
  }

  onPageEvent(name, data, snapshot) {
    this.apply(snapshot);
    switch (name) {
      case 'icecandidate':
        return this.dispatch('icecandidate', { type: 'icecandidate', candidate: data.candidate });
      case 'track': {
        const track = new FakeTrack(data.kind, data.track_id);
        const stream = { id: data.stream_id, getTracks: () => [track], getAudioTracks: () => [track] };
        this.receivers.push({ track });
        this.streams.push(stream);
        return this.dispatch('track', { type: 'track', track, streams: [stream], receiver: { track } });
      }
      default:
        return this.dispatch(name, { type: name, ...data });
    }
  }

  async call(method, ...args) {
    await this.ready;
    const clean = JSON.parse(JSON.stringify(args));
    const r = await page.evaluate(([id, m, a]) => window.tbCall(id, m, a), [this.id, method, clean]);
    this.apply(r.snapshot);
    return r.value;
  }

  createOffer(opts) {
    return this.call('createOffer', opts || {});
  }

  createAnswer(opts) {
    return this.call('createAnswer', opts || {});
  }

  setLocalDescription(d) {
    return this.call('setLocalDescription', d);
  }

  setRemoteDescription(d) {
    return this.call('setRemoteDescription', d);
  }

  addIceCandidate(c) {
    return this.call('addIceCandidate', c);
  }

  /** Only the engine's own tone track (PageTone) can be sent. */
  addTrack(track) {
    if (!track || !track.tbTone) throw new Error('the chromium engine sends only its page tone');
    const tone = track.tbTone;
    this.ready = this.ready
      .then(() => page.evaluate(([id, hz, amp]) => window.tbAddTone(id, hz, amp), [this.id, tone.frequencyHz, tone.amplitude]))
      .then((r) => this.apply(r.snapshot));
    return { track };
  }

  /** setCodecPreferences on every transceiver, inside the page (async here). */
  async setCodecNames(names) {
    await this.ready;
    return page.evaluate(([id, n]) => window.tbCodecPreferences(id, n), [this.id, names]);
  }

  getSenders() {
    return [];
  }

  getReceivers() {
    return this.receivers;
  }

  getRemoteStreams() {
    return this.streams;
  }

  async getStats() {
    await this.ready;
    const list = await page.evaluate((id) => window.tbStats(id), this.id);
    return new Map(list.map((s) => [s.id, s]));
  }

  /** RTCDTMFSender.insertDTMF(digits, durationMs, gapMs) on the audio sender. */
  async insertDTMF(digits, durationMs, gapMs) {
    await this.ready;
    return page.evaluate(([id, d, dur, gap]) => window.tbDtmf(id, d, dur, gap), [this.id, digits, durationMs, gapMs]);
  }

  close() {
    if (this.signalingState === 'closed') return;
    this.signalingState = 'closed';
    this.iceConnectionState = 'closed';
    this.connectionState = 'closed';
    peers.delete(this.id);
    if (page) page.evaluate((id) => window.tbClose(id), this.id).catch(() => undefined);
  }
}

module.exports = { launch, close, ChromiumPeerConnection, PageTone, CHROMIUM_ARGS };
