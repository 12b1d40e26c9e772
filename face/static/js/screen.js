// The phone's screen: full screen and a wake lock on the first tap (browsers allow both only
// after a gesture), the wake lock taken again when the page becomes visible, and the
// "tap for full screen" hint faded after a while.

const HINT_MS = 4000;

let wakeLock = null;
async function keepAwake() {
  try {
    if ("wakeLock" in navigator && !wakeLock) {
      wakeLock = await navigator.wakeLock.request("screen");
      wakeLock.addEventListener("release", () => { wakeLock = null; });
    }
  } catch { /* not allowed here */ }
}

function goFullScreen() {
  const de = document.documentElement;
  const fs = de.requestFullscreen || de.webkitRequestFullscreen;
  if (document.fullscreenElement || !fs) return;
  try {
    const r = fs.call(de, { navigationUI: "hide" });
    if (r && r.catch) r.catch(() => {});
  } catch { /* ignored */ }
}

// `onTap` runs after every tap too (the gaze starts on one where it needs a gesture).
export function setupScreen(onTap) {
  const root = document.documentElement;
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") keepAwake(); });
  document.addEventListener("fullscreenchange", () => root.classList.toggle("fullscreen", !!document.fullscreenElement));
  window.addEventListener("pointerup", () => {
    goFullScreen();
    keepAwake();
    onTap();
  });
  setTimeout(() => root.classList.add("hint-done"), HINT_MS);
}
