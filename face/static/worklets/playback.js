// The creature's voice: a small jitter buffer of 24 kHz frames played at the context's rate.
// It tells the page when each frame *starts playing* (in context sample frames), so the page can
// put that frame's mouth on the screen when the frame is heard, not when it arrived.
// Underruns play silence and are counted; the buffer is capped (the oldest frame is dropped).
// Latency stays low: when the buffer has held more than it needs for a whole window, quiet
// frames (mouth 0) are skipped until it is back at the prebuffer level (counted as `trimmed`).
const IN_RATE = 24000;
const TRIM_WINDOW_S = 1.0;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.prebuffer = o.prebuffer || 2;
    this.maxFrames = o.maxFrames || 6;
    this.step = IN_RATE / sampleRate; // frame samples per output sample
    this.queue = []; // {index, mouth, t, pcm}
    this.cur = null; // the frame being played
    this.pos = 0; // fractional position in cur.pcm
    this.playing = false;
    this.underruns = 0;
    this.dropped = 0;
    this.played = 0;
    this.trimmed = 0;
    this.excess = 0; // quiet frames to skip
    this.minLen = Infinity; // the fewest frames queued in this window
    this.windowStart = 0;
    this.lastStats = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (!m) return;
    if (m.type === "frame") {
      this.queue.push(m);
      while (this.queue.length > this.maxFrames) { this.queue.shift(); this.dropped++; }
    } else if (m.type === "config") {
      if (m.prebuffer) this.prebuffer = m.prebuffer;
      if (m.maxFrames) this.maxFrames = m.maxFrames;
    } else if (m.type === "reset") {
      this.queue = []; this.cur = null; this.playing = false;
    }
  }

  // Take the next frame; `at` is the context sample frame where its first sample plays.
  next(at) {
    while (this.excess > 0 && this.queue.length > this.prebuffer && this.queue[0].mouth === 0) {
      this.queue.shift(); this.excess--; this.trimmed++;
    }
    this.cur = this.queue.shift() || null;
    this.pos = this.cur ? this.pos : 0;
    if (this.cur) {
      this.played++;
      this.port.postMessage({ type: "start", index: this.cur.index, mouth: this.cur.mouth, t: this.cur.t, at });
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;
    const n = out.length;
    if (!this.playing && this.queue.length >= this.prebuffer) {
      this.playing = true;
      this.pos = 0;
      this.next(currentFrame);
    }
    let i = 0;
    if (this.playing) {
      for (; i < n; i++) {
        if (this.cur && this.pos >= this.cur.pcm.length) {
          this.pos -= this.cur.pcm.length;
          this.next(currentFrame + i);
        }
        if (!this.cur) { // ran dry: silence until the buffer refills
          this.underruns++;
          this.playing = false;
          this.port.postMessage({ type: "underrun", at: currentFrame + i, underruns: this.underruns });
          break;
        }
        const p = this.cur.pcm, k = Math.floor(this.pos), frac = this.pos - k;
        const a = p[k];
        const b = k + 1 < p.length ? p[k + 1] : (this.queue.length ? this.queue[0].pcm[0] : a);
        out[i] = a + (b - a) * frac;
        this.pos += this.step;
      }
    }
    for (; i < n; i++) out[i] = 0;
    if (this.playing) {
      this.minLen = Math.min(this.minLen, this.queue.length);
      if (currentTime - this.windowStart >= TRIM_WINDOW_S) {
        this.excess = Math.max(0, this.minLen - (this.prebuffer - 1));
        this.minLen = Infinity;
        this.windowStart = currentTime;
      }
    } else { this.minLen = Infinity; this.windowStart = currentTime; this.excess = 0; }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (currentTime - this.lastStats > 0.5) {
      this.lastStats = currentTime;
      this.port.postMessage({
        type: "stats", underruns: this.underruns, dropped: this.dropped, played: this.played, trimmed: this.trimmed,
        buffered: this.queue.length, playing: this.playing,
      });
    }
    return true;
  }
}
registerProcessor("creature-playback", PlaybackProcessor);
