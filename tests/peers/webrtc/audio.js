'use strict';
// Audio for the test-bed client: a sine tone pushed into a libwebrtc track, and an
// analyser for what arrives from the far end (dominant frequency and level, and the
// DTMF keys in it).

const wrtc = require('@roamhq/wrtc');

const SOURCE_RATE = 48000; // Hz, what RTCAudioSource accepts
const FRAME_SAMPLES = SOURCE_RATE / 100; // 10 ms frames

/**
 * A sine tone fed to `wrtc.nonstandard.RTCAudioSource` in 10 ms frames of 48 kHz
 * s16 mono. A timer pushes every frame that is due, so timer jitter does not change
 * the pitch.
 */
class ToneSource {
  constructor(frequencyHz, amplitude) {
    this.frequencyHz = frequencyHz;
    this.amplitude = Math.max(0, Math.min(1, amplitude));
    this.source = new wrtc.nonstandard.RTCAudioSource();
    this.track = this.source.createTrack();
    this.phase = 0;
    this.framesSent = 0;
    this.started = 0;
    this.timer = undefined;
  }

  start() {
    if (this.timer) return;
    this.started = Date.now();
    this.framesSent = 0;
    this.timer = setInterval(() => this.pump(), 5);
  }

  pump() {
    const due = Math.floor((Date.now() - this.started) / 10) + 1;
    // never burst more than 200 ms after a stall
    if (due - this.framesSent > 20) this.framesSent = due - 20;
    while (this.framesSent < due) {
      const samples = new Int16Array(FRAME_SAMPLES);
      const step = (2 * Math.PI * this.frequencyHz) / SOURCE_RATE;
      const peak = 32767 * this.amplitude;
      for (let i = 0; i < FRAME_SAMPLES; i++) {
        samples[i] = Math.round(peak * Math.sin(this.phase));
        this.phase += step;
      }
      this.phase %= 2 * Math.PI;
      this.source.onData({
        samples,
        sampleRate: SOURCE_RATE,
        bitsPerSample: 16,
        channelCount: 1,
        numberOfFrames: FRAME_SAMPLES,
      });
      this.framesSent++;
    }
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.track.stop();
  }
}

/**
 * Collects what `RTCAudioSink` delivers (keeps the last few seconds, mono) and
 * measures the dominant frequency by interpolated rising zero crossings, the RMS
 * level, and a Goertzel check of how much of the energy sits at that frequency.
 */
class AudioAnalyser {
  /**
   * `track`: a wrtc MediaStreamTrack read through RTCAudioSink, or null when the
   * caller feeds `onData` itself (the chromium engine streams the page's audio).
   * `onDigit(d)`: called with every DTMF digit heard (see DtmfDetector).
   */
  constructor(track, keepSeconds = 4, onDigit = undefined) {
    this.sink = track ? new wrtc.nonstandard.RTCAudioSink(track) : undefined;
    this.keepSeconds = keepSeconds;
    this.chunks = []; // { t, rate, samples: Float32Array }
    this.framesReceived = 0;
    this.firstAt = undefined;
    this.dtmf = new DtmfDetector(onDigit);
    if (this.sink) this.sink.ondata = (data) => this.onData(data);
  }

  onData(data) {
    const { samples, sampleRate, channelCount, numberOfFrames } = data;
    const mono = new Float32Array(numberOfFrames);
    for (let i = 0; i < numberOfFrames; i++) {
      let acc = 0;
      for (let c = 0; c < channelCount; c++) acc += samples[i * channelCount + c];
      mono[i] = acc / channelCount / 32768;
    }
    const now = Date.now();
    if (this.firstAt === undefined) this.firstAt = now;
    this.framesReceived++;
    this.chunks.push({ t: now, rate: sampleRate, samples: mono });
    this.dtmf.push(mono, sampleRate, now);
    while (this.chunks.length && now - this.chunks[0].t > this.keepSeconds * 1000) this.chunks.shift();
  }

  /** Measures the last `windowMs` of received audio at the most recent sample rate. */
  measure(windowMs = 1000) {
    if (!this.chunks.length) {
      return { frames_received: this.framesReceived, samples: 0, frequency_hz: 0, rms: 0, rms_dbfs: -200, tone_ratio: 0 };
    }
    const rate = this.chunks[this.chunks.length - 1].rate;
    const want = Math.floor((rate * windowMs) / 1000);
    const parts = [];
    let have = 0;
    for (let i = this.chunks.length - 1; i >= 0 && have < want; i--) {
      if (this.chunks[i].rate !== rate) break;
      parts.unshift(this.chunks[i].samples);
      have += this.chunks[i].samples.length;
    }
    const x = new Float32Array(have);
    let off = 0;
    for (const p of parts) {
      x.set(p, off);
      off += p.length;
    }
    const result = analyse(x, rate);
    result.frames_received = this.framesReceived;
    result.sample_rate = rate;
    result.window_ms = Math.round((x.length * 1000) / rate);
    return result;
  }

  stop() {
    if (this.sink) this.sink.stop();
    this.dtmf.flush();
  }
}

const DTMF_LOW = [697, 770, 852, 941]; // Hz, rows
const DTMF_HIGH = [1209, 1336, 1477, 1633]; // Hz, columns
const DTMF_KEYS = ['123A', '456B', '789C', '*0#D'];
const DTMF_BLOCK_MS = 10;
const DTMF_HANGOVER = 2; // blocks

/** Power of `x` at `hz` (Goertzel), normalized so a pure sine at `hz` gives ~1 of `energy`. */
function goertzelRatio(x, rate, hz, energy) {
  const coeff = 2 * Math.cos((2 * Math.PI * hz) / rate);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = x[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return energy > 0 ? (2 * power) / (x.length * energy) : 0;
}

/**
 * Detects DTMF key tones (ITU-T Q.23 frequency pairs) in received audio: Goertzel
 * power at the 8 frequencies over 10 ms blocks; a block holds a key when its
 * strongest row and column tones both carry at least 20 % of the block's energy,
 * each at least 4 times its runner-up, and the level is above -40 dBFS. A key held
 * for 3 blocks or more (30 ms) is reported once when it stops, with its duration;
 * up to 2 blocks (20 ms) without a key inside a key's run do not end it.
 */
class DtmfDetector {
  constructor(onDigit) {
    this.onDigit = onDigit;
    this.buf = [];
    this.bufLen = 0;
    this.rate = 0;
    this.current = undefined; // { digit, blocks, startedAt }
    this.heard = [];
  }

  push(mono, rate, now) {
    if (rate !== this.rate) {
      this.buf = [];
      this.bufLen = 0;
      this.rate = rate;
    }
    this.buf.push(mono);
    this.bufLen += mono.length;
    const block = Math.round((rate * DTMF_BLOCK_MS) / 1000);
    while (this.bufLen >= block) {
      const x = new Float32Array(block);
      let off = 0;
      while (off < block) {
        const head = this.buf[0];
        const take = Math.min(head.length, block - off);
        x.set(head.subarray(0, take), off);
        off += take;
        if (take === head.length) this.buf.shift();
        else this.buf[0] = head.subarray(take);
      }
      this.bufLen -= block;
      this.block(x, rate, now);
    }
  }

  block(x, rate, now) {
    let mean = 0;
    for (let i = 0; i < x.length; i++) mean += x[i];
    mean /= x.length;
    let energy = 0;
    for (let i = 0; i < x.length; i++) {
      x[i] -= mean;
      energy += x[i] * x[i];
    }
    const rms = Math.sqrt(energy / x.length);
    let digit;
    if (rms > 0.01) {
      const low = DTMF_LOW.map((f) => goertzelRatio(x, rate, f, energy));
      const high = DTMF_HIGH.map((f) => goertzelRatio(x, rate, f, energy));
      const best = (v) => {
        const order = v.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
        return order[0][0] >= 0.2 && order[0][0] >= 4 * order[1][0] ? order[0][1] : -1;
      };
      const r = best(low);
      const c = best(high);
      if (r >= 0 && c >= 0) digit = DTMF_KEYS[r][c];
    }
    const c = this.current;
    if (c && c.digit === digit) {
      c.blocks += 1 + c.missed;
      c.missed = 0;
      return;
    }
    // Hangover: a dropout of up to DTMF_HANGOVER blocks inside a key does not end it.
    if (c && !digit && c.missed < DTMF_HANGOVER) {
      c.missed++;
      return;
    }
    this.flush();
    if (digit) this.current = { digit, blocks: 1, missed: 0, startedAt: now };
  }

  flush() {
    const c = this.current;
    this.current = undefined;
    if (!c || c.blocks < 3) return;
    const d = { digit: c.digit, duration_ms: c.blocks * DTMF_BLOCK_MS, at: c.startedAt };
    this.heard.push(d);
    if (this.onDigit) this.onDigit(d);
  }
}

/** Frequency (Hz), RMS (0..1 of full scale) and tone purity of `x` sampled at `rate`. */
function analyse(x, rate) {
  const n = x.length;
  if (n < 2) return { samples: n, frequency_hz: 0, rms: 0, rms_dbfs: -200, tone_ratio: 0 };
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let energy = 0;
  for (let i = 0; i < n; i++) energy += (x[i] - mean) * (x[i] - mean);
  const rms = Math.sqrt(energy / n);
  // rising zero crossings with hysteresis (a tenth of the RMS) against noise
  const hyst = rms * 0.1;
  let armed = false;
  let first = -1;
  let last = -1;
  let count = 0;
  for (let i = 1; i < n; i++) {
    const a = x[i - 1] - mean;
    const b = x[i] - mean;
    if (b < -hyst) armed = true;
    if (armed && a < 0 && b >= 0) {
      const t = i - 1 + (-a) / (b - a); // linear interpolation of the crossing
      if (first < 0) first = t;
      else count++;
      last = t;
      armed = false;
    }
  }
  const frequency = count > 0 && last > first ? (count * rate) / (last - first) : 0;
  // Goertzel power at the measured frequency vs the total power
  let toneRatio = 0;
  if (frequency > 0 && energy > 0) {
    const w = (2 * Math.PI * frequency) / rate;
    const coeff = 2 * Math.cos(w);
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const s0 = x[i] - mean + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    const power = s1 * s1 + s2 * s2 - coeff * s1 * s2; // |X(f)|^2
    toneRatio = Math.min(1, (2 * power) / (n * energy));
  }
  return {
    samples: n,
    frequency_hz: frequency,
    rms,
    rms_dbfs: rms > 0 ? Math.max(-200, 20 * Math.log10(rms)) : -200,
    tone_ratio: toneRatio,
  };
}

module.exports = { ToneSource, AudioAnalyser, DtmfDetector, analyse };
