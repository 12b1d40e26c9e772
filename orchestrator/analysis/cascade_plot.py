"""``creature cascade --html``: the side-by-side report as one self-contained HTML page.

Per utterance, the cascade's stages as one stacked bar (their sum is its end-to-end latency)
beside the creature's time to first audio, drawn with the session report's plotting helpers
(inline SVG, no network), above the printed table.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from orchestrator.analysis.plots import _mpl, svg

STAGE_COLORS = ["#264653", "#2a9d8f", "#8ab17d", "#e9c46a", "#f4a261", "#e76f51"]
CREATURE_COLOR = "#6d597a"


def stage_bars(report: dict) -> str:
    """Stacked horizontal bars: one pair (cascade, creature) per utterance, in ms."""
    cascade = report["cascade"]["turns"]
    creature = {t["name"]: t for t in report.get("creature", {}).get("turns", [])}
    stages: list[str] = []
    for t in cascade:
        stages += [s for s in t["detail"]["stages_ms"] if s not in stages]
    Figure = _mpl()
    fig = Figure(figsize=(7.5, 0.45 * len(cascade) + 1.4))
    ax = fig.subplots()
    y = np.arange(len(cascade))[::-1].astype(float)
    for i, stage in enumerate(stages):
        widths = [t["detail"]["stages_ms"].get(stage, 0.0) for t in cascade]
        lefts = [sum(t["detail"]["stages_ms"].get(s, 0.0) for s in stages[:i]) for t in cascade]
        ax.barh(y + 0.18, widths, left=lefts, height=0.34, label=stage,
                color=STAGE_COLORS[i % len(STAGE_COLORS)])  # fmt: skip
    if creature:
        mine = [(creature.get(t["name"]) or {}).get("latency_ms") or 0.0 for t in cascade]
        ax.barh(y - 0.18, mine, height=0.34, label="creature: first audio", color=CREATURE_COLOR)
    for yi, t in zip(y, cascade):
        if t["latency_ms"] is None:
            ax.text(0, yi + 0.18, " no reply", va="center", fontsize=7)
    ax.set_yticks(y, [t["name"].rsplit(".", 1)[0] for t in cascade])
    ax.set_xlabel("ms from the end of speech")
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    ax.set_title("cascade stages (stacked) and the creature, per utterance", fontsize=8)
    return svg(fig)


def write_html(report: dict, table: str, out: str | Path) -> None:
    describe = [
        f"<li><b>{html.escape(name)}</b>: "
        + html.escape("; ".join(f"{k} {v}" for k, v in report[name]["describe"].items()))
        + "</li>"
        for name in ("cascade", "creature")
        if name in report
    ]
    page = (
        "<!doctype html><meta charset='utf-8'><title>cascade vs creature</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "pre{font-size:12px}</style>"
        "<h1>The cascade baseline beside the creature</h1>"
        f"<ul>{''.join(describe)}</ul>{stage_bars(report)}<pre>{html.escape(table)}</pre>"
    )
    Path(out).write_text(page, encoding="utf-8")
