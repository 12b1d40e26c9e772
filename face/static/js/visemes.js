// Visemes: the mouth's shape from the server's per-frame weights (`visemes` in the face message,
// e.g. {"MBP": 0.8, "AA": 0.2}). The shapes are data (/visemes.json, from configs/visemes.yaml):
// each is a few numbers (width, lip lift and drop, roundness); the drawn shape is the weighted
// mix of them, ramped from frame to frame on the face's clock like the RMS mouth. Pages that get
// no `visemes` key keep the RMS mouth.
//
// With the phone's audio, the weights of the frame being *heard* are shown: each message carries
// its frame `index`, and the phone page says which frame is playing (window.phoneAudio).

import { FRAME_MS } from "./mouth.js";
import { clamp, isNum } from "./util.js";

const KEEP = 32; // frames of weights remembered for the playback clock
const SHAPE_KEYS = ["width", "up", "down", "round"];

export const EMPTY_VISEMES = { rest: "rest", jaw_min: 0.45, shapes: {} };

export async function fetchVisemes() {
  try {
    const r = await fetch("/visemes.json", { cache: "no-store" });
    const data = await r.json();
    if (data && typeof data.shapes === "object" && data.shapes) return data;
  } catch { /* the server is down or has no visemes: the RMS mouth it is */ }
  return null;
}

// A valid `visemes` value: an object of finite weights (>= 0).
export function validWeights(v) {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  return Object.values(v).every((w) => isNum(w) && w >= 0);
}

// The weighted mix of the shapes named in `weights` (unknown names are ignored); null if none.
export function mixShape(shapes, weights) {
  let total = 0;
  const out = { width: 0, up: 0, down: 0, round: 0 };
  for (const [name, w] of Object.entries(weights)) {
    const s = shapes[name];
    if (!s || !(w > 0)) continue;
    total += w;
    for (const k of SHAPE_KEYS) out[k] += w * (isNum(s[k]) ? s[k] : 0);
  }
  if (total <= 0) return null;
  for (const k of SHAPE_KEYS) out[k] /= total;
  return out;
}

// The shape ramps to each new target over one server frame (continuous, never steppy).
export class VisemeRamp {
  constructor() {
    this.from = null;
    this.to = null;
    this.t0 = 0;
    this.clock = 0;
    this.byIndex = new Map(); // frame index -> weights (the playback clock picks from these)
    this.last = null; // the newest weights
    this.lastIndex = null;
  }

  remember(weights, index) {
    this.last = weights;
    if (Number.isInteger(index)) {
      this.lastIndex = index;
      this.byIndex.set(index, weights);
      if (this.byIndex.size > KEEP) this.byIndex.delete(this.byIndex.keys().next().value);
    }
  }

  forget() { this.last = null; this.lastIndex = null; this.byIndex.clear(); }

  // The weights to show now: the heard frame's when the phone's playback clock says which it is.
  weightsFor(heardIndex) {
    if (Number.isInteger(heardIndex) && this.byIndex.has(heardIndex)) return this.byIndex.get(heardIndex);
    return this.last;
  }

  retarget(shape) {
    if (!shape) { this.from = this.to = null; return; }
    const same = this.to && SHAPE_KEYS.every((k) => this.to[k] === shape[k]);
    if (same) return;
    this.from = this.valueAt(this.clock) || shape;
    this.to = shape;
    this.t0 = this.clock;
  }

  valueAt(now) {
    if (!this.to) return null;
    const k = clamp((now - this.t0) / FRAME_MS, 0, 1);
    const out = {};
    for (const key of SHAPE_KEYS) out[key] = this.from[key] + (this.to[key] - this.from[key]) * k;
    return out;
  }

  advance(now) {
    this.clock = Math.max(this.clock, now);
    return this.valueAt(this.clock);
  }
}
