// The creature's face: a pure renderer of the states the server streams over /ws/face.
// It owns no policy: it eases toward the preset (data from /presets.json) of the emotion it is
// told, lets the mouth follow `mouth`, and adds life (blinks, sway, breathing, saccades, nods).
// Test hooks: window.face.state, and data-* attributes on <html>.

import { OneEuro } from "./one_euro.js";

// ---- timing and geometry constants (each named once) -----------------------------------
const FRAME_MS = 80; // server frame period: the mouth ramps to each new value over one frame
const EASE_TAU_MS = 220; // expression easing time constant
const BLINK_MIN_MS = 2000, BLINK_MAX_MS = 6000; // time between blinks
const BLINK_CLOSE_MS = 60, BLINK_OPEN_MS = 90; // one blink is ~150 ms
const DOUBLE_BLINK_P = 0.2, DOUBLE_BLINK_GAP_MS = 120;
const SACCADE_MIN_MS = 600, SACCADE_MAX_MS = 2600, SACCADE_RANGE = 0.22;
const SACCADE_TAU_MS = 30; // saccades are quick
const SWAY_PERIOD_MS = 7300, SWAY_DEG = 1.6, SWAY_PX = 4;
const BREATH_PERIOD_MS = 4200, BREATH_SCALE = 0.012;
const NOD_PERIOD_MS = 620, NODS_PER_BURST = 2, NOD_REST_MIN_MS = 1200, NOD_REST_MAX_MS = 2800;
const NOD_PX = 9, NOD_DEG = 2.5;
const LISTEN_TAU_MS = 300; // how fast the listening expression comes and goes
const RECONNECT_MIN_MS = 250, RECONNECT_MAX_MS = 4000, RECONNECT_JITTER = 0.3;
const GAZE_LOST_MS = 700; // no face for this long: the eyes drift back to the middle
const GAZE_DRIFT_TAU_MS = 600;
const GAZE_GAIN_X = 1.6, GAZE_GAIN_Y = 1.4; // camera offset -> gaze (-1..1)
const PUPIL_RANGE_X = 14, PUPIL_RANGE_Y = 12; // px in the eye at gaze +-1
const HEAD_FOLLOW_PX = 10, HEAD_FOLLOW_DEG = 3; // a little of the head follows the gaze
const MOUTH_OPEN_PX = 58, MOUTH_HALF_W = 46;
const HINT_MS = 4000;
const STALE_MS = 1000; // no state for this long (loop stopped, link lost): close the mouth

const EYES = { l: { cx: -62, cy: -25 }, r: { cx: 62, cy: -25 } };
const EYE_RX = 38, EYE_RY = 44;

// Used only until /presets.json arrives, so the page never renders garbage.
const FALLBACK_FACE = {
  brow_raise: 0, brow_tilt: 0, eye_open: 0.8, lower_lid: 0.1, pupil_size: 1, mouth_curve: 0.1,
  mouth_width: 1, mouth_open: 0, mouth_sneer: 0, head_tilt: 0, head_y: 0, blush: 0.15,
};

const root = document.documentElement;
const $ = (id) => document.getElementById(id);
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const rand = (lo, hi) => lo + Math.random() * (hi - lo);
const ease = (dt, tau) => 1 - Math.exp(-dt / tau);
const isNum = (v) => typeof v === "number" && Number.isFinite(v);

// ---- what the server told us (validated) ------------------------------------------------
const input = {
  emotion: "neutral", mouth: 0, speaking: false, listening: false, backend: true,
  valence: null, arousal: null, messages: 0, malformed: 0, lastAt: 0,
};
let presets = { params: {}, emotions: {} };

const state = {
  emotion: "neutral", mouth: 0, mouthTarget: 0, speaking: false, listening: false,
  connected: false, server: "connecting", backend: true,
  blinking: false, blinks: 0, eyeOpen: 0.8, pupilX: 0, pupilY: 0, nod: 0, nodding: false,
  listenAmount: 0, params: { ...FALLBACK_FACE }, messages: 0, malformed: 0,
  gaze: { enabled: false, active: false, seen: false, faceX: null, faceY: null, x: 0, y: 0, error: null },
  presetsLoaded: false,
};
window.face = { state, input, get presets() { return presets; } };
// Phone audio drives the mouth from its playback clock: fn(now) -> 0..1, or null to use ours.
let mouthSource = null;
window.face.setMouthSource = (fn) => { mouthSource = typeof fn === "function" ? fn : null; };

// ---- message validation: a malformed message changes nothing -----------------------------
const BOOL_KEYS = ["speaking", "listening", "connected"];
function parseMessage(text) {
  let msg;
  try { msg = JSON.parse(text); } catch { return null; }
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) return null;
  if ("emotion" in msg && typeof msg.emotion !== "string") return null;
  if ("mouth" in msg && !isNum(msg.mouth)) return null;
  for (const k of BOOL_KEYS) if (k in msg && typeof msg[k] !== "boolean") return null;
  for (const k of ["valence", "arousal"]) if (k in msg && msg[k] !== null && !isNum(msg[k])) return null;
  return msg; // unknown keys are ignored
}

function applyMessage(text) {
  const msg = parseMessage(text);
  if (!msg) { input.malformed++; state.malformed = input.malformed; return; }
  if (typeof msg.emotion === "string" && (msg.emotion in presets.emotions || !state.presetsLoaded)) {
    input.emotion = msg.emotion; // an emotion this page has no preset for keeps the last one
  }
  if ("mouth" in msg) input.mouth = clamp(msg.mouth, 0, 1);
  if ("speaking" in msg) input.speaking = msg.speaking;
  if ("listening" in msg) input.listening = msg.listening;
  if ("connected" in msg) input.backend = msg.connected;
  input.valence = isNum(msg.valence) ? clamp(msg.valence, -1, 1) : null;
  input.arousal = isNum(msg.arousal) ? clamp(msg.arousal, -1, 1) : null;
  input.messages++;
  input.lastAt = performance.now();
  state.messages = input.messages;
  startMouthRamp(input.mouth);
}

// ---- the mouth: ramp to each new value over one server frame ------------------------------
const mouthRamp = { from: 0, to: 0, t0: 0 };
function startMouthRamp(target) {
  if (target === mouthRamp.to) return; // a repeated value must not restart (and slow) the ramp
  mouthRamp.from = mouthAt(performance.now());
  mouthRamp.to = target;
  mouthRamp.t0 = performance.now();
  state.mouthTarget = target;
}
function mouthAt(now) {
  const k = clamp((now - mouthRamp.t0) / FRAME_MS, 0, 1);
  return mouthRamp.from + (mouthRamp.to - mouthRamp.from) * k;
}

// ---- target expression: the named preset, blended by valence/arousal when given -------------
function targetFace() {
  const emos = presets.emotions;
  const named = emos[input.emotion] || emos.neutral;
  if (!named) return FALLBACK_FACE;
  if (input.valence === null || input.arousal === null) return named.face;
  // Gaussian weights by distance in the valence/arousal plane; the named emotion gets a bonus.
  const SIGMA2 = 2 * 0.35 * 0.35, NAMED_BONUS = 1.0;
  const out = {}, names = Object.keys(emos);
  let total = 0;
  const w = names.map((n) => {
    const e = emos[n];
    const d2 = (e.valence - input.valence) ** 2 + (e.arousal - input.arousal) ** 2;
    const wi = Math.exp(-d2 / SIGMA2) + (n === input.emotion ? NAMED_BONUS : 0);
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

// ---- life: blinks, saccades, nods ------------------------------------------------------------
const blink = { next: 0, start: -1, queued: 0 };
function scheduleBlink(now) { blink.next = now + rand(BLINK_MIN_MS, BLINK_MAX_MS); }
function blinkFactor(now) {
  if (blink.start < 0 && now >= blink.next) {
    blink.start = now;
    state.blinks++;
    if (blink.queued === 0 && Math.random() < DOUBLE_BLINK_P) blink.queued = 1;
  }
  if (blink.start < 0) return 1;
  const t = now - blink.start;
  if (t < BLINK_CLOSE_MS) return 1 - t / BLINK_CLOSE_MS;
  if (t < BLINK_CLOSE_MS + BLINK_OPEN_MS) return (t - BLINK_CLOSE_MS) / BLINK_OPEN_MS;
  blink.start = -1;
  if (blink.queued > 0) { blink.queued--; blink.next = now + DOUBLE_BLINK_GAP_MS; }
  else scheduleBlink(now);
  return 1;
}

const saccade = { next: 0, x: 0, y: 0, cx: 0, cy: 0 };
function updateSaccade(now, dt) {
  if (now >= saccade.next) {
    saccade.x = rand(-SACCADE_RANGE, SACCADE_RANGE);
    saccade.y = rand(-SACCADE_RANGE, SACCADE_RANGE) * 0.6;
    saccade.next = now + rand(SACCADE_MIN_MS, SACCADE_MAX_MS);
  }
  const k = ease(dt, SACCADE_TAU_MS);
  saccade.cx += (saccade.x - saccade.cx) * k;
  saccade.cy += (saccade.y - saccade.cy) * k;
}

const nod = { burstStart: -1, restUntil: 0 };
function nodValue(now, listening) {
  if (!listening) { nod.burstStart = -1; return 0; }
  if (nod.burstStart < 0) {
    if (now < nod.restUntil) return 0;
    nod.burstStart = now;
  }
  const t = now - nod.burstStart;
  if (t > NOD_PERIOD_MS * NODS_PER_BURST) {
    nod.burstStart = -1;
    nod.restUntil = now + rand(NOD_REST_MIN_MS, NOD_REST_MAX_MS);
    return 0;
  }
  return Math.sin((Math.PI * t) / NOD_PERIOD_MS) ** 2; // 0..1..0 per nod
}

// ---- gaze: camera face position -> smoothed target ---------------------------------------
const gaze = { fx: new OneEuro(1.0, 1.2), fy: new OneEuro(1.0, 1.2), lastSeen: -1e9, tx: 0, ty: 0 };
function onGazeSample(sample, now) {
  if (!sample) { state.gaze.seen = false; return; }
  const x = gaze.fx.filter(sample.x, now / 1000), y = gaze.fy.filter(sample.y, now / 1000);
  state.gaze.faceX = x; state.gaze.faceY = y; state.gaze.seen = true;
  gaze.lastSeen = now;
  // Mirror convention: the camera sees the world from the face's side, so a person at the
  // left of the camera image stands at the right of the screen as the person sees it.
  gaze.tx = clamp((0.5 - x) * 2 * GAZE_GAIN_X, -1, 1);
  gaze.ty = clamp((y - 0.5) * 2 * GAZE_GAIN_Y, -1, 1);
}
function updateGaze(now, dt) {
  if (now - gaze.lastSeen > GAZE_LOST_MS) {
    const k = ease(dt, GAZE_DRIFT_TAU_MS);
    gaze.tx -= gaze.tx * k; gaze.ty -= gaze.ty * k;
  }
  state.gaze.x = gaze.tx; state.gaze.y = gaze.ty;
}

// ---- drawing -----------------------------------------------------------------------------
const el = {
  head: $("head"), mouthInner: $("mouth-inner"), mouthLine: $("mouth-line"),
  cheekL: $("cheek-l"), cheekR: $("cheek-r"), browL: $("brow-l"), browR: $("brow-r"),
  irisL: $("iris-l"), irisR: $("iris-r"), lidUpL: $("lid-up-l"), lidUpR: $("lid-up-r"),
  lidLoL: $("lid-lo-l"), lidLoR: $("lid-lo-r"), lashL: $("lash-l"), lashR: $("lash-r"),
  statusText: $("status-text"),
};
const f1 = (v) => v.toFixed(1);

function drawEye(side, p, open, px, py) {
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
  const iris = side === "l" ? el.irisL : el.irisR;
  const s = clamp(p.pupil_size, 0.5, 1.5);
  iris.setAttribute("transform", `translate(${f1(cx + px * PUPIL_RANGE_X)},${f1(cy + py * PUPIL_RANGE_Y)}) scale(${s.toFixed(3)})`);
  (side === "l" ? el.lidUpL : el.lidUpR).setAttribute("d", up);
  (side === "l" ? el.lidLoL : el.lidLoR).setAttribute("d", lo);
  (side === "l" ? el.lashL : el.lashR).setAttribute("d", lash);
}

function drawBrow(side, p) {
  const { cx, cy } = EYES[side];
  const dir = side === "l" ? 1 : -1; // toward the middle of the face
  const base = cy - EYE_RY - 20 - p.brow_raise * 16;
  const inner = { x: cx + dir * 32, y: base - p.brow_tilt * 20 };
  const outer = { x: cx - dir * 34, y: base + p.brow_tilt * 5 + 4 };
  const mid = { x: cx, y: Math.min(inner.y, outer.y) - 9 };
  el[side === "l" ? "browL" : "browR"].setAttribute(
    "d", `M${f1(outer.x)},${f1(outer.y)} Q${f1(mid.x)},${f1(mid.y)} ${f1(inner.x)},${f1(inner.y)}`,
  );
}

function drawMouth(p, open) {
  const Y = 72, w = MOUTH_HALF_W * p.mouth_width;
  const curve = p.mouth_curve * 16;
  const yl = Y - curve - p.mouth_sneer * 3, yr = Y - curve - p.mouth_sneer * 12;
  const yc = Y + curve * 0.9;
  const h = open * MOUTH_OPEN_PX;
  const upC = yc - h * 0.45 - curve * 0.2, loC = yc + h * 1.7; // opening ~1.1 h
  el.mouthInner.setAttribute("d", `M${f1(-w)},${f1(yl)} Q0,${f1(upC)} ${f1(w)},${f1(yr)} Q0,${f1(loC)} ${f1(-w)},${f1(yl)} Z`);
  el.mouthLine.setAttribute("d", `M${f1(-w)},${f1(yl)} Q0,${f1(upC)} ${f1(w)},${f1(yr)}` + (h > 0.5 ? ` Q0,${f1(loC)} ${f1(-w)},${f1(yl)}` : ""));
  return h;
}

function setData(key, value) {
  const v = String(value);
  if (root.dataset[key] !== v) root.dataset[key] = v;
}

// ---- the frame loop ----------------------------------------------------------------------
let last = performance.now();
function frame(now) {
  const dt = clamp(now - last, 0, 100);
  last = now;
  // expression easing
  const target = targetFace();
  const k = ease(dt, EASE_TAU_MS);
  const cur = state.params;
  for (const key of Object.keys(target)) {
    const v = isNum(cur[key]) ? cur[key] : target[key];
    cur[key] = v + (target[key] - v) * k;
  }
  // listening: a small "mm-hm" (raised brows, closed smile, nods), never fighting the mouth
  const listening = input.listening && !input.speaking;
  state.listenAmount += ((listening ? 1 : 0) - state.listenAmount) * ease(dt, LISTEN_TAU_MS);
  const L = state.listenAmount;
  const p = { ...cur };
  p.brow_raise = clamp(p.brow_raise + 0.25 * L, -1, 1);
  p.mouth_curve = clamp(p.mouth_curve + 0.3 * L, -1, 1);
  p.lower_lid = clamp(p.lower_lid + 0.12 * L, 0, 1);
  const nodV = nodValue(now, listening);
  state.nod = nodV; state.nodding = nodV > 0.01;

  const bf = blinkFactor(now);
  state.blinking = bf < 0.999;
  const open = clamp(p.eye_open * bf, 0, 1);
  state.eyeOpen = open;

  updateSaccade(now, dt);
  updateGaze(now, dt);
  const px = clamp(gaze.tx + saccade.cx * (state.gaze.seen ? 0.3 : 1), -1.2, 1.2);
  const py = clamp(gaze.ty + saccade.cy * (state.gaze.seen ? 0.3 : 1), -1.2, 1.2);
  state.pupilX = px; state.pupilY = py;

  if (now - input.lastAt > STALE_MS && (input.mouth !== 0 || input.speaking)) {
    input.mouth = 0; input.speaking = false; // never freeze mid-word
    startMouthRamp(0);
  }
  const heard = mouthSource ? mouthSource(now) : null; // phone audio: the playback clock
  state.mouth = isNum(heard) ? clamp(heard, 0, 1) : mouthAt(now);
  const mouthOpen = Math.max(p.mouth_open, state.mouth);
  state.mouthOpenPx = drawMouth(p, mouthOpen);
  drawEye("l", p, open, px, py);
  drawEye("r", p, open, px, py);
  drawBrow("l", p);
  drawBrow("r", p);
  const blushOp = (0.65 * clamp(p.blush, 0, 1)).toFixed(3);
  el.cheekL.style.opacity = blushOp; el.cheekR.style.opacity = blushOp;

  const sway = Math.sin((2 * Math.PI * now) / SWAY_PERIOD_MS);
  const breath = 1 + BREATH_SCALE * Math.sin((2 * Math.PI * now) / BREATH_PERIOD_MS);
  const hx = sway * SWAY_PX + gaze.tx * HEAD_FOLLOW_PX;
  const hy = -p.head_y * 14 + nodV * NOD_PX - gaze.ty * HEAD_FOLLOW_PX * 0.5;
  const rot = p.head_tilt + sway * SWAY_DEG + gaze.tx * HEAD_FOLLOW_DEG + nodV * NOD_DEG * 0.3;
  el.head.setAttribute("transform", `translate(${f1(hx)},${f1(hy)}) rotate(${rot.toFixed(2)}) scale(${breath.toFixed(4)})`);

  state.emotion = input.emotion;
  state.speaking = input.speaking;
  state.listening = listening;
  state.backend = input.backend;
  state.connected = state.server === "open" && input.backend;
  setData("emotion", state.emotion);
  setData("speaking", state.speaking);
  setData("listening", listening);
  setData("connected", state.connected);
  setData("blinking", state.blinking);
  el.statusText.textContent = state.server !== "open" ? "face server unreachable, reconnecting" : "voice offline";
  requestAnimationFrame(frame);
}

// ---- connection: reconnect with backoff, by itself ------------------------------------------
let backoff = RECONNECT_MIN_MS;
let pageConfig = { gaze: true, ws_path: "/ws/face" };

async function loadPresets() {
  try {
    const r = await fetch("/presets.json", { cache: "no-store" });
    const data = await r.json();
    if (data && typeof data.emotions === "object" && data.emotions) {
      presets = data;
      state.presetsLoaded = Object.keys(data.emotions).length > 0;
    }
  } catch { /* the server is down: tried again on the next connection */ }
}

function connect() {
  state.server = "connecting";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let ws;
  try { ws = new WebSocket(`${scheme}://${location.host}${pageConfig.ws_path}`); } catch { retry(); return; }
  ws.onopen = () => {
    state.server = "open";
    backoff = RECONNECT_MIN_MS;
    if (!state.presetsLoaded) loadPresets();
  };
  ws.onmessage = (ev) => { if (typeof ev.data === "string") applyMessage(ev.data); else { input.malformed++; state.malformed = input.malformed; } };
  ws.onclose = () => {
    state.server = "closed";
    input.lastAt = -Infinity; // the mouth closes at once (see STALE_MS)
    retry();
  };
  ws.onerror = () => { /* onclose follows */ };
}
function retry() {
  const wait = backoff * (1 + Math.random() * RECONNECT_JITTER);
  backoff = Math.min(RECONNECT_MAX_MS, backoff * 2);
  setTimeout(connect, wait);
}

// ---- phone: full screen and wake lock on tap -----------------------------------------------
let wakeLock = null;
async function keepAwake() {
  try { if ("wakeLock" in navigator && !wakeLock) { wakeLock = await navigator.wakeLock.request("screen"); wakeLock.addEventListener("release", () => { wakeLock = null; }); } } catch { /* not allowed here */ }
}
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") keepAwake(); });
document.addEventListener("fullscreenchange", () => root.classList.toggle("fullscreen", !!document.fullscreenElement));
window.addEventListener("pointerup", () => {
  const fs = document.documentElement.requestFullscreen || document.documentElement.webkitRequestFullscreen;
  if (!document.fullscreenElement && fs) { try { const r = fs.call(document.documentElement, { navigationUI: "hide" }); if (r && r.catch) r.catch(() => {}); } catch { /* ignored */ } }
  keepAwake();
  if (pageConfig.gaze && !state.gaze.active && gazeAllowed()) startGazeNow();
});
setTimeout(() => root.classList.add("hint-done"), HINT_MS);

// ---- gaze start-up --------------------------------------------------------------------------
function gazeAllowed() { return new URLSearchParams(location.search).get("gaze") !== "0"; }
async function startGazeNow() {
  state.gaze.enabled = true;
  try {
    const { startGaze } = await import("./gaze.js");
    await startGaze((sample) => onGazeSample(sample, performance.now()));
    state.gaze.active = true;
    state.gaze.error = null;
  } catch (e) {
    state.gaze.active = false;
    state.gaze.error = String(e && e.message ? e.message : e);
  }
}

async function main() {
  try { const r = await fetch("/face-config.json", { cache: "no-store" }); pageConfig = { ...pageConfig, ...(await r.json()) }; } catch { /* defaults */ }
  await loadPresets();
  const now = performance.now();
  scheduleBlink(now);
  connect();
  requestAnimationFrame(frame);
  if (pageConfig.gaze && gazeAllowed()) startGazeNow();
}
main();
