"""The leaderboard as a terminal table, Markdown and CSV (written atomically)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from harness.atomic import atomic_file
from harness.results.compare import Row

FOOTNOTE = (
    "p < 0.05 vs the same base on the same documents: paired sign-flip permutation test for "
    "per-document scores, paired bootstrap for corpus BLEU/CodeBLEU"
)

COLUMNS = ["task", "base", "adapter", "metric", "value", "95% CI", "n", "delta vs base", "delta 95% CI", "p", "data"]


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
        row.adapter or "(base)",
        row.metric,
        _fmt(row.value),
        f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]" if row.ci_low is not None else "",
        str(row.n),
        (f"{row.delta:+.4f}" + mark) if row.delta is not None else "",
        f"[{row.delta_low:+.4f}, {row.delta_high:+.4f}]" if row.delta_low is not None else "",
        _fmt(row.p_value, 3),
        row.data,
    ]


def terminal(rows: list[Row]) -> str:
    body = [COLUMNS] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n\n* " + FOOTNOTE + "\n"


def markdown(rows: list[Row]) -> str:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    return "\n".join(out) + "\n\n\\* " + FOOTNOTE + "\n"


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
