// The 1-euro filter (Casiez, Roussel, Vogel, CHI 2012): little lag when the input moves fast,
// little jitter when it is still. Times in seconds.
const DERIVATIVE_CUTOFF_HZ = 1.0;

function alpha(cutoffHz, dt) {
  const tau = 1 / (2 * Math.PI * cutoffHz);
  return 1 / (1 + tau / dt);
}

export class OneEuro {
  constructor(minCutoffHz = 1.0, beta = 0.5) {
    this.minCutoff = minCutoffHz;
    this.beta = beta;
    this.x = null;
    this.dx = 0;
    this.t = null;
  }

  filter(value, t) {
    if (this.x === null || this.t === null || t <= this.t) {
      this.x = value;
      this.t = t;
      return value;
    }
    const dt = t - this.t;
    this.t = t;
    const dRaw = (value - this.x) / dt;
    this.dx += alpha(DERIVATIVE_CUTOFF_HZ, dt) * (dRaw - this.dx);
    const cutoff = this.minCutoff + this.beta * Math.abs(this.dx);
    this.x += alpha(cutoff, dt) * (value - this.x);
    return this.x;
  }
}
