// A tap on what is actually played: RMS per short block, stamped with the context time of the
// block's first sample. The page's A/V-sync measurement compares it with the mouth it drew.
const BLOCK = 256; // ~5 ms at 48 kHz
const BATCH = 8; // blocks per message

class MeterProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.sum = 0; this.n = 0; this.start = 0;
    this.batch = [];
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      if (this.n === 0) this.start = currentFrame + i;
      this.sum += ch[i] * ch[i];
      if (++this.n === BLOCK) {
        this.batch.push(this.start / sampleRate, this.sum / BLOCK);
        this.sum = 0; this.n = 0;
        if (this.batch.length >= 2 * BATCH) { this.port.postMessage(this.batch); this.batch = []; }
      }
    }
    return true;
  }
}
registerProcessor("creature-meter", MeterProcessor);
