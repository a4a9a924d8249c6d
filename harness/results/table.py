"""The leaderboard as a terminal table, Markdown and CSV (written atomically).

The terminal table fits 120 columns: grouped by benchmark (task), the data source said once per
group, one row per system and metric with its value, CI, delta against its base with the delta's
CI and a mark that reads without colour, and p. `wide` gives every column, as Markdown and CSV do.
"""

from __future__ import annotations

import csv
import io
import textwrap
from itertools import groupby
from pathlib import Path

from harness.atomic import atomic_file
from harness.data import decontamination
from harness.results.compare import Row

FOOTNOTE = (
    "p < 0.05 vs the same base on the same documents: paired sign-flip permutation test for "
    "per-document scores, paired bootstrap for corpus BLEU/CodeBLEU"
)

PROXY_NOTE = (
    "Data labelled 'offline proxy' stands in for the real data set (arXiv, OpenCodeInstruct) so the product runs offline: "
    "it is not a benchmark number. How the embedded adapters trained on it do on real rows (benchmarks/proxy_transfer.py): "
    "README.md, 'The demo'; real numbers come from --source hub or a local copy"
)


def proxy_note(rows: list[Row]) -> str:
    """The proxy banner, when any row's data is an offline proxy ('' otherwise)."""
    return PROXY_NOTE if any("proxy" in (r.data or "") for r in rows) else ""


COLUMNS = ["task", "base", "adapter", "metric", "value", "95% CI", "n", "delta vs base", "delta 95% CI", "p", "data"]


def decontamination_note(rows: list[Row]) -> str:
    """Each adapter's training data against the evaluation sets, said once (no adapter: '')."""
    seen = {(r.base, r.adapter): r.train_decontamination for r in rows if r.adapter and r.kind == "model"}
    if not seen:
        return ""
    short = {key: _short(key[1], key[0]) for key in seen}
    unique = len(set(short.values())) == len(short)
    parts = [f"{short[key] if unique else key[1]}: {text or 'not recorded'}" for key, text in sorted(seen.items())]
    return f"Training data vs evaluation sets ({decontamination.DEFINITION}): " + "; ".join(parts)


def _fmt(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def cells(row: Row) -> list[str]:
    mark = ""
    if row.p_value is not None:
        mark = " *" if row.significant else ""
        if row.improves:
            mark = " * (better)"
        elif row.significant:
            mark = " * (worse)"
    return [
        row.task,
        row.base,
        f"{row.adapter} vs {row.versus}" if row.kind == "specialist" else row.adapter or "(base)",
        row.metric,
        _fmt(row.value),
        f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]" if row.ci_low is not None else "",
        str(row.n),
        (f"{row.delta:+.4f}" + mark) if row.delta is not None else "",
        f"[{row.delta_low:+.4f}, {row.delta_high:+.4f}]" if row.delta_low is not None else "",
        _fmt(row.p_value, 3),
        row.data,
    ]


WIDTH = 120
COMPACT = ["system", "metric", "value", "95% CI", "delta vs base", "delta 95% CI", "", "p", "n"]
LEGEND = "better / worse: p < 0.05 in the metric's good / bad direction; n.s.: no significant difference"


def _num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return ""
    digits = 1 if abs(x) >= 10 else 3
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def p_text(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def mark(row: Row) -> str:
    if row.p_value is None:
        return ""
    if not row.significant:
        return "n.s."
    return "better" if row.improves else ("worse" if row.improves is False else "*")


def _short(adapter: str, base: str) -> str:
    return adapter.removesuffix(f"-{base}")  # the group names the base once


def _system(row: Row) -> str:
    return _short(row.adapter, row.base) if row.adapter else "(base)"


def _compact_cells(row: Row) -> list[str]:
    ci = f"[{_num(row.ci_low)}, {_num(row.ci_high)}]" if row.ci_low is not None else ""
    dci = f"[{_num(row.delta_low, True)}, {_num(row.delta_high, True)}]" if row.delta_low is not None else ""
    return [_system(row)[:28], row.metric[:18], _num(row.value), ci, _num(row.delta, True), dci, mark(row), p_text(row.p_value), str(row.n)]


def terminal(rows: list[Row], *, wide: bool = False) -> str:
    if wide:
        body = [COLUMNS] + [cells(r) for r in rows]
        widths = [max(len(line[i]) for line in body) for i in range(len(COLUMNS))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in body]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n\n* " + FOOTNOTE + "\n" + _line(decontamination_note(rows))
    out: list[str] = []
    # Systems by benchmark first; retrieval indexes and routers after them, in sections of their own.
    order = {"model": 0, "specialist": 1, "versus": 2, "retrieval": 3, "routing": 4}
    ordered = sorted(rows, key=lambda r: (order.get(r.kind, len(order)), r.task, r.base, r.key, r.adapter != "", r.adapter, r.metric))
    for (kind, task, base, data, _), group in groupby(ordered, key=lambda r: (r.kind, r.task, r.base, r.data, r.versus)):
        group = list(group)
        out.append(_group_title(kind, task, base, group[0].versus))
        out += textwrap.wrap(f"data: {data or 'unknown'}", WIDTH, initial_indent="  ", subsequent_indent="    ")
        against = {"specialist": "delta vs specialist", "versus": f"delta vs {group[0].versus}"[:24]}.get(kind, "delta vs base")
        body = [[against if h == "delta vs base" else h for h in COMPACT]] + [_compact_cells(r) for r in group]
        widths = [max(len(line[i]) for line in body) for i in range(len(COMPACT))]
        right = {2, 4, 7, 8}  # numbers align on the right
        for i, line in enumerate(body):
            text = "  ".join(c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in enumerate(zip(line, widths)))
            out.append(("  " + text).rstrip()[:WIDTH])
            if i == 0:
                out.append(("  " + "  ".join("-" * w for w in widths))[:WIDTH])
        out.append("")
    notes = textwrap.wrap(LEGEND + ". " + FOOTNOTE + ". `--wide` shows every column.", WIDTH)
    notes += textwrap.wrap(decontamination_note(rows), WIDTH)
    notes += textwrap.wrap(proxy_note(rows), WIDTH)
    return "\n".join(out + notes) + "\n"


def markdown(rows: list[Row]) -> str:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    return "\n".join(out) + "\n\n\\* " + FOOTNOTE + "\n" + _line(decontamination_note(rows)) + _line(proxy_note(rows))


def _group_title(kind: str, task: str, base: str, versus: str) -> str:
    if kind == "retrieval":
        return f"{task}: retrieval with {base} (query: abstract; target: own chunks)"
    if kind == "routing":
        return f"{task}: routers among the served adapters of {base} (held-out prompts; right = what the manifest serves; Wilson CIs)"
    if kind == "specialist":
        return f"{task} on {base}, combined systems against the specialist {_short(versus, base)} (delta = system - specialist)"
    if kind == "versus":
        return f"{task} vs {versus} on {base}: each system against itself on the same documents (delta = {task} - {versus})"
    return f"{task} on {base}"


def _line(text: str) -> str:
    return f"\n{text}\n" if text else ""


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    fields = list(Row.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r.as_dict())
    return buf.getvalue()


def write(path: Path, text: str) -> None:
    with atomic_file(Path(path), encoding="utf-8", newline="") as fh:
        fh.write(text)
