// The emotion presets are data: configs/emotions.yaml, validated by affect.presets and served as
// /presets.json. This module fetches them and computes the face an input asks for; it holds no
// geometry of its own, so the YAML file is the one place an expression is written.

// Valence/arousal blending: Gaussian weights by distance in the valence/arousal plane, with a
// bonus for the named emotion so that it stays recognisable.
const BLEND_SIGMA = 0.35;
const NAMED_BONUS = 1.0;

export const EMPTY_PRESETS = { params: {}, emotions: {} };

// The presets, or null when the server is unreachable or sent something that is not presets.
export async function fetchPresets() {
  try {
    const r = await fetch("/presets.json", { cache: "no-store" });
    const data = await r.json();
    if (data && typeof data.emotions === "object" && data.emotions) return data;
  } catch { /* the server is down: tried again on the next connection */ }
  return null;
}

export const hasEmotions = (presets) => Object.keys(presets.emotions).length > 0;

// The face the input asks for: the named preset (neutral for an unknown name), blended by
// valence/arousal when both are given; null while there are no presets.
export function targetFace(presets, input) {
  const emos = presets.emotions;
  const named = emos[input.emotion] || emos.neutral;
  if (!named) return null;
  if (input.valence === null || input.arousal === null) return named.face;
  const sigma2 = 2 * BLEND_SIGMA * BLEND_SIGMA;
  const out = {}, names = Object.keys(emos);
  let total = 0;
  const w = names.map((n) => {
    const e = emos[n];
    const d2 = (e.valence - input.valence) ** 2 + (e.arousal - input.arousal) ** 2;
    const wi = Math.exp(-d2 / sigma2) + (n === input.emotion ? NAMED_BONUS : 0);
    total += wi;
    return wi;
  });
  for (const p of Object.keys(named.face)) {
    let s = 0;
    names.forEach((n, i) => { s += w[i] * emos[n].face[p]; });
    out[p] = s / total;
  }
  return out;
}
