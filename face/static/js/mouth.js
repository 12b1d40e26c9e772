// The mouth: it ramps linearly to each new value over one server frame, so 12.5 Hz messages never
// look steppy, and draws the opening for the current expression.
//
// The ramp runs on the face's own frame clock (the requestAnimationFrame time each drawing is
// for): a new value starts ramping from what the last frame drew, at that frame's time. So the
// drawn mouth is continuous and never moves faster than a full 0 -> 1 per frame period on the
// clock it is drawn by, however late messages or frames are.

import { clamp, f1 } from "./util.js";

export const FRAME_MS = 80; // server frame period: the mouth ramps to each new value over one frame
const MOUTH_Y = 72; // the mouth line's height in the head's coordinates
const MOUTH_OPEN_PX = 58, MOUTH_HALF_W = 46;
const CURVE_PX = 16; // mouth_curve 1 raises the corners this much
const SNEER_LEFT_PX = 3, SNEER_RIGHT_PX = 12; // mouth_sneer lifts one corner more than the other

export class MouthRamp {
  constructor() {
    this.from = 0;
    this.to = 0;
    this.t0 = 0;
    this.clock = 0; // the time of the last frame drawn
  }

  // A new target from the server; a repeated value must not restart (and slow) the ramp.
  retarget(target) {
    if (target === this.to) return;
    this.from = this.valueAt(this.clock);
    this.to = target;
    this.t0 = this.clock;
  }

  valueAt(now) {
    const k = clamp((now - this.t0) / FRAME_MS, 0, 1);
    return this.from + (this.to - this.from) * k;
  }

  // The value for the frame drawn at `now`; moves the ramp's clock there.
  advance(now) {
    this.clock = Math.max(this.clock, now);
    return this.valueAt(this.clock);
  }
}

// The RMS mouth's width for expression `p` (px).
export const mouthWidthPx = (p) => 2 * MOUTH_HALF_W * p.mouth_width;

// Draw the mouth for expression `p` opened by `open` (0..1); returns the opening in px.
export function drawMouth(el, p, open) {
  const w = MOUTH_HALF_W * p.mouth_width;
  const curve = p.mouth_curve * CURVE_PX;
  const yl = MOUTH_Y - curve - p.mouth_sneer * SNEER_LEFT_PX;
  const yr = MOUTH_Y - curve - p.mouth_sneer * SNEER_RIGHT_PX;
  const yc = MOUTH_Y + curve * 0.9;
  const h = open * MOUTH_OPEN_PX;
  const upC = yc - h * 0.45 - curve * 0.2, loC = yc + h * 1.7; // opening ~1.1 h
  el.mouthInner.setAttribute("d", `M${f1(-w)},${f1(yl)} Q0,${f1(upC)} ${f1(w)},${f1(yr)} Q0,${f1(loC)} ${f1(-w)},${f1(yl)} Z`);
  el.mouthLine.setAttribute("d", `M${f1(-w)},${f1(yl)} Q0,${f1(upC)} ${f1(w)},${f1(yr)}` + (h > 0.5 ? ` Q0,${f1(loC)} ${f1(-w)},${f1(yl)}` : ""));
  return h;
}

// A cubic Bezier's two control points at height `ctrl` make it pass through `mid` halfway
// between ends at `y0`: mid = (y0 + 3 ctrl) / 4.
const ctrlFor = (mid, y0) => (4 * mid - y0) / 3;
const JAW_FADE = 0.1; // below this loudness the jaw closes in proportion (silence: closed)

// How far a viseme shape opens at loudness `mouth` (0..1): from jaw_min up to 1 while speaking.
export function jawOf(mouth, jawMin) {
  return clamp(mouth / JAW_FADE, 0, 1) * (jawMin + (1 - jawMin) * clamp(mouth, 0, 1));
}

// Draw the mouth for expression `p` in viseme shape `s` ({width, up, down, round}, from
// /visemes.json) opened by `jaw` (0..1). The expression still sets the corners, so a smiling "O"
// still smiles. Returns {open, width} in px.
export function drawVisemeMouth(el, p, s, jaw) {
  const w = MOUTH_HALF_W * p.mouth_width * s.width;
  const curve = p.mouth_curve * CURVE_PX;
  const yl = MOUTH_Y - curve - p.mouth_sneer * SNEER_LEFT_PX;
  const yr = MOUTH_Y - curve - p.mouth_sneer * SNEER_RIGHT_PX;
  const y0 = (yl + yr) / 2;
  const yc = MOUTH_Y + curve * 0.9 * (1 - 0.5 * s.round); // a rounded mouth curves less
  const up = s.up * jaw, down = s.down * jaw;
  const cx = w * (0.2 + 0.8 * s.round); // rounded: controls out at the corners (an oval)
  const upY = ctrlFor(yc - up - curve * 0.1, y0), loY = ctrlFor(yc + down, y0);
  const upper = `M${f1(-w)},${f1(yl)} C${f1(-cx)},${f1(upY)} ${f1(cx)},${f1(upY)} ${f1(w)},${f1(yr)}`;
  const lower = ` C${f1(cx)},${f1(loY)} ${f1(-cx)},${f1(loY)} ${f1(-w)},${f1(yl)}`;
  el.mouthInner.setAttribute("d", upper + lower + " Z");
  el.mouthLine.setAttribute("d", upper + (up + down > 0.5 ? lower : ""));
  return { open: up + down, width: 2 * w };
}
