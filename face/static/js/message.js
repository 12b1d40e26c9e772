// The face message (docs/face.md): {emotion, mouth, speaking, listening?, connected?, valence?,
// arousal?, speaker?, caption?, caption_by?, ...}. Validated here so that a malformed message changes nothing; keys the page does
// not know are ignored, so the server can add some without breaking older pages.

import { clamp, isNum } from "./util.js";
import { validWeights } from "./visemes.js";

const BOOL_KEYS = ["speaking", "listening", "connected"];
const AFFECT_KEYS = ["valence", "arousal"];
// An interpreter's face (docs/interpreter.md): who speaks, and the translation as a caption.
export const SPEAKERS = ["nobody", "visitor", "interpreter", "both"];
export const MAX_CAPTION_CHARS = 400;
// A conversation's caption (face.captions): whose words it shows.
export const CAPTION_BY = ["user", "creature"];

// What the server last told the page (already validated and clamped).
export function createInput() {
  return {
    emotion: "neutral", mouth: 0, speaking: false, listening: false, backend: true,
    valence: null, arousal: null, messages: 0, malformed: 0, lastAt: 0,
    visemes: null, index: null, speaker: null, caption: "", captionBy: null,
  };
}

// The message as an object, or null when it is not a JSON object or a known key has the wrong type.
export function parseMessage(text) {
  let msg;
  try { msg = JSON.parse(text); } catch { return null; }
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) return null;
  if ("emotion" in msg && typeof msg.emotion !== "string") return null;
  if ("mouth" in msg && !isNum(msg.mouth)) return null;
  for (const k of BOOL_KEYS) if (k in msg && typeof msg[k] !== "boolean") return null;
  for (const k of AFFECT_KEYS) if (k in msg && msg[k] !== null && !isNum(msg[k])) return null;
  if ("visemes" in msg && !validWeights(msg.visemes)) return null;
  if ("index" in msg && !Number.isInteger(msg.index)) return null;
  if ("speaker" in msg && msg.speaker !== null && !SPEAKERS.includes(msg.speaker)) return null;
  if ("caption" in msg && typeof msg.caption !== "string") return null;
  if ("caption_by" in msg && msg.caption_by !== null && !CAPTION_BY.includes(msg.caption_by)) return null;
  return msg;
}

// Apply a parsed message to `input`. `canShow(name)` says whether the page can show an emotion:
// one it has no preset for keeps the last face (the rest of the message still applies).
export function applyMessage(input, msg, canShow, now) {
  if (typeof msg.emotion === "string" && canShow(msg.emotion)) input.emotion = msg.emotion;
  if ("mouth" in msg) input.mouth = clamp(msg.mouth, 0, 1);
  if ("speaking" in msg) input.speaking = msg.speaking;
  if ("listening" in msg) input.listening = msg.listening;
  if ("connected" in msg) input.backend = msg.connected;
  input.valence = isNum(msg.valence) ? clamp(msg.valence, -1, 1) : null;
  input.arousal = isNum(msg.arousal) ? clamp(msg.arousal, -1, 1) : null;
  input.visemes = "visemes" in msg ? msg.visemes : null; // none: the RMS mouth
  input.index = Number.isInteger(msg.index) ? msg.index : null;
  input.speaker = typeof msg.speaker === "string" ? msg.speaker : null; // none: not interpreting
  input.caption = typeof msg.caption === "string" ? msg.caption.slice(-MAX_CAPTION_CHARS) : "";
  input.captionBy = typeof msg.caption_by === "string" ? msg.caption_by : null;
  input.messages++;
  input.lastAt = now;
}
