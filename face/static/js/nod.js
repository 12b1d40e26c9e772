// Listening (the user speaks, the creature does not): a small "mm-hm" (brows up, a closed smile,
// raised lower lids) that comes and goes smoothly, and bursts of small nods. It never touches the
// mouth's opening: the mouth stays exactly as the server says.

import { clamp, ease, rand } from "./util.js";

const LISTEN_TAU_MS = 300; // how fast the listening expression comes and goes
const NOD_PERIOD_MS = 620, NODS_PER_BURST = 2, NOD_REST_MIN_MS = 1200, NOD_REST_MAX_MS = 2800;
const LISTEN_BROW_RAISE = 0.25, LISTEN_SMILE = 0.3, LISTEN_LOWER_LID = 0.12;

export class Listening {
  constructor() {
    this.amount = 0; // 0..1, how much of the listening face shows
    this.burstStart = -1;
    this.restUntil = 0;
  }

  // Advance to `now`; returns the nod (0..1..0 per nod, 0 when not listening).
  update(now, dt, listening) {
    this.amount += ((listening ? 1 : 0) - this.amount) * ease(dt, LISTEN_TAU_MS);
    return this.nod(now, listening);
  }

  nod(now, listening) {
    if (!listening) { this.burstStart = -1; return 0; }
    if (this.burstStart < 0) {
      if (now < this.restUntil) return 0;
      this.burstStart = now;
    }
    const t = now - this.burstStart;
    if (t > NOD_PERIOD_MS * NODS_PER_BURST) {
      this.burstStart = -1;
      this.restUntil = now + rand(NOD_REST_MIN_MS, NOD_REST_MAX_MS);
      return 0;
    }
    return Math.sin((Math.PI * t) / NOD_PERIOD_MS) ** 2;
  }

  // The expression `p` with as much of the listening face as shows now (a new object).
  apply(p) {
    const L = this.amount;
    return {
      ...p,
      brow_raise: clamp(p.brow_raise + LISTEN_BROW_RAISE * L, -1, 1),
      mouth_curve: clamp(p.mouth_curve + LISTEN_SMILE * L, -1, 1),
      lower_lid: clamp(p.lower_lid + LISTEN_LOWER_LID * L, 0, 1),
    };
  }
}
