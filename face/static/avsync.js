// Measures lip-sync in the page: the loudness of what is actually played (a worklet tap on the
// output, stamped on the playback clock) against the mouth the face drew (sampled every animation
// frame). The lag that best aligns the two (cross-correlation) is the A/V offset:
// positive = the mouth lags the sound, negative = it leads.
const GRID_MS = 2; // resampling grid for the correlation
const MAX_LAG_MS = 600;
const SMOOTH_MS = 80; // the mouth is computed per 80 ms frame: compare with an 80 ms loudness
// The voice's lip-sync settings (the page gets the server's from /phone-config.json): the
// loudness window, and the attack/release smoothing that shapes the mouth on purpose. `lag_ms`
// compares the mouth with the played sound shaped the same way (it measures timing only);
// `raw_lag_ms` compares it with the plain loudness (it includes the smoothing's own lag).
const DEFAULT_LIPSYNC = { floor_db: -50, ceil_db: -30, gate_db: -55, attack_ms: 15, release_ms: 90 };
const WINDOW_S = 3; // per-window lags give the spread (p95)
const KEEP_S = 600;

export class AvSync {
  constructor(getMouth, getStats) {
    this.lipsync = { ...DEFAULT_LIPSYNC };
    this.getMouth = getMouth;
    this.getStats = getStats;
    this.audio = []; // [perf ms, power]
    this.drawn = []; // [perf ms, mouth]
    this.running = false;
    this.t0 = 0;
  }

  attach(meterNode, perfOfContextTime) {
    meterNode.port.onmessage = (e) => {
      const b = e.data;
      for (let i = 0; i < b.length; i += 2) this.audio.push([perfOfContextTime(b[i]), b[i + 1]]);
      this.trim();
    };
    this.running = true;
    const tick = (now) => {
      if (!this.running) return;
      this.drawn.push([now, this.getMouth()]);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  trim() {
    const cut = performance.now() - KEEP_S * 1000;
    while (this.audio.length && this.audio[0][0] < cut) this.audio.shift();
    while (this.drawn.length && this.drawn[0][0] < cut) this.drawn.shift();
  }

  reset() { this.audio = []; this.drawn = []; }

  // Both signals on one grid, from `fromMs` to `toMs` (performance.now() times).
  series(fromMs, toMs) {
    const n = Math.floor((toMs - fromMs) / GRID_MS);
    if (n < 10) return null;
    const power = new Float64Array(n), count = new Float64Array(n);
    for (const [t, p] of this.audio) {
      const k = Math.floor((t - fromMs) / GRID_MS);
      if (k >= 0 && k < n) { power[k] += p; count[k]++; }
    }
    // fill empty cells (the meter's blocks are ~5 ms, the grid is finer) by holding the last value
    let last = 0;
    for (let k = 0; k < n; k++) { if (count[k]) { power[k] /= count[k]; last = power[k]; } else power[k] = last; }
    const half = Math.round(SMOOTH_MS / GRID_MS / 2);
    const pre = new Float64Array(n + 1);
    for (let k = 0; k < n; k++) pre[k + 1] = pre[k] + power[k];
    const L = this.lipsync;
    const raw = new Float64Array(n), audio = new Float64Array(n);
    const up = 1 - Math.exp(-GRID_MS / L.attack_ms), down = 1 - Math.exp(-GRID_MS / L.release_ms);
    let y = 0;
    for (let k = 0; k < n; k++) {
      const a = Math.max(0, k - half), b = Math.min(n, k + half);
      const ms = (pre[b] - pre[a]) / Math.max(1, b - a);
      const db = ms > 1e-12 ? 10 * Math.log10(ms) : -120;
      const x = db < L.gate_db ? 0 : Math.max(0, Math.min(1, (db - L.floor_db) / (L.ceil_db - L.floor_db)));
      raw[k] = x;
      y += (x > y ? up : down) * (x - y);
      audio[k] = y;
    }
    const mouth = new Float64Array(n);
    let j = 0;
    const d = this.drawn;
    for (let k = 0; k < n; k++) {
      const t = fromMs + k * GRID_MS;
      while (j + 1 < d.length && d[j + 1][0] <= t) j++;
      mouth[k] = d.length ? d[j][1] : 0; // what was on screen at t
    }
    return { audio, raw, mouth, n };
  }

  static lagOf(audio, mouth) {
    const n = audio.length, maxLag = Math.round(MAX_LAG_MS / GRID_MS);
    const mean = (x) => x.reduce((s, v) => s + v, 0) / x.length;
    const ma = mean(audio), mm = mean(mouth);
    const a = audio.map((v) => v - ma), m = mouth.map((v) => v - mm);
    const ea = Math.sqrt(a.reduce((s, v) => s + v * v, 0)), em = Math.sqrt(m.reduce((s, v) => s + v * v, 0));
    if (ea < 1e-9 || em < 1e-9) return null; // nothing said or nothing drawn
    let best = -Infinity, bestL = 0;
    const c = new Float64Array(2 * maxLag + 1);
    for (let L = -maxLag; L <= maxLag; L++) { // mouth[k] compared with audio[k - L]
      let s = 0;
      for (let k = Math.max(0, L); k < Math.min(n, n + L); k++) s += m[k] * a[k - L];
      c[L + maxLag] = s / (ea * em);
      if (c[L + maxLag] > best) { best = c[L + maxLag]; bestL = L; }
    }
    let frac = 0;
    const i = bestL + maxLag;
    if (i > 0 && i < c.length - 1) {
      const den = c[i - 1] - 2 * c[i] + c[i + 1];
      if (den < 0) frac = (0.5 * (c[i - 1] - c[i + 1])) / den;
    }
    return { lag_ms: (bestL + frac) * GRID_MS, corr: best };
  }

  // {lag_ms, corr, windows: [...], mean_ms, p95_abs_ms, underruns, dropped, ...}
  report(fromMs = null, toMs = null) {
    const end = toMs ?? performance.now() - 500; // the last moments may not have been heard yet
    const start = fromMs ?? (this.audio.length ? this.audio[0][0] : end);
    const all = this.series(start, end);
    const whole = all ? AvSync.lagOf(all.audio, all.mouth) : null;
    const wholeRaw = all ? AvSync.lagOf(all.raw, all.mouth) : null;
    const windows = [];
    for (let w = start; w + WINDOW_S * 1000 <= end; w += WINDOW_S * 1000) {
      const s = this.series(w, w + WINDOW_S * 1000);
      const r = s ? AvSync.lagOf(s.audio, s.mouth) : null;
      if (r && r.corr > 0.5) windows.push(r.lag_ms); // windows with speech in them
    }
    const sorted = windows.map(Math.abs).sort((x, y) => x - y);
    const p95 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)] : null;
    const mean = windows.length ? windows.reduce((s, v) => s + v, 0) / windows.length : null;
    const st = this.getStats();
    return {
      lag_ms: whole ? whole.lag_ms : null, corr: whole ? whole.corr : null,
      raw_lag_ms: wholeRaw ? wholeRaw.lag_ms : null, raw_corr: wholeRaw ? wholeRaw.corr : null,
      windows_ms: windows, mean_ms: mean, p95_abs_ms: p95,
      seconds: (end - start) / 1000, audio_blocks: this.audio.length, drawn_frames: this.drawn.length,
      underruns: st.underruns, dropped: st.dropped, trimmed: st.trimmed, played: st.played, frames_in: st.framesIn,
    };
  }
}
