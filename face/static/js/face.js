// The creature's face: a pure renderer of the states the server streams over /ws/face. It owns
// no policy: it eases toward the preset (data from /presets.json) of the emotion it is told, lets
// the mouth follow `mouth`, and adds life (blinks, sway, breathing, saccades, nods).
// This module wires the parts and runs the frame loop; each part is its own module:
//   message.js (the message contract), presets.js (the expression asked for), mouth.js,
//   eyes.js (eyes, brows, blinks, saccades), nod.js (listening), gaze.js (+ camera.js),
//   head.js (pose and blush), socket.js (the WebSocket), screen.js (full screen, wake lock),
//   visemes.js (the mouth's shape from the message's `visemes` weights).
// Test hooks: window.face.state (what is drawn), and data-* attributes on <html>.

import { Blinker, Saccades, drawEyes } from "./eyes.js";
import { Gaze, startCamera } from "./gaze.js";
import { drawHead } from "./head.js";
import { applyMessage, createInput, parseMessage } from "./message.js";
import { MouthRamp, drawMouth, drawVisemeMouth, jawOf, mouthWidthPx } from "./mouth.js";
import { Listening } from "./nod.js";
import { EMPTY_PRESETS, fetchPresets, hasEmotions, targetFace } from "./presets.js";
import { setupScreen } from "./screen.js";
import { connectFace } from "./socket.js";
import { clamp, ease, isNum } from "./util.js";
import { EMPTY_VISEMES, VisemeRamp, fetchVisemes, mixShape } from "./visemes.js";

const EASE_TAU_MS = 220; // expression easing time constant
const MAX_DT_MS = 100; // a frame after a stall eases as if it came 100 ms after the last
const STALE_MS = 1000; // no state for this long (loop stopped, link lost): close the mouth

const root = document.documentElement;
const $ = (id) => document.getElementById(id);
const el = {
  head: $("head"), mouthInner: $("mouth-inner"), mouthLine: $("mouth-line"),
  cheekL: $("cheek-l"), cheekR: $("cheek-r"), browL: $("brow-l"), browR: $("brow-r"),
  irisL: $("iris-l"), irisR: $("iris-r"), lidUpL: $("lid-up-l"), lidUpR: $("lid-up-r"),
  lidLoL: $("lid-lo-l"), lidLoR: $("lid-lo-r"), lashL: $("lash-l"), lashR: $("lash-r"),
  statusText: $("status-text"), caption: $("caption"), speaker: $("speaker"),
};
// what the speaker badge says (an interpreter's face; none when it is not interpreting)
const SPEAKER_LABELS = { nobody: "", visitor: "listening to the visitor", interpreter: "translating", both: "listening and translating" };

const input = createInput(); // what the server told us (validated)
let presets = EMPTY_PRESETS;
let visemeData = EMPTY_VISEMES;
const visemeRamp = new VisemeRamp();
let pageConfig = { gaze: true, ws_path: "/ws/face" };
const mouth = new MouthRamp();
const blinker = new Blinker();
const saccades = new Saccades();
const listening = new Listening();
const gaze = new Gaze();

// What is drawn. `frameTime` is the face's own clock: the animation-frame time the other
// values were drawn for (the mouth ramps on it).
const state = {
  emotion: "neutral", mouth: 0, mouthTarget: 0, mouthOpenPx: 0, speaking: false, listening: false,
  connected: false, server: "connecting", backend: true,
  blinking: false, blinks: 0, eyeOpen: 0, pupilX: 0, pupilY: 0, nod: 0, nodding: false,
  listenAmount: 0, params: {}, messages: 0, malformed: 0, frameTime: 0, connectAttempts: 0,
  gaze: { enabled: false, active: false, seen: false, faceX: null, faceY: null, x: 0, y: 0, error: null },
  presetsLoaded: false, viseme: null, mouthWidthPx: 0, speaker: null, caption: "", captionBy: null,
};
window.face = { state, input, get presets() { return presets; } };
// Phone audio drives the mouth from its playback clock: fn(now) -> 0..1, or null to use ours.
let mouthSource = null;
window.face.setMouthSource = (fn) => { mouthSource = typeof fn === "function" ? fn : null; };

async function loadPresets() {
  const data = await fetchPresets();
  if (data) {
    presets = data;
    state.presetsLoaded = hasEmotions(data);
  }
  const shapes = await fetchVisemes();
  if (shapes) visemeData = shapes;
}

function onText(text) {
  const msg = parseMessage(text);
  if (!msg) { onMalformed(); return; }
  applyMessage(input, msg, (name) => name in presets.emotions || !state.presetsLoaded, performance.now());
  state.messages = input.messages;
  setMouthTarget(input.mouth);
  if (input.visemes) visemeRamp.remember(input.visemes, input.index);
  else visemeRamp.forget();
}
function onMalformed() { input.malformed++; state.malformed = input.malformed; }
function setMouthTarget(v) { mouth.retarget(v); state.mouthTarget = mouth.to; }

function onStatus(status, attempts) {
  state.server = status;
  state.connectAttempts = attempts;
  if (status === "open" && !state.presetsLoaded) loadPresets();
  if (status === "closed") input.lastAt = -Infinity; // the mouth closes at once (see STALE_MS)
}

function setData(key, value) {
  const v = String(value);
  if (root.dataset[key] !== v) root.dataset[key] = v;
}

// Ease the drawn expression toward `target`, parameter by parameter.
function easeExpression(target, dt) {
  const k = ease(dt, EASE_TAU_MS);
  const cur = state.params;
  for (const key of Object.keys(target)) {
    const v = isNum(cur[key]) ? cur[key] : target[key];
    cur[key] = v + (target[key] - v) * k;
  }
}

// The viseme shape to draw now (null: the RMS mouth). With the phone's audio playing, the heard
// frame's weights; otherwise the newest.
function visemeShape(now, heard) {
  const phone = window.phoneAudio;
  const heardIndex = isNum(heard) && phone && typeof phone.playingIndex === "function" ? phone.playingIndex(now) : null;
  const weights = visemeRamp.weightsFor(heardIndex);
  state.viseme = weights ? dominantOf(weights) : null;
  visemeRamp.retarget(weights ? mixShape(visemeData.shapes, weights) : null);
  return visemeRamp.advance(now);
}
function dominantOf(weights) {
  let best = null, bw = -1;
  for (const [k, w] of Object.entries(weights)) if (w > bw) { best = k; bw = w; }
  return best;
}

// ---- the frame loop ----------------------------------------------------------------------
let last = performance.now();
function frame(now) {
  const dt = clamp(now - last, 0, MAX_DT_MS);
  last = now;
  state.frameTime = now;
  const target = targetFace(presets, input);
  if (target) easeExpression(target, dt);

  // listening shows only while the creature is not speaking
  const isListening = input.listening && !input.speaking;
  const nod = listening.update(now, dt, isListening);
  state.listenAmount = listening.amount;
  state.nod = nod; state.nodding = nod > 0.01;

  const bf = blinker.factor(now);
  state.blinks = blinker.count;
  state.blinking = bf < 0.999;

  saccades.update(now, dt);
  gaze.update(now, dt);
  sendGaze(now);
  const pupils = gaze.pupils(saccades);
  state.pupilX = pupils.x; state.pupilY = pupils.y;
  Object.assign(state.gaze, { seen: gaze.seen, faceX: gaze.faceX, faceY: gaze.faceY, x: gaze.tx, y: gaze.ty });

  if (now - input.lastAt > STALE_MS && (input.mouth !== 0 || input.speaking)) {
    input.mouth = 0; input.speaking = false; // never freeze mid-word
    setMouthTarget(0);
    visemeRamp.forget();
  }
  const own = mouth.advance(now);
  const heard = mouthSource ? mouthSource(now) : null; // phone audio: the playback clock
  state.mouth = isNum(heard) ? clamp(heard, 0, 1) : own;

  if (target) { // nothing is drawn until the presets have arrived (face.css hides the face)
    const p = listening.apply(state.params);
    const open = clamp(p.eye_open * bf, 0, 1);
    state.eyeOpen = open;
    const opened = Math.max(p.mouth_open, state.mouth);
    const shape = visemeShape(now, heard);
    if (shape) {
      const drawn = drawVisemeMouth(el, p, shape, jawOf(opened, visemeData.jaw_min));
      state.mouthOpenPx = drawn.open; state.mouthWidthPx = drawn.width;
    } else {
      state.mouthOpenPx = drawMouth(el, p, opened);
      state.mouthWidthPx = mouthWidthPx(p);
    }
    drawEyes(el, p, open, pupils.x, pupils.y);
    drawHead(el, now, p, gaze.tx, gaze.ty, nod);
  }

  state.emotion = input.emotion;
  state.speaking = input.speaking;
  state.listening = isListening;
  state.backend = input.backend;
  state.connected = state.server === "open" && input.backend;
  setData("emotion", state.emotion);
  setData("speaking", state.speaking);
  setData("listening", isListening);
  setData("connected", state.connected);
  setData("blinking", state.blinking);
  setData("presets", !!target);
  showInterpreter();
  el.statusText.textContent = state.server !== "open" ? "face server unreachable, reconnecting"
    : !target ? "no face presets from the server" : "voice offline";
  requestAnimationFrame(frame);
}

// An interpreter's face: the speaker badge and the caption (text only: never HTML); in a
// conversation the caption of the user's or the creature's words (face.captions).
function showInterpreter() {
  if (state.speaker !== input.speaker) {
    state.speaker = input.speaker;
    el.speaker.textContent = SPEAKER_LABELS[input.speaker] || "";
    setData("speaker", input.speaker || "none");
  }
  if (state.caption !== input.caption) {
    state.caption = input.caption;
    el.caption.textContent = input.caption;
    setData("caption", input.caption !== "");
  }
  if (state.captionBy !== input.captionBy) { // a conversation's caption: whose words
    state.captionBy = input.captionBy;
    setData("captionBy", input.captionBy || "none");
  }
}

// ---- gaze start-up --------------------------------------------------------------------------
// Where the user's face is also goes to the creature (for a robot's head: docs/bodies.md), at
// most every GAZE_SEND_MS while seen, and once when lost.
const GAZE_SEND_MS = 100;
let faceSocket = null, gazeSentAt = -1e9, gazeSentSeen = false;
function sendGaze(now) {
  if (!faceSocket || (!gaze.seen && !gazeSentSeen) || now - gazeSentAt < GAZE_SEND_MS) return;
  gazeSentAt = now;
  gazeSentSeen = gaze.seen;
  const r = (v) => Math.round(v * 1000) / 1000;
  faceSocket.send(JSON.stringify(gaze.seen ? { type: "gaze", x: r(gaze.tx), y: r(gaze.ty) } : { type: "gaze", x: null, y: null }));
}
function gazeAllowed() { return new URLSearchParams(location.search).get("gaze") !== "0"; }
async function startGaze() {
  state.gaze.enabled = true;
  try {
    await startCamera((sample) => gaze.sample(sample, performance.now()));
    state.gaze.active = true;
    state.gaze.error = null;
  } catch (e) {
    state.gaze.active = false;
    state.gaze.error = String(e && e.message ? e.message : e);
  }
}

setupScreen(() => { if (pageConfig.gaze && !state.gaze.active && gazeAllowed()) startGaze(); });

async function main() {
  try { const r = await fetch("/face-config.json", { cache: "no-store" }); pageConfig = { ...pageConfig, ...(await r.json()) }; } catch { /* defaults */ }
  await loadPresets();
  blinker.schedule(performance.now());
  faceSocket = connectFace(pageConfig.ws_path, { onStatus, onText, onBinary: onMalformed });
  requestAnimationFrame(frame);
  if (pageConfig.gaze && gazeAllowed()) startGaze();
}
main();
