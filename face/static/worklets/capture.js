// Mic capture: the context's rate (44.1 or 48 kHz) -> 24 kHz mono PCM16 chunks for the server.
// Why here: on the audio thread, resampling never waits on the page's main thread. A 2-tap mean
// removes most of what would alias above 12 kHz, then linear interpolation hits 24 kHz exactly.
const OUT_RATE = 24000;
const CHUNK = 480; // 20 ms at 24 kHz per message: small enough for low latency, few messages

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.pos = 0; // position of the next output sample, in input samples from `prev`
    this.prev = 0; // the last filtered input sample of the previous block
    this.prevRaw = 0;
    this.buf = new Int16Array(CHUNK);
    this.n = 0;
    this.on = true;
    this.port.onmessage = (e) => { if (e.data && e.data.type === "stop") this.on = false; };
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!this.on) return false;
    if (!ch) return true;
    // filtered[i] = (raw[i-1] + raw[i]) / 2; sample -1 is the previous block's last
    const len = ch.length;
    const f = new Float32Array(len + 1);
    f[0] = this.prev;
    let last = this.prevRaw;
    for (let i = 0; i < len; i++) { f[i + 1] = 0.5 * (last + ch[i]); last = ch[i]; }
    this.prevRaw = last;
    // f[0] sits at input position -1 relative to this block; this.pos counts from f[0]
    while (this.pos < len) {
      const i = Math.floor(this.pos), frac = this.pos - i;
      const v = f[i] + (f[i + 1] - f[i]) * frac;
      const s = Math.max(-1, Math.min(1, v));
      this.buf[this.n++] = Math.round(s * 32767);
      if (this.n === CHUNK) {
        this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
        this.buf = new Int16Array(CHUNK);
        this.n = 0;
      }
      this.pos += this.step;
    }
    this.pos -= len;
    this.prev = f[len];
    return true;
  }
}
registerProcessor("creature-capture", CaptureProcessor);
