"""The leaderboard page: `lorabench leaderboard --page` (or `streamlit run leaderboard/app.py`).

Reads the results database named by $LORABENCH_RESULTS_DB (default
$LORABENCH_HOME/results/results.sqlite). It opens on the verdict: for each base, a grid of
benchmarks x systems with the primary metric, its delta against the base with the CI and a mark
that reads without colour; a cell opens its details (every metric, the same documents answered by
the base and the system side by side). Below: one forest plot per benchmark and metric on the
metric's own axis, and the table of every metric.
"""

from __future__ import annotations

import re
import sys
from html import escape
from pathlib import Path

try:
    import harness  # noqa: F401  (installed with the project)
except ImportError:  # run from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import altair as alt
import pandas as pd
import streamlit as st

from harness import benchmarks, settings
from harness.errors import LorabenchError
from harness.results import board, table, verdict
from harness.results.store import ResultStore

ROW_PX = 30  # height of one system's row in a forest plot
SAMPLE_TEXT = 600  # characters of a prompt shown in the samples table (the full text is below it)


def db_path() -> Path:
    if settings.RESULTS_DB.get():
        return Path(settings.RESULTS_DB.get())
    from harness.matrix.run import default_db

    return default_db()


@st.cache_data(show_spinner=False)
def load(path: str, mtime: float) -> tuple[list, list]:
    """Every cell (without samples) and every leaderboard row; `mtime` re-reads a changed file."""
    store = ResultStore.open_read_only(Path(path))  # a page reads: it never writes to the store
    cells = store.cells()
    return cells, board.rows(cells, lambda c: store.samples(c.cell_id))


def key_of(*parts: str) -> str:
    """A widget or container key (it becomes a CSS class: letters, digits, - and _ only)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", "-".join(parts))


def colour_mark(row) -> str:
    """The mark as Markdown: shape and word always, colour on top."""
    text = verdict.mark_text(row)
    m = verdict.mark(row)
    return f":green[{text}]" if m == "better" else f":red[{text}]" if m == "worse" else text


# --- the verdict grid -----------------------------------------------------------------------------


def metric_note(task: str, metric: str) -> str:
    declared = benchmarks.metric(task, metric)
    if declared is None:
        return ""
    return f" ({', '.join(x for x in (declared.scale, 'higher is better' if declared.higher_is_better else 'lower is better') if x)})"


def draw_grid(grid: verdict.Grid, palette: dict[str, str]) -> None:
    widths = [2.0] + [1.7] * len(grid.systems)
    head = st.columns(widths, vertical_alignment="bottom")
    head[0].markdown("**benchmark**")
    for col, name in zip(head[1:], grid.systems, strict=True):
        swatch = f'<span style="color:{palette[name]}">■</span>'
        col.markdown(f'{swatch} <b title="{escape(grid.full_names[name])}">{escape(name)}</b>', unsafe_allow_html=True)
    for line in grid.lines:
        cols = st.columns(widths)
        with cols[0]:
            st.markdown(f"**{line.label}**")
            primary = (
                f"primary metric: `{line.primary}`{metric_note(line.task, line.primary)}" if line.primary else "no primary metric declared"
            )
            data = line.data or "unknown"
            st.caption(f"{primary} · data: {'⚠ ' if 'proxy' in data else ''}{data}")
        for col, name in zip(cols[1:], grid.systems, strict=True):
            entry = line.entries.get(name)
            with col.container(border=True, key=key_of("cell", grid.base, line.task, line.key, name)):
                if entry is None:
                    st.caption("not evaluated")
                    continue
                draw_entry(entry)
                if st.button("details", key=key_of("open", str(entry.cell_id)), type="tertiary", help=grid.full_names[name]):
                    details(entry.cell_id)


def draw_entry(entry: verdict.Entry) -> None:
    """The verdict first, then the value with its CI, the delta with its CI, p and n."""
    row = entry.row
    if row is None:
        st.caption(f"no `{entry.metric}` in this cell")
        return
    lines = [f"**{colour_mark(row)}**", f"{verdict.number(row.value)} {verdict.interval(row.ci_low, row.ci_high)}"]
    if row.adapter and row.delta is not None:
        lines.append(f"Δ {verdict.number(row.delta, True)} {verdict.interval(row.delta_low, row.delta_high, True)}")
        lines.append(f"p {table.p_text(row.p_value)} · n {row.n}")
    else:
        lines.append(f"n {row.n}")
    st.markdown("  \n".join(lines))


# --- a cell's details -----------------------------------------------------------------------------


def metric_table(rows: list) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "metric": r.metric,
                "value": verdict.number(r.value),
                "95% CI": verdict.interval(r.ci_low, r.ci_high),
                "Δ vs base": verdict.number(r.delta, True),
                "Δ 95% CI": verdict.interval(r.delta_low, r.delta_high, True),
                "verdict": verdict.mark_text(r) if r.adapter else "",
                "p": table.p_text(r.p_value),
                "n": r.n,
            }
            for r in rows
        ]
    )


@st.dialog("Cell details", width="large")
def details(cell_id: int) -> None:
    path = db_path()
    cells, rows = load(str(path), path.stat().st_mtime)
    cell = next(c for c in cells if c.cell_id == cell_id)
    key = cell.comparable_key[:8]
    st.markdown(f"**{verdict.full_name(cell.adapter, cell.base)}** on **{cell.task}** (key `{key}`, {cell.n} documents)")
    st.caption(f"data: {cell.provenance.get('data_label') or 'unknown'}")
    mine = [r for r in rows if (r.task, r.base, r.adapter, r.key) == (cell.task, cell.base, cell.adapter, key)]
    st.table(metric_table(mine).set_index("metric"))

    store = ResultStore.open_read_only(path)
    samples = {s.doc_id: s for s in store.samples(cell_id)}
    partner = next(
        (
            c
            for c in cells
            if cell.adapter and not c.adapter and (c.task, c.base, c.comparable_key) == (cell.task, cell.base, cell.comparable_key)
        ),
        None,
    )
    base_samples = {s.doc_id: s for s in store.samples(partner.cell_id)} if partner else {}
    if not samples:
        st.info("This cell kept no per-document samples.")
        return
    who = verdict.system_name(cell.adapter, cell.base)
    names = sorted({m for s in samples.values() for m in s.scores})
    primary = verdict.primary_metric(cell)
    metric = st.selectbox("Per-document score", names, index=names.index(primary) if primary in names else 0, key=f"metric-{cell_id}")
    records = []
    for doc_id, s in samples.items():
        b = base_samples.get(doc_id)
        record = {"doc": s.doc_key or doc_id}
        if partner:
            record[f"base {metric}"] = b.scores.get(metric) if b else None
        record[f"{who} {metric}"] = s.scores.get(metric)
        if partner:
            record["base answer"] = b.response if b else ""
        record[f"{who} answer"] = s.response
        record["reference"] = s.reference
        records.append(record)
    st.dataframe(pd.DataFrame(records), hide_index=True, width="stretch", key=f"samples-{cell_id}")

    doc = st.selectbox(
        "One document, side by side", list(samples), format_func=lambda d: str(samples[d].doc_key or d), key=f"doc-{cell_id}"
    )
    s, b = samples[doc], base_samples.get(doc)
    with st.expander("prompt"):
        st.text((s.prompt or "")[-SAMPLE_TEXT * 4 :])
    shown = [("reference", s.reference, None)] + ([("base", b.response, b.scores)] if b else []) + [(who, s.response, s.scores)]
    for col, (title, text, scores) in zip(st.columns(len(shown)), shown, strict=True):
        with col:
            st.markdown(f"**{title}**")
            if scores:
                st.caption(" · ".join(f"{m} {verdict.number(v) if isinstance(v, (int, float)) else v}" for m, v in sorted(scores.items())))
            st.text(text or "")


# --- forest plots ---------------------------------------------------------------------------------


def forest_frame(rows: list, systems: list[str], base: str) -> pd.DataFrame:
    by_system = {verdict.system_name(r.adapter, base): r for r in rows}
    out = []
    for name in systems:
        r = by_system.get(name)
        if r is None:
            continue
        delta = (
            "base"
            if not r.adapter
            else (
                f"Δ {verdict.number(r.delta, True)} {verdict.interval(r.delta_low, r.delta_high, True)}  p {table.p_text(r.p_value)}"
                if r.delta is not None
                else "not compared"
            )
        )
        out.append(
            {
                "system": name,
                "full name": verdict.full_name(r.adapter, base),
                "value": r.value,
                "ci_low": r.value if r.ci_low is None else r.ci_low,
                "ci_high": r.value if r.ci_high is None else r.ci_high,
                "mark": verdict.mark(r),
                "verdict": verdict.mark_text(r),
                "delta": delta,
                "label": f"{verdict.SYMBOLS[verdict.mark(r)]} {delta}" if r.adapter else "■ base",
                "n": r.n,
            }
        )
    return pd.DataFrame(out)


SHAPES = {"base": "square", "better": "triangle-up", "worse": "triangle-down", "n.s.": "circle", "*": "diamond", "": "cross"}


def forest_chart(frame: pd.DataFrame, metric: str, axis_title: str, palette: dict[str, str], width: int = 520) -> alt.HConcatChart:
    order = list(frame["system"])
    height = ROW_PX * len(frame)
    y = alt.Y("system:N", sort=order, title=None, axis=alt.Axis(labelLimit=0, labelFontSize=13))
    colour = alt.Color("system:N", scale=alt.Scale(domain=list(palette), range=list(palette.values())), legend=None)
    tooltip = [
        "full name:N",
        alt.Tooltip("value:Q", format=".4f"),
        alt.Tooltip("ci_low:Q", format=".4f"),
        alt.Tooltip("ci_high:Q", format=".4f"),
        "delta:N",
        "verdict:N",
        "n:Q",
    ]
    base = alt.Chart(frame)
    x = alt.X("value:Q", title=axis_title, scale=alt.Scale(zero=False, nice=True))
    rules = base.mark_rule(strokeWidth=3).encode(
        y=y, x=alt.X("ci_low:Q", title=axis_title, scale=alt.Scale(zero=False, nice=True)), x2="ci_high:Q", color=colour, tooltip=tooltip
    )
    points = base.mark_point(filled=True, size=140, opacity=1).encode(
        y=y,
        x=x,
        color=colour,
        shape=alt.Shape("mark:N", scale=alt.Scale(domain=list(SHAPES), range=list(SHAPES.values())), legend=None),
        tooltip=tooltip,
    )
    reference = base.transform_filter(alt.datum.mark == "base").mark_rule(strokeDash=[4, 4], color=verdict.BASE_COLOUR).encode(x="value:Q")
    plot = (rules + points + reference).properties(width=width, height=height, title=alt.Title(metric, anchor="start"))
    labels = (
        base.mark_text(align="left", fontSize=13)
        .encode(x=alt.value(0), y=alt.Y("system:N", sort=order, axis=None), text="label:N", tooltip=tooltip)
        .properties(width=320, height=height, title=alt.Title(" "))
    )
    return alt.hconcat(plot, labels, spacing=4).configure_view(stroke=None)


def all_zero(frame: pd.DataFrame) -> bool:
    return bool(len(frame)) and bool((frame[["value", "ci_low", "ci_high"]].abs() < 1e-12).all().all())


def draw_forests(grid: verdict.Grid, rows: list, metrics: set[str], palette: dict[str, str]) -> None:
    for line in grid.lines:
        mine = [r for r in rows if (r.task, r.base, r.key) == (line.task, grid.base, line.key) and r.metric in metrics]
        names = sorted({r.metric for r in mine}, key=lambda m: (m != line.primary, m))
        if not names:
            continue
        st.markdown(f"**{line.label}** on {grid.base}")
        for metric in names:
            frame = forest_frame([r for r in mine if r.metric == metric], grid.systems, grid.base)
            declared = benchmarks.metric(line.task, metric)
            scale = f" ({declared.scale})" if declared and declared.scale else ""
            with st.container(key=key_of("forest", grid.base, line.task, line.key, metric)):
                if all_zero(frame):
                    n = int(frame["n"].max())
                    st.info(f"**{metric}**: 0 for every system, 0 of {n} solved (nothing to plot).")
                    continue
                st.altair_chart(forest_chart(frame, metric, f"{metric}{scale}", palette))


# --- the table ------------------------------------------------------------------------------------


def table_frame(rows: list, several_bases: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "task": r.task,
                **({"base": r.base} if several_bases else {}),
                "system": verdict.system_name(r.adapter, r.base),
                "metric": r.metric,
                "value": verdict.number(r.value),
                "95% CI": verdict.interval(r.ci_low, r.ci_high),
                "Δ vs base": verdict.number(r.delta, True),
                "Δ 95% CI": verdict.interval(r.delta_low, r.delta_high, True),
                "verdict": f"{verdict.SYMBOLS[verdict.mark(r)]} {table.mark(r)}" if r.adapter and r.p_value is not None else "",
                "p": table.p_text(r.p_value),
                "n": r.n,
            }
            for r in sorted(rows, key=lambda r: (r.task, r.base, r.key, r.adapter != "", r.adapter, r.metric))
        ]
    )
    return frame


COLUMN_WIDTHS = {
    "task": 130,
    "base": 150,
    "system": 130,
    "metric": 110,
    "value": 65,
    "95% CI": 120,
    "Δ vs base": 75,
    "Δ 95% CI": 135,
    "verdict": 85,
    "p": 60,
    "n": 40,
}


def main() -> None:
    st.set_page_config(page_title="lorabench leaderboard", layout="wide")
    # Streamlit's wide layout keeps 5rem margins: the grid and the table need that room at 1400 px.
    st.markdown(
        '<style>[data-testid="stMainBlockContainer"]{padding:2rem 2rem 3rem 2rem}</style>',
        unsafe_allow_html=True,
    )
    st.title("lorabench leaderboard")
    path = db_path()
    if not path.is_file():
        st.error(f"No results database at {path}. Run `lorabench eval` first, or set LORABENCH_RESULTS_DB.")
        return
    try:
        cells, rows = load(str(path), path.stat().st_mtime)
    except LorabenchError as exc:  # not a lorabench store, or a corrupt one: one line, no traceback
        st.error(str(exc))
        return
    if not cells:
        st.warning(f"{path} holds no results yet. Run `lorabench eval`.")
        return

    with st.sidebar:
        st.header("Filters")
        all_bases = sorted({c.base for c in cells})
        all_tasks = sorted({c.task for c in cells})
        all_metrics = sorted({r.metric for r in rows})
        bases = st.multiselect("Bases", all_bases, default=all_bases, key="bases")
        tasks = st.multiselect("Benchmarks (tasks)", all_tasks, default=all_tasks, key="tasks")
        metrics = set(st.multiselect("Metrics (plots and table)", all_metrics, default=all_metrics, key="metrics"))
    cells = [c for c in cells if c.base in bases and c.task in tasks]
    rows = [r for r in rows if r.base in bases and r.task in tasks]
    # Retrieval indexes (base = embedding model, systems = methods) have a section of their own.
    retrieval = [r for r in rows if r.kind == "retrieval"]
    routing = [r for r in rows if r.kind == "routing"]
    routing_cells = [c for c in cells if c.provenance.get("kind") == "routing"]
    versus = [r for r in rows if r.kind == "versus"]
    against_specialist = [r for r in rows if r.kind == "specialist"]
    cells = [c for c in cells if (c.provenance.get("kind") or "model") == "model"]
    rows = [r for r in rows if r.kind == "model"]
    grids = verdict.grids(cells, rows)
    palette = verdict.colours([s for g in grids for s in g.systems])

    st.caption(f"{path} · {len(cells)} cells · values with 95% bootstrap CIs; Δ = system − base on the same documents")
    if table.proxy_note(rows):
        st.warning(table.proxy_note(rows) + ".", icon="⚠")
    st.caption(verdict.LEGEND + ". `details` opens a cell: every metric, and the documents answered side by side.")
    for grid in grids:
        st.subheader(f"Base: {grid.base}")
        draw_grid(grid, palette)

    st.header("Forest plots")
    st.caption(
        "Each metric on its own axis: the point is a system's value, the bar its 95% CI, the dashed line the base; "
        "the shape is the verdict of the paired test (▲ better, ▼ worse, ○ no significant difference, ■ base), "
        "written out on the right. Hover a row for the full names."
    )
    for grid in grids:
        draw_forests(grid, rows, metrics, palette)

    st.header("Every metric")
    st.caption(f"{table.LEGEND}. {table.FOOTNOTE}.")
    shown = table_frame([r for r in rows if r.metric in metrics], len(grids) > 1)
    config = {name: st.column_config.Column(width=w) for name, w in COLUMN_WIDTHS.items() if name in shown.columns}
    st.dataframe(shown, hide_index=True, column_config=config, key="table")
    note = table.decontamination_note(rows)
    if note:
        st.caption(note)
    if against_specialist:
        st.header("Combined systems against each benchmark's specialist")
        st.caption(
            "A routed system (a router picks an adapter per request) or a merged adapter against the adapter that wins the "
            "benchmark (`lorabench winners`' rule), paired on the same documents; Δ = system − specialist. "
            "The comparison with the base is in the tables above."
        )
        for task in sorted({r.task for r in against_specialist}):
            spec = next(r.versus for r in against_specialist if r.task == task)
            shown = table_frame([r for r in against_specialist if r.task == task and r.metric in metrics], len(grids) > 1)
            st.caption(f"{task}: specialist {spec}")
            st.dataframe(shown.rename(columns={"Δ vs base": "Δ vs specialist"}), hide_index=True, key=key_of("specialist", task))
    if versus:
        st.header("Retrieval-selected context against head truncation")
        for task in sorted({r.task for r in versus}):
            other = next(r.versus for r in versus if r.task == task)
            st.caption(
                f"{task} against {other}: each system against itself on the same documents, paired; Δ = {task} − {other}. "
                "The context of each article is its own chunks most relevant to its opening, packed to the same token budget."
            )
            shown = table_frame([r for r in versus if r.task == task and r.metric in metrics], len(grids) > 1)
            st.dataframe(shown.rename(columns={"Δ vs base": f"Δ vs {other}"}), hide_index=True, key=key_of("versus", task))
    if retrieval:
        st.header("Retrieval")
        st.caption(
            "Each indexed paper's abstract is the query and its own article's chunks the target: recall@k is the share "
            "of papers with an own chunk in the top k, MRR the mean reciprocal rank of the first one, with 95% bootstrap CIs."
        )
        shown = table_frame([r for r in retrieval if r.metric in metrics], True)
        st.dataframe(shown.drop(columns=["Δ vs base", "Δ 95% CI", "verdict", "p"]), hide_index=True, key="retrieval")
    if routing:
        draw_routing(routing, routing_cells, metrics)


def draw_routing(rows: list, cells: list, metrics: set) -> None:
    """Each router's accuracy (overall and per benchmark) and its confusion matrix."""
    st.header("Routing")
    st.caption(
        "Each held-out validation prompt of every benchmark is routed (`model: auto`); it is right when the router picks "
        "what the serving manifest serves for the prompt's benchmark (HumanEval's problems: the code benchmark's adapter). "
        "Accuracy with 95% Wilson intervals; `lorabench route --evaluate` measures it."
    )
    shown = table_frame([r for r in rows if r.metric in metrics], True)
    st.dataframe(shown.drop(columns=["Δ vs base", "Δ 95% CI", "verdict", "p"]), hide_index=True, key="routing")
    for cell in sorted(cells, key=lambda c: (c.base, c.adapter)):
        confusion = cell.provenance.get("confusion") or {}
        if not confusion:
            continue
        expected = cell.provenance.get("expected") or {}
        st.caption(f"{cell.adapter} on {cell.base}: confusion (rows: the prompt's benchmark, expected adapter; columns: what it picked)")
        frame = pd.DataFrame.from_dict(confusion, orient="index")
        frame.index = [f"{b} → {expected.get(b, '?')}" for b in frame.index]
        st.dataframe(frame, key=key_of("confusion", cell.base, cell.adapter))


main()
