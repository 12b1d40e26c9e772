// Gaze: where the user's face is in the camera image -> where the creature looks. The position
// is smoothed by a 1-euro filter; when no face has been seen for a while the gaze drifts back to
// the middle. The camera and its detector (camera.js) load only when gaze starts.
//
// Mirror convention: the camera sees the world from the face's side, so a person at the left of
// the camera image stands at the right of the screen as the person sees it.

import { OneEuro } from "./one_euro.js";
import { clamp, ease } from "./util.js";

const GAZE_LOST_MS = 700; // no face for this long: the eyes drift back to the middle
const GAZE_DRIFT_TAU_MS = 600;
const GAZE_GAIN_X = 1.6, GAZE_GAIN_Y = 1.4; // camera offset -> gaze (-1..1)
const FILTER_MIN_CUTOFF_HZ = 1.0, FILTER_BETA = 1.2;
const SACCADE_WHILE_SEEN = 0.3; // saccades shrink while the eyes follow a face
const PUPIL_LIMIT = 1.2;

export class Gaze {
  constructor() {
    this.fx = new OneEuro(FILTER_MIN_CUTOFF_HZ, FILTER_BETA);
    this.fy = new OneEuro(FILTER_MIN_CUTOFF_HZ, FILTER_BETA);
    this.lastSeen = -1e9;
    this.tx = 0; this.ty = 0; // where the eyes look, -1..1 (screen right / down positive)
    this.seen = false;
    this.faceX = null; this.faceY = null; // the filtered face centre in the camera image
  }

  // One detector result: {x, y} (0..1 in the camera image) or null for no face.
  sample(s, now) {
    if (!s) { this.seen = false; return; }
    const x = this.fx.filter(s.x, now / 1000), y = this.fy.filter(s.y, now / 1000);
    this.faceX = x; this.faceY = y; this.seen = true;
    this.lastSeen = now;
    this.tx = clamp((0.5 - x) * 2 * GAZE_GAIN_X, -1, 1);
    this.ty = clamp((y - 0.5) * 2 * GAZE_GAIN_Y, -1, 1);
  }

  update(now, dt) {
    if (now - this.lastSeen > GAZE_LOST_MS) {
      const k = ease(dt, GAZE_DRIFT_TAU_MS);
      this.tx -= this.tx * k; this.ty -= this.ty * k;
    }
  }

  // Where the pupils point: the gaze plus the idle saccades (cx, cy).
  pupils(saccades) {
    const w = this.seen ? SACCADE_WHILE_SEEN : 1;
    return {
      x: clamp(this.tx + saccades.cx * w, -PUPIL_LIMIT, PUPIL_LIMIT),
      y: clamp(this.ty + saccades.cy * w, -PUPIL_LIMIT, PUPIL_LIMIT),
    };
  }
}

// Open the camera and feed the detector's samples to `onSample`; rejects when there is no camera
// (or no permission, or no secure page on a phone).
export async function startCamera(onSample) {
  const { startGaze } = await import("./camera.js");
  await startGaze(onSample);
}
