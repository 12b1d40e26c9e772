// The eyes and brows: blinks and saccades (the life an idle face needs), and the drawing of lids,
// irises and brows for an expression.

import { clamp, ease, f1, rand } from "./util.js";

const BLINK_MIN_MS = 2000, BLINK_MAX_MS = 6000; // time between blinks
const BLINK_CLOSE_MS = 60, BLINK_OPEN_MS = 90; // one blink is ~150 ms
const DOUBLE_BLINK_P = 0.2, DOUBLE_BLINK_GAP_MS = 120;
const SACCADE_MIN_MS = 600, SACCADE_MAX_MS = 2600, SACCADE_RANGE = 0.22;
const SACCADE_Y_SCALE = 0.6; // saccades wander less up and down than sideways
const SACCADE_TAU_MS = 30; // saccades are quick
const PUPIL_RANGE_X = 14, PUPIL_RANGE_Y = 12; // px in the eye at gaze +-1
// the eye shapes in face.html (clip paths, scleras, rims) use the same centres and radii
const EYES = { l: { cx: -62, cy: -25 }, r: { cx: 62, cy: -25 } };
const EYE_RX = 38, EYE_RY = 44;

// Blinks at random intervals, sometimes twice in a row.
export class Blinker {
  constructor() {
    this.next = 0;
    this.start = -1;
    this.queued = 0;
    this.count = 0;
  }

  schedule(now) { this.next = now + rand(BLINK_MIN_MS, BLINK_MAX_MS); }

  // How open the lids are allowed to be at `now`: 1 outside a blink, down to 0 in the middle.
  factor(now) {
    if (this.start < 0 && now >= this.next) {
      this.start = now;
      this.count++;
      if (this.queued === 0 && Math.random() < DOUBLE_BLINK_P) this.queued = 1;
    }
    if (this.start < 0) return 1;
    const t = now - this.start;
    if (t < BLINK_CLOSE_MS) return 1 - t / BLINK_CLOSE_MS;
    if (t < BLINK_CLOSE_MS + BLINK_OPEN_MS) return (t - BLINK_CLOSE_MS) / BLINK_OPEN_MS;
    this.start = -1;
    if (this.queued > 0) { this.queued--; this.next = now + DOUBLE_BLINK_GAP_MS; }
    else this.schedule(now);
    return 1;
  }
}

// Small quick eye movements to a new random point every so often; (cx, cy) is where they are.
export class Saccades {
  constructor() {
    this.next = 0;
    this.x = 0; this.y = 0;
    this.cx = 0; this.cy = 0;
  }

  update(now, dt) {
    if (now >= this.next) {
      this.x = rand(-SACCADE_RANGE, SACCADE_RANGE);
      this.y = rand(-SACCADE_RANGE, SACCADE_RANGE) * SACCADE_Y_SCALE;
      this.next = now + rand(SACCADE_MIN_MS, SACCADE_MAX_MS);
    }
    const k = ease(dt, SACCADE_TAU_MS);
    this.cx += (this.x - this.cx) * k;
    this.cy += (this.y - this.cy) * k;
  }
}

// Lids opened by `open` (0..1, blinks included), irises looking at (px, py) (-1..1 each).
function drawEye(el, side, p, open, px, py) {
  const { cx, cy } = EYES[side];
  const top = cy - EYE_RY, bottom = cy + EYE_RY;
  const lowEdge = bottom - p.lower_lid * EYE_RY * 0.9;
  const upEdge = top + (1 - open) * (lowEdge - top);
  const x0 = cx - EYE_RX - 6, x1 = cx + EYE_RX + 6;
  const sag = 10 * open; // an open lid's edge arches, a closed one is flat
  const up = `M${f1(x0)},${f1(top - 8)} L${f1(x1)},${f1(top - 8)} L${f1(x1)},${f1(upEdge)} Q${f1(cx)},${f1(upEdge - sag)} ${f1(x0)},${f1(upEdge)} Z`;
  const lash = `M${f1(x1)},${f1(upEdge)} Q${f1(cx)},${f1(upEdge - sag)} ${f1(x0)},${f1(upEdge)}`;
  const smile = 14 * p.lower_lid;
  const lo = `M${f1(x0)},${f1(bottom + 8)} L${f1(x1)},${f1(bottom + 8)} L${f1(x1)},${f1(lowEdge + smile * 0.3)} Q${f1(cx)},${f1(lowEdge - smile)} ${f1(x0)},${f1(lowEdge + smile * 0.3)} Z`;
  const L = side === "l";
  const s = clamp(p.pupil_size, 0.5, 1.5);
  (L ? el.irisL : el.irisR).setAttribute("transform", `translate(${f1(cx + px * PUPIL_RANGE_X)},${f1(cy + py * PUPIL_RANGE_Y)}) scale(${s.toFixed(3)})`);
  (L ? el.lidUpL : el.lidUpR).setAttribute("d", up);
  (L ? el.lidLoL : el.lidLoR).setAttribute("d", lo);
  (L ? el.lashL : el.lashR).setAttribute("d", lash);
}

function drawBrow(el, side, p) {
  const { cx, cy } = EYES[side];
  const dir = side === "l" ? 1 : -1; // toward the middle of the face
  const base = cy - EYE_RY - 20 - p.brow_raise * 16;
  const inner = { x: cx + dir * 32, y: base - p.brow_tilt * 20 };
  const outer = { x: cx - dir * 34, y: base + p.brow_tilt * 5 + 4 };
  const mid = { x: cx, y: Math.min(inner.y, outer.y) - 9 };
  (side === "l" ? el.browL : el.browR).setAttribute(
    "d", `M${f1(outer.x)},${f1(outer.y)} Q${f1(mid.x)},${f1(mid.y)} ${f1(inner.x)},${f1(inner.y)}`,
  );
}

export function drawEyes(el, p, open, px, py) {
  drawEye(el, "l", p, open, px, py);
  drawEye(el, "r", p, open, px, py);
  drawBrow(el, "l", p);
  drawBrow(el, "r", p);
}
