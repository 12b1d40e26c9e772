"""The report's pictures, drawn with matplotlib as inline SVG (text stays text; no files, no
CDN). matplotlib is an optional extra (``pip install 'creature[report]'``): it is only
imported here, and its absence is one clear error.

Drawn with ``matplotlib.figure.Figure`` directly (no pyplot): no global state, no GUI backend.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from orchestrator.analysis.summary import CallLife, Span, Summary
from track2_voice.common.errors import UserError
from track2_voice.frames import FRAME_MS


class PlottingUnavailable(UserError, RuntimeError):
    """matplotlib is not installed."""


def _mpl() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise PlottingUnavailable(
            "creature report draws with matplotlib, which is not installed: "
            "pip install 'creature[report]' (or: pip install matplotlib)"
        ) from None
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text as <text>, selectable and small
            "svg.hashsalt": "creature-report",  # the same record gives the same file
            "font.size": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return Figure


STATE_COLORS = {
    "idle": "#d9d9d9",
    "listening": "#8ecae6",
    "speaking": "#ffb703",
    "acting": "#6a994e",
    "disconnected": "#d62828",
}
EMOTION_COLORS = {
    "neutral": "#cfcfcf",
    "happy": "#f6bd60",
    "sad": "#4d7ea8",
    "anger": "#c1121f",
    "fear": "#7b2cbf",
    "surprise": "#f77f00",
    "disgust": "#6b8f23",
}
STATUS_COLORS = {
    "sent": "#adb5bd",
    "accepted": "#90be6d",
    "running": "#43aa8b",
    "succeeded": "#2a9d8f",
    "failed": "#e63946",
    "cancelling": "#f4a261",
    "cancelled": "#e76f51",
}
OTHER = "#999999"
WIDTH_IN = 15.0  # every timeline row is drawn this wide, for the same scale on every row
CHAR_PT = 4.3  # the average width of a 7 pt character
WORD_LEVELS = 3  # the creature's words are stacked on up to this many lines
DISCONNECT_SHADE = "#f8d7da"
USER_COLOR = "#219ebc"
CREATURE_COLOR = "#fb8500"
BUDGET_COLOR = "#d62828"


def svg(fig: Any) -> str:
    """The figure as an ``<svg>`` element to inline in HTML."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _bands(ax: Any, spans: list[Span], y: float, colors: dict[str, str], lo: float, hi: float):
    for s in spans:
        a, b = max(s.start, lo), min(s.end, hi)
        if b <= a:
            continue
        color = colors.get(s.label.split(" ", 1)[0], OTHER)  # "neutral (focused)": neutral
        ax.broken_barh([(a, b - a)], (y - 0.4, 0.8), color=color, lw=0)
        if b - a > (hi - lo) / 40:
            ax.text((a + b) / 2, y, s.label, ha="center", va="center", fontsize=7)


def timeline(s: Summary, lo: float, hi: float) -> str:
    """One row of the session's timeline, from ``lo`` to ``hi`` seconds."""
    Figure = _mpl()
    fig = Figure(figsize=(WIDTH_IN, 6.4))
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [1.3, 1.2, 0.9, 1.2]})
    speech, level, bands, acts = axes
    for ax in axes:
        _mark_lost_links_and_rollovers(ax, s, lo, hi)
    _speech_row(speech, s, lo, hi)
    _level_row(level, s, lo, hi)
    _bands_row(bands, s, lo, hi)
    _acts_row(acts, s, lo, hi)
    acts.set_xlim(lo, hi)
    acts.set_xlabel("seconds from the start of the record (shaded: voice backend disconnected)")
    fig.align_ylabels(axes)
    return svg(fig)


def _mark_lost_links_and_rollovers(ax: Any, s: Summary, lo: float, hi: float) -> None:
    """On every row: the time the voice backend was lost (shaded), each rollover (dashed)."""
    for d in s.disconnects:
        ax.axvspan(max(d.start, lo), min(d.end, hi), color=DISCONNECT_SHADE, lw=0, zorder=0)
    for r in s.rollovers:
        if lo <= r.t <= hi:
            ax.axvline(r.t, color="#6c757d", ls="--", lw=0.8)


def _speech_row(speech: Any, s: Summary, lo: float, hi: float) -> None:
    """Who speaks: the user's speech and the creature's words where they were said."""
    for u in s.user_speech:
        if u.end >= lo and u.start <= hi:
            speech.broken_barh([(u.start, u.end - u.start)], (1.6, 0.6), color=USER_COLOR)
    for ph in s.phrases:
        if ph.end >= lo and ph.start <= hi:
            speech.broken_barh([(ph.start, ph.end - ph.start)], (0.2, 0.3), color=CREATURE_COLOR)
    _creature_words(speech, s, lo, hi)
    for u in s.user_said:  # the user's words (voice.transcript), over their speech
        if lo <= u.start <= hi:
            speech.text(u.start, 2.3, u.label, fontsize=7, ha="left", va="bottom",
                        color=USER_COLOR, clip_on=True)  # fmt: skip
    for t in s.turns:
        if t.latency_ms is not None and lo <= t.speech_end_t - s.start_t <= hi:
            a, b = s.rel(t.speech_end_t), s.rel(t.reply_t)
            speech.annotate("", xy=(b, 1.45), xytext=(a, 1.45),
                            arrowprops={"arrowstyle": "->", "color": "#333"})  # fmt: skip
            speech.text((a + b) / 2, 1.5, f"{t.latency_ms:.0f} ms", ha="center", fontsize=7)
    speech.set_ylim(0, 2.9)
    speech.set_yticks([0.35, 1.9], ["creature", "user"])
    speech.set_title(
        "speech: the user (VAD, and their words) and the creature's words", loc="left", fontsize=8
    )


def _creature_words(speech: Any, s: Summary, lo: float, hi: float) -> None:
    """Each text piece at its time, stacked on up to ``WORD_LEVELS`` lines so that words said
    close together do not overprint."""
    char_s = (hi - lo) * CHAR_PT / (WIDTH_IN * 72 * 0.85)  # a character's width in seconds
    ends = [-1e9] * WORD_LEVELS
    for p in s.pieces:
        if not lo <= p.t <= hi:
            continue
        word = p.text.strip()
        # the lowest level where the word does not run into the one before it
        row = next((i for i, e in enumerate(ends) if p.t >= e), ends.index(min(ends)))
        ends[row] = p.t + (len(word) + 1) * char_s
        speech.text(p.t, 0.6 + 0.28 * row, word, fontsize=7, ha="left", va="bottom",
                    clip_on=True)  # fmt: skip


def _level_row(level: Any, s: Summary, lo: float, hi: float) -> None:
    """The mouth and the loudness it follows, with the deadline misses."""
    sel = (s.t >= lo) & (s.t <= hi)
    level.plot(s.t[sel], s.mouth[sel], color=CREATURE_COLOR, lw=1.0, label="mouth")
    level.set_ylim(0, 1.05)
    level.set_ylabel("mouth")
    db = level.twinx()
    db.plot(s.t[sel], s.rms_db[sel], color="#6c757d", lw=0.7, alpha=0.8, label="RMS dBFS")
    db.set_ylim(-90, 0)
    db.set_ylabel("RMS dBFS")
    db.spines["top"].set_visible(False)
    for m in s.misses:
        if lo <= m.t <= hi:
            level.axvline(m.t, color=BUDGET_COLOR, lw=0.8)
    level.set_title(
        "mouth (0..1) and the creature's RMS; red lines: deadline misses", loc="left", fontsize=8
    )


def _bands_row(bands: Any, s: Summary, lo: float, hi: float) -> None:
    """The state machine and the look."""
    _bands(bands, s.states, 1, STATE_COLORS, lo, hi)
    _bands(bands, s.emotions, 0, EMOTION_COLORS, lo, hi)
    for p in s.passing_looks:
        if lo <= p.t <= hi:
            emotion = p.text.split(" ", 1)[0]
            bands.plot([p.t], [0], marker="v", color=EMOTION_COLORS.get(emotion, OTHER),
                       markeredgecolor="#333", markersize=6)  # fmt: skip
    bands.set_ylim(-0.6, 1.6)
    bands.set_yticks([0, 1], ["emotion", "state"])
    bands.set_title("state and emotion (triangles: passing looks)", loc="left", fontsize=8)


def _acts_row(acts: Any, s: Summary, lo: float, hi: float) -> None:
    """What the creature decided to do (intents, rejections), and what became of each call."""
    rows = max(1, len(s.calls))
    for i, c in enumerate(s.calls):
        _call_life(acts, c, rows - i, lo, hi)
    for it in s.intents:
        if lo <= it.t <= hi:
            acts.plot([it.t], [0], marker="^", color="#3a0ca3", markersize=7)
            acts.text(it.t, -0.45, f"{it.action} {it.target or ''}".strip(), fontsize=7,
                      ha="center", va="top")  # fmt: skip
    for r in s.rejected:
        if lo <= r.t <= hi:
            acts.plot([r.t], [0], marker="x", color=BUDGET_COLOR, markersize=7)
    acts.set_ylim(-1.0, rows + 0.9)
    acts.set_yticks([0] + list(range(1, rows + 1)), ["intents"] + [""] * rows)
    acts.set_title(
        "intents (triangles) and tool calls: sent -> accepted -> running -> final",
        loc="left",
        fontsize=8,
    )


def _call_life(acts: Any, c: CallLife, y: int, lo: float, hi: float) -> None:
    """One call on its own line: a bar per status, coloured by it, and its final status."""
    points = [("sent", c.sent), *c.statuses]
    for (st, a), (_, b) in zip(points, points[1:] + [(None, points[-1][1])]):
        if b > a:
            acts.broken_barh([(a, b - a)], (y - 0.3, 0.6), color=STATUS_COLORS.get(st, OTHER))
    for _, t in points:
        if lo <= t <= hi:
            acts.plot([t], [y], marker="|", color="#333", markersize=8)
    final = c.final or "open"
    if c.sent <= hi and points[-1][1] >= lo:
        acts.text(max(points[-1][1], lo), y + 0.35, f"{c.action}: {final}", fontsize=7)


def _log_bins(values: np.ndarray, top: float) -> np.ndarray:
    lo = max(1e-3, float(values.min()) if len(values) else 1e-3)
    hi = max(top * 1.5, float(values.max()) if len(values) else top)
    return np.geomspace(lo / 1.2, hi * 1.2, 60)


def histograms(s: Summary) -> str:
    """Step time, overhead and their sum, each with the 80 ms budget marked (log scale)."""
    Figure = _mpl()
    fig = Figure(figsize=(12, 3.0))
    axes = fig.subplots(1, 3)
    series = (
        ("model step (ms)", s.model_ms),
        ("loop overhead (ms)", s.overhead_ms),
        ("step + overhead (ms)", s.model_ms + s.overhead_ms),
    )
    for ax, (title, xs) in zip(axes, series):
        if len(xs):
            ax.hist(xs, bins=_log_bins(xs, FRAME_MS), color="#457b9d")
        ax.set_xscale("log")
        ax.axvline(FRAME_MS, color=BUDGET_COLOR, lw=1.2)
        ax.text(FRAME_MS, ax.get_ylim()[1] * 0.95, f"{FRAME_MS:g} ms budget ",
                color=BUDGET_COLOR, fontsize=7, va="top", ha="right")  # fmt: skip
        if len(xs):
            p99 = float(np.percentile(xs, 99))
            ax.axvline(p99, color="#333", lw=0.8, ls=":")
            ax.text(p99, ax.get_ylim()[1] * 0.8, f" p99 {p99:.3g}", fontsize=7, va="top")
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("frames")
    return svg(fig)


def latency_bars(s: Summary) -> str | None:
    answered = [t for t in s.turns if t.latency_ms is not None]
    if not answered:
        return None
    Figure = _mpl()
    fig = Figure(figsize=(min(WIDTH_IN, 0.4 * len(answered) + 2.5), 2.4))
    ax = fig.subplots()
    x = np.arange(len(answered))
    ax.bar(x, [t.latency_ms for t in answered], color="#2a9d8f", width=0.6)
    ax.set_xticks(x, [str(t.number) for t in answered])
    ax.set_xlabel("turn")
    ax.set_ylabel("ms")
    ax.set_title("end of user speech -> the creature's first audio", fontsize=8)
    return svg(fig)
