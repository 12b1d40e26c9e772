// The user's face position from the front camera, with MediaPipe's face detector running in
// WebAssembly from files this server ships (face/static/vendor/mediapipe): no internet needed.
// Calls onSample({x, y}) (face centre, 0..1 in the camera image, not mirrored) or onSample(null).
// Loaded only when gaze starts (gaze.js imports it lazily), so a page without a camera never
// fetches the detector.

const VENDOR = "/static/vendor/mediapipe/";
const DETECT_INTERVAL_MS = 100; // 10 Hz is plenty for gaze and spares the phone's battery
const MIN_CONFIDENCE = 0.5;
const CAMERA = { facingMode: "user", width: { ideal: 320 }, height: { ideal: 240 } };

// The keypoints (eyes, nose, mouth, ears) are normalized to the frame the detector saw, which
// need not be the size the <video> element reports; the box is the fallback.
function centre(det, video) {
  const kps = det.keypoints || [];
  if (kps.length > 0) {
    let x = 0, y = 0;
    for (const k of kps) { x += k.x; y += k.y; }
    return { x: x / kps.length, y: y / kps.length };
  }
  const b = det.boundingBox;
  return { x: (b.originX + b.width / 2) / video.videoWidth, y: (b.originY + b.height / 2) / video.videoHeight };
}

export async function startGaze(onSample) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("no camera API (a phone needs HTTPS for the camera)");
  }
  const stream = await navigator.mediaDevices.getUserMedia({ video: CAMERA, audio: false });
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.setAttribute("playsinline", "");
  video.srcObject = stream;
  await video.play();
  const { FaceDetector } = await import(VENDOR + "vision_bundle.mjs");
  const fileset = {
    wasmLoaderPath: VENDOR + "vision_wasm_internal.js",
    wasmBinaryPath: VENDOR + "vision_wasm_internal.wasm",
  };
  const detector = await FaceDetector.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: VENDOR + "face_detector.tflite", delegate: "CPU" },
    runningMode: "VIDEO",
    minDetectionConfidence: MIN_CONFIDENCE,
  });
  let lastTs = 0;
  const tick = () => {
    try {
      if (video.readyState >= 2 && video.videoWidth > 0) {
        const ts = Math.max(performance.now(), lastTs + 1);
        lastTs = ts;
        const res = detector.detectForVideo(video, ts);
        let best = null, bestArea = -1;
        for (const d of res.detections || []) {
          const b = d.boundingBox;
          const area = b ? b.width * b.height : 0;
          if (area > bestArea) { best = d; bestArea = area; }
        }
        onSample(best ? centre(best, video) : null);
      }
    } catch (e) {
      onSample(null);
    }
    setTimeout(tick, DETECT_INTERVAL_MS);
  };
  tick();
}
