// Small numeric helpers the face's parts share.

export const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
export const rand = (lo, hi) => lo + Math.random() * (hi - lo);
// The fraction of the way an exponential ease with time constant `tau` covers in `dt`.
export const ease = (dt, tau) => 1 - Math.exp(-dt / tau);
export const isNum = (v) => typeof v === "number" && Number.isFinite(v);
// SVG path numbers: one decimal is finer than a pixel and keeps the attributes short.
export const f1 = (v) => v.toFixed(1);
