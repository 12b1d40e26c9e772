// The phone as the creature's ears and voice. After a tap (browsers need a gesture for the mic
// and for sound) it captures the mic (echo cancellation and noise suppression on), sends 24 kHz
// PCM16 to /ws/audio, plays the creature's frames through a small jitter buffer, and drives the
// face's mouth from the *playback clock*: a frame's mouth shows when that frame is heard.
// Test hooks: window.phoneAudio (state, start(), stop()) and window.avsync (report()).
import { AvSync } from "./avsync.js";

const FRAME_S = 0.08; // one server frame
const KIND_BOT = 1, KIND_MIC = 2, VERSION = 1;
const BOT_HEADER = 20, MIC_HEADER = 8;
const RECONNECT_MIN_MS = 250, RECONNECT_MAX_MS = 4000;
const SCHEDULE_KEEP = 64; // frame starts remembered for the mouth schedule
const NO_RETRY = { 4401: "wrong or missing access token", 4403: "phone audio is off", 4409: "another page took over the audio" };

const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
// ?mouth=arrival applies each mouth when its frame *arrives* (the naive way); only for showing
// what the playback clock buys (benchmarks/av_sync.py --compare-arrival)
const ON_ARRIVAL = params.get("mouth") === "arrival";
let arrivedMouth = 0;

const state = {
  enabled: false, started: false, ws: "idle", closeCode: null, error: null,
  micMessages: 0, framesIn: 0, underruns: 0, dropped: 0, trimmed: 0, played: 0, buffered: 0,
  sampleRate: 0, outputLatency: 0, mouth: 0, lastIndex: -1,
};

let ctx = null, capture = null, playback = null, meter = null, micStream = null, ws = null;
let cfg = { audio: true, ws_path: "/ws/audio", prebuffer_frames: 2, max_buffer_frames: 6 };
let backoff = RECONNECT_MIN_MS, seq = 0, retryTimer = null;
const schedule = []; // {at: context seconds when the frame starts playing, mouth, index}
let silentFrom = Infinity; // context time from which nothing plays (an underrun)

// ---- clocks: performance.now() <-> the context time of what the speaker plays now ----------
function heardContextTime(perfNow) {
  const ts = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : null;
  if (ts && ts.performanceTime > 0) return ts.contextTime + (perfNow - ts.performanceTime) / 1000;
  return ctx.currentTime - (ctx.outputLatency || ctx.baseLatency || 0);
}
function perfOfContextTime(t) {
  const ts = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : null;
  if (ts && ts.performanceTime > 0) return ts.performanceTime + (t - ts.contextTime) * 1000;
  return performance.now() + (t - ctx.currentTime + (ctx.outputLatency || ctx.baseLatency || 0)) * 1000;
}

// ---- the mouth on the playback clock ---------------------------------------------------------
// Each frame's mouth describes the whole frame, so it belongs at the frame's middle; between two
// middles it is interpolated. After the last frame (or from an underrun) the mouth closes.
function mouthAtContextTime(t) {
  const n = schedule.length;
  if (n === 0 || t >= silentFrom) return 0;
  const mid = (k) => schedule[k].at + FRAME_S / 2;
  if (t < schedule[0].at) return 0;
  let k = n - 1;
  while (k > 0 && mid(k) > t) k--;
  const last = schedule[n - 1];
  if (t >= last.at + FRAME_S) return 0;
  if (mid(k) > t) return schedule[k].mouth; // before the first middle
  if (k === n - 1) { // past the newest middle: ease toward closed at its end
    const f = (t - mid(k)) / (FRAME_S / 2);
    return schedule[k].mouth * (1 - Math.max(0, Math.min(1, f)) * 0.5);
  }
  const a = schedule[k], b = schedule[k + 1];
  if (b.at - a.at > FRAME_S * 1.5) return a.mouth; // a gap (underrun) between them
  const f = (t - mid(k)) / (mid(k + 1) - mid(k));
  return a.mouth + (b.mouth - a.mouth) * Math.max(0, Math.min(1, f));
}
// The index of the frame the speaker plays at performance time `perfNow` (null: none).
function playingIndex(perfNow) {
  if (!ctx || ctx.state !== "running") return null;
  const t = heardContextTime(perfNow + displayFrameMs / 2);
  for (let k = schedule.length - 1; k >= 0; k--) {
    if (schedule[k].at <= t) return t < schedule[k].at + FRAME_S ? schedule[k].index : null;
  }
  return null;
}
// A drawn mouth stays on screen for one display frame, so it shows the middle of that frame.
let displayFrameMs = 16.7, lastDraw = 0;
function mouthSource(perfNow) {
  if (!ctx || ctx.state !== "running") return null; // null: the face keeps its own mouth
  if (ON_ARRIVAL) return arrivedMouth;
  const dt = perfNow - lastDraw;
  lastDraw = perfNow;
  if (dt > 4 && dt < 100) displayFrameMs += (dt - displayFrameMs) * 0.05;
  const m = mouthAtContextTime(heardContextTime(perfNow + displayFrameMs / 2));
  state.mouth = m;
  return m;
}

// ---- the server connection ---------------------------------------------------------------------
function connect() {
  clearTimeout(retryTimer);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  state.ws = "connecting";
  try {
    ws = new WebSocket(`${scheme}://${location.host}${cfg.ws_path}?token=${encodeURIComponent(token)}`);
  } catch (e) { state.error = String(e); scheduleRetry(); return; }
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { state.ws = "open"; state.closeCode = null; backoff = RECONNECT_MIN_MS; };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") { try { state.error = JSON.parse(ev.data).error || null; } catch { /* ignore */ } return; }
    onBotFrame(ev.data);
  };
  ws.onclose = (ev) => {
    state.ws = "closed";
    state.closeCode = ev.code;
    ws = null;
    if (ev.code in NO_RETRY) { state.error = NO_RETRY[ev.code]; setStatus(state.error); return; }
    scheduleRetry();
  };
  ws.onerror = () => { /* onclose follows */ };
}
function scheduleRetry() {
  const wait = backoff * (1 + Math.random() * 0.3);
  backoff = Math.min(RECONNECT_MAX_MS, backoff * 2);
  retryTimer = setTimeout(connect, wait);
}

function onBotFrame(buf) {
  if (buf.byteLength < BOT_HEADER || (buf.byteLength - BOT_HEADER) % 2) return;
  const dv = new DataView(buf);
  if (dv.getUint8(0) !== KIND_BOT || dv.getUint8(1) !== VERSION) return;
  const index = dv.getUint32(4, true), mouth = dv.getFloat32(8, true), t = dv.getFloat64(12, true);
  const pcm16 = new Int16Array(buf, BOT_HEADER);
  const pcm = new Float32Array(pcm16.length);
  for (let i = 0; i < pcm16.length; i++) pcm[i] = pcm16[i] / 32767;
  state.framesIn++;
  arrivedMouth = mouth;
  if (playback) playback.port.postMessage({ type: "frame", index, mouth, t, pcm }, [pcm.buffer]);
}

function sendMic(ab) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > 48000) return; // the network is stalled: drop rather than pile up
  const pcm = new Uint8Array(ab);
  const msg = new Uint8Array(MIC_HEADER + pcm.length);
  const dv = new DataView(msg.buffer);
  dv.setUint8(0, KIND_MIC); dv.setUint8(1, VERSION); dv.setUint16(2, 0, true); dv.setUint32(4, seq++ >>> 0, true);
  msg.set(pcm, MIC_HEADER);
  ws.send(msg.buffer);
  state.micMessages++;
}

// ---- audio graph -------------------------------------------------------------------------------
function onPlaybackMessage(m) {
  if (m.type === "start") {
    const at = m.at / ctx.sampleRate;
    schedule.push({ at, mouth: m.mouth, index: m.index });
    if (schedule.length > SCHEDULE_KEEP) schedule.shift();
    if (at >= silentFrom) silentFrom = Infinity;
    state.lastIndex = m.index;
  } else if (m.type === "underrun") {
    silentFrom = m.at / ctx.sampleRate;
    state.underruns = m.underruns;
  } else if (m.type === "stats") {
    Object.assign(state, { underruns: m.underruns, dropped: m.dropped, played: m.played, trimmed: m.trimmed, buffered: m.buffered });
  }
}

async function start() {
  if (state.started || !state.enabled) return;
  state.started = true;
  setStatus("starting audio");
  try {
    ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.resume();
    state.sampleRate = ctx.sampleRate;
    await Promise.all(["capture", "playback", "meter"].map((n) => ctx.audioWorklet.addModule(`/static/worklets/${n}.js`)));
    playback = new AudioWorkletNode(ctx, "creature-playback", {
      numberOfInputs: 0, outputChannelCount: [1],
      processorOptions: { prebuffer: cfg.prebuffer_frames, maxFrames: cfg.max_buffer_frames },
    });
    playback.port.onmessage = (e) => onPlaybackMessage(e.data);
    playback.connect(ctx.destination);
    meter = new AudioWorkletNode(ctx, "creature-meter", { numberOfOutputs: 0 });
    playback.connect(meter);
    avsync.attach(meter, perfOfContextTime);
    if (window.face && typeof window.face.setMouthSource === "function") window.face.setMouthSource(mouthSource);
    connect();
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
    const src = ctx.createMediaStreamSource(micStream);
    capture = new AudioWorkletNode(ctx, "creature-capture", { numberOfOutputs: 0 });
    capture.port.onmessage = (e) => sendMic(e.data);
    src.connect(capture);
    state.outputLatency = ctx.outputLatency || ctx.baseLatency || 0;
    setStatus(null);
  } catch (e) {
    state.error = String(e && e.message ? e.message : e);
    setStatus(`audio: ${state.error}`);
  }
}

function stop() {
  if (capture) capture.port.postMessage({ type: "stop" });
  if (micStream) micStream.getTracks().forEach((t) => t.stop());
  if (ws) ws.close(1000);
  clearTimeout(retryTimer);
  if (window.face && typeof window.face.setMouthSource === "function") window.face.setMouthSource(null);
  if (ctx) ctx.close();
  ctx = capture = playback = meter = micStream = ws = null;
  state.started = false;
}

function setStatus(text) {
  document.documentElement.dataset.phoneAudio = text ? "error" : (state.started ? "on" : "off");
  let el = document.getElementById("phone-status");
  if (!el && text) {
    el = document.createElement("div");
    el.id = "phone-status";
    el.setAttribute("role", "status");
    el.style.cssText = "position:fixed;left:0;right:0;bottom:3.5em;text-align:center;font:14px system-ui;color:#ddd;pointer-events:none";
    document.body.appendChild(el);
  }
  if (el) el.textContent = text || "";
}

const avsync = new AvSync(() => (window.face && window.face.state ? window.face.state.mouth : state.mouth), () => state);
window.avsync = avsync;
window.phoneAudio = { state, start, stop, mouthAtContextTime, playingIndex };

async function loadConfig() {
  try { const r = await fetch("/phone-config.json", { cache: "no-store" }); if (r.ok) cfg = { ...cfg, ...(await r.json()) }; } catch { /* defaults */ }
  state.enabled = !!cfg.audio;
  if (cfg.lipsync) Object.assign(avsync.lipsync, cfg.lipsync);
  document.documentElement.dataset.phoneAudio = state.enabled ? "off" : "disabled";
  if (state.enabled && !state.started) setStatus("tap to talk");
}
const configured = loadConfig();
// listen at once: a tap while the config loads still starts the audio
window.addEventListener("pointerup", () => { configured.then(start); });
