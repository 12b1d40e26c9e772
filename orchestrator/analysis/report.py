"""``creature report``: one self-contained HTML file that shows a whole session.

Everything is inside the file: the plots as inline SVG, the styles, and the figures as JSON
(``<script type="application/json" id="report-data">``, the same as ``--json``), so it opens
offline, can be mailed, and a script can read the numbers back out of it.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from orchestrator.analysis import plots
from orchestrator.analysis.record_file import read_record
from orchestrator.analysis.summary import Summary, summarize

ROW_SECONDS = 30.0  # the timeline is drawn in rows of this length
MAX_ROWS = 40  # a longer session gets longer rows instead of more of them
MAX_TABLE_ROWS = 200  # tables longer than this show the first rows and a count

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px;
       color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #666; font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures td:nth-child(odd) { color: #555; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
          margin: 0 3px 0 10px; vertical-align: -1px; }
figure { margin: 8px 0 16px; } figure svg { max-width: 100%; height: auto; }
.none { color: #888; font-style: italic; }
"""


def render(s: Summary) -> str:
    """The whole page: the figures, the timeline, then a section per kind of thing that
    happened, and the figures again as JSON for scripts."""
    f = s.figures()
    return "\n".join(
        [
            *_head(s, f),
            *_timeline(s),
            *_speech(s),
            *_loop_health(s),
            *_actions(s),
            *_connection(s),
            '<script type="application/json" id="report-data">',
            json.dumps(s.to_dict(), default=str).replace("</", "<\\/"),
            "</script>",
            "</body></html>",
        ]
    )


def _head(s: Summary, f: dict[str, Any]) -> list[str]:
    """The page's head, its title and the figures a lab writes down."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>creature session report: {escape(Path(s.path).name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Session report: {escape(Path(s.path).name)}</h1>",
        f'<p class="meta">record {escape(s.path)} · backend {escape(str(s.backend))} · '
        f"{f['duration_s']:.1f} s · {s.frames} frames</p>",
        "<h2>Figures</h2>",
        _figures_table(f),
    ]


def _timeline(s: Summary) -> list[str]:
    """The session in rows of ``ROW_SECONDS``, the colours' legend, the step-time histograms."""
    return [
        "<h2>Timeline</h2>",
        *(f"<figure>{plots.timeline(s, lo, hi)}</figure>" for lo, hi in rows(s.duration_s)),
        _legend(),
        "<h2>Step time and loop overhead</h2>",
        f"<figure>{plots.histograms(s)}</figure>",
    ]


def _speech(s: Summary) -> list[str]:
    """Both sides' words, and each turn's latency (a table, and bars when any was answered)."""
    out = [
        "<h2>Transcript: both sides</h2>",
        _table(
            ["t (s)", "who", "words"],
            [[t, who, text] for t, who, text in s.transcript()],
            "no words on either side (the user's need voice.transcript; docs/transcript.md)",
        ),
        "<h2>Turns: end of user speech to the creature's first audio</h2>",
        _turns_table(s),
    ]
    bars = plots.latency_bars(s)
    if bars:
        out.append(f"<figure>{bars}</figure>")
    return out


def _loop_health(s: Summary) -> list[str]:
    """Frames past their deadline and events the consumers dropped."""
    return [
        "<h2>Deadline misses</h2>",
        _table(
            ["frame", "t (s)", "model (ms)", "overhead (ms)"],
            [[m.index, m.t, m.model_ms, m.overhead_ms] for m in s.misses],
            "no frame missed its 80 ms deadline",
        ),
        "<h2>Drops</h2>",
        _drops_table(s),
    ]


def _actions(s: Summary) -> list[str]:
    """The tool calls with their statuses, and the intents that led to them."""
    calls = [
        [
            c.id,
            c.action,
            c.robot or "(none: waited in the outbox)",
            c.sent,
            ", ".join(f"{st} +{t - c.sent:.3f}" for st, t in c.statuses),
            c.final or "open",
        ]
        for c in s.calls
    ]
    return [
        "<h2>Tool calls</h2>",
        _table(
            ["call", "action", "robot", "sent (s)", "statuses (s after sent)", "final"],
            calls,
            "no tool call",
        ),
        "<h2>Intents</h2>",
        _table(
            ["t (s)", "action", "object", "phrase", "decided after (ms)"],
            [[i.t, i.action, i.target or "", i.phrase, i.lag_ms] for i in s.intents],
            "no intent",
        ),
    ]


def _connection(s: Summary) -> list[str]:
    """The voice backend's lost links, its rollovers and errors."""
    return [
        "<h2>Connection</h2>",
        _table(
            ["lost at (s)", "back at (s)", "for (s)", "reason"],
            [[d.start, d.end, round(d.end - d.start, 3), d.label] for d in s.disconnects],
            "the voice backend never disconnected",
        ),
        _table(["t (s)", "rollover"], [[r.t, r.text] for r in s.rollovers], "no rollover"),
        _table(["t (s)", "error"], [[e.t, e.text] for e in s.errors], "no error"),
    ]


def _legend() -> str:
    def swatches(colors: dict[str, str]) -> str:
        return "".join(
            f'<span class="swatch" style="background:{c}"></span>{escape(n)}'
            for n, c in colors.items()
        )

    return (
        f'<p class="meta">states: {swatches(plots.STATE_COLORS)}<br>emotions: '
        f"{swatches(plots.EMOTION_COLORS)}<br>tool-call statuses: "
        f"{swatches(plots.STATUS_COLORS)}</p>"
    )


def rows(duration_s: float) -> list[tuple[float, float]]:
    length = max(ROW_SECONDS, duration_s / MAX_ROWS)
    n = max(1, math.ceil(duration_s / length - 1e-9))
    return [(i * length, min(duration_s, (i + 1) * length)) for i in range(n)]


def _num(v: float) -> str:
    """Up to three decimals, no trailing zeros (632.8, 5.205, -45)."""
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return f"<td>{'yes' if v else 'no'}</td>"
    if isinstance(v, float):
        return f'<td class="num">{_num(v)}</td>'
    if isinstance(v, int):
        return f'<td class="num">{v}</td>'
    return f"<td>{escape('' if v is None else str(v))}</td>"


def _table(head: list[str], body: list[list[Any]], empty: str) -> str:
    if not body:
        return f'<p class="none">{escape(empty)}</p>'
    out = ["<table><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for row in body[:MAX_TABLE_ROWS]:
        out.append("<tr>" + "".join(_cell(v) for v in row) + "</tr>")
    out.append("</table>")
    if len(body) > MAX_TABLE_ROWS:
        out.append(f'<p class="none">... and {len(body) - MAX_TABLE_ROWS} more</p>')
    return "".join(out)


FIGURE_NAMES = {
    "duration_s": "duration (s)",
    "frames": "frames",
    "deadline_misses": "deadline misses (frames later than 80 ms)",
    "model_ms_p50": "model step p50 (ms)",
    "model_ms_p99": "model step p99 (ms)",
    "model_ms_max": "model step max (ms)",
    "overhead_ms_p50": "loop overhead p50 (ms)",
    "overhead_ms_p99": "loop overhead p99 (ms)",
    "overhead_ms_max": "loop overhead max (ms)",
    "step_plus_overhead_ms_p99": "step + overhead p99 (ms)",
    "turns": "user turns",
    "turns_answered": "turns the creature answered",
    "latency_ms_p50": "end of user speech -> first audio, p50 (ms)",
    "latency_ms_p90": "end of user speech -> first audio, p90 (ms)",
    "latency_ms_min": "end of user speech -> first audio, min (ms)",
    "latency_ms_max": "end of user speech -> first audio, max (ms)",
    "intents": "intents",
    "tool_calls": "tool calls",
    "tool_calls_by_final_status": "tool calls by final status",
    "tool_calls_rejected": "tool calls rejected by the safety gate",
    "disconnects": "backend disconnects",
    "disconnected_s": "time disconnected (s)",
    "rollovers": "rollovers",
    "user_lines": "lines the user said (transcript)",
    "errors": "errors",
    "dropped": "events dropped per consumer",
    "record_dropped": "events the record could not write",
    "voice_db": "the creature's audio counts from (dBFS)",
}


def _figures_table(f: dict[str, Any]) -> str:
    """The figures two to a row, so the page opens on the timeline."""
    cells = []
    for key, name in FIGURE_NAMES.items():
        v = f.get(key)
        if isinstance(v, dict):
            v = ", ".join(f"{k}: {n}" for k, n in v.items()) or "none"
        cells.append([name, "n/a" if v is None else v])
    half = math.ceil(len(cells) / 2)
    rows_ = [cells[i] + (cells[i + half] if i + half < len(cells) else ["", ""])
             for i in range(half)]  # fmt: skip
    table = _table(["figure", "value", "figure", "value"], rows_, "")
    return table.replace("<table>", '<table class="figures">', 1)


def _turns_table(s: Summary) -> str:
    body = []
    for t in s.turns:
        d = s.turn_dict(t)
        body.append(
            [
                t.number,
                d["user_start_t"],
                d["speech_end_t"],
                d["vad_end_t"],
                d["reply_t"],
                t.latency_ms,
                t.latency_after_vad_ms,
                "yes" if t.overlap else "",
            ]
        )
    return _table(
        [
            "turn",
            "user started (s)",
            "user stopped (s)",
            "VAD decided (s)",
            "first audio (s)",
            "latency (ms)",
            "after the VAD (ms)",
            "creature already speaking",
        ],
        body,
        "no user speech in this record",
    )


def _drops_table(s: Summary) -> str:
    body = [[name, n] for name, n in sorted(s.dropped.items())]
    body.append(["(the record itself)", s.record_dropped])
    out = _table(["consumer", "events dropped"], body, "")
    if s.truncated:
        out += '<p class="none">the record\'s last line was cut short (ignored)</p>'
    return out


def write_report(record: str | Path, out: str | Path) -> Summary:
    s = summarize(read_record(record))
    Path(out).write_text(render(s), encoding="utf-8")
    return s
