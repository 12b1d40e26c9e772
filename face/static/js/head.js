// The head: a slow sway and breathing, the nod, a little of the gaze (the head follows the eyes),
// the expression's tilt and height, and the cheeks' blush.

import { clamp, f1 } from "./util.js";

const SWAY_PERIOD_MS = 7300, SWAY_DEG = 1.6, SWAY_PX = 4;
const BREATH_PERIOD_MS = 4200, BREATH_SCALE = 0.012;
const NOD_PX = 9, NOD_DEG = 2.5;
const HEAD_FOLLOW_PX = 10, HEAD_FOLLOW_DEG = 3; // a little of the head follows the gaze
const HEAD_Y_PX = 14; // head_y 1 raises the head this much
const BLUSH_MAX_OPACITY = 0.65;

export function drawHead(el, now, p, gazeX, gazeY, nod) {
  const sway = Math.sin((2 * Math.PI * now) / SWAY_PERIOD_MS);
  const breath = 1 + BREATH_SCALE * Math.sin((2 * Math.PI * now) / BREATH_PERIOD_MS);
  const hx = sway * SWAY_PX + gazeX * HEAD_FOLLOW_PX;
  const hy = -p.head_y * HEAD_Y_PX + nod * NOD_PX - gazeY * HEAD_FOLLOW_PX * 0.5;
  const rot = p.head_tilt + sway * SWAY_DEG + gazeX * HEAD_FOLLOW_DEG + nod * NOD_DEG * 0.3;
  el.head.setAttribute("transform", `translate(${f1(hx)},${f1(hy)}) rotate(${rot.toFixed(2)}) scale(${breath.toFixed(4)})`);
  const blush = (BLUSH_MAX_OPACITY * clamp(p.blush, 0, 1)).toFixed(3);
  el.cheekL.style.opacity = blush;
  el.cheekR.style.opacity = blush;
}
