"""The leaderboard page: `streamlit run leaderboard/app.py` (or `lorabench leaderboard --page`).

Reads the results database named by $LORABENCH_RESULTS_DB (default
$LORABENCH_HOME/results/results.sqlite). Shows the table, per-task bar charts with 95% CIs, each
adapter's delta against its base with significance marked, filters, and a drill-down into the
same documents answered by base and adapter side by side.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from harness import settings
from harness.results import compare
from harness.results.store import ResultStore


def db_path() -> Path:
    if settings.RESULTS_DB.get():
        return Path(settings.RESULTS_DB.get())
    from harness.matrix.run import default_db

    return default_db()


@st.cache_data(show_spinner=False)
def load(path: str, mtime: float) -> tuple[pd.DataFrame, dict]:
    """Leaderboard rows as a frame, and the cells by (task, base, adapter, key) for drill-down."""
    store = ResultStore(Path(path))
    cells = store.cells()
    rows = compare.rows(cells, lambda c: store.samples(c.cell_id))
    frame = pd.DataFrame([r.as_dict() for r in rows])
    index = {(c.task, c.base, c.adapter, c.comparable_key[:8]): c.cell_id for c in cells}
    return frame, index


def system(row) -> str:
    return f"{row['base']} + {row['adapter']}" if row["adapter"] else f"{row['base']} (base)"


def main() -> None:
    st.set_page_config(page_title="lorabench leaderboard", layout="wide")
    st.title("lorabench leaderboard")
    path = db_path()
    if not path.is_file():
        st.error(f"No results database at {path}. Run `lorabench eval` first, or set LORABENCH_RESULTS_DB.")
        return
    frame, index = load(str(path), path.stat().st_mtime)
    if frame.empty:
        st.warning(f"{path} holds no results yet. Run `lorabench eval`.")
        return
    frame["system"] = frame.apply(system, axis=1)
    st.caption(
        f"{path} · {len(index)} cells · 95% bootstrap CIs · * = p < 0.05 vs the same base on the same documents (paired sign-flip test; paired bootstrap for BLEU/CodeBLEU)"
    )
    for label in sorted(set(frame["data"]) - {""}):
        if "proxy" in label:
            st.warning(f"Proxy data, not the benchmark: {label}")

    with st.sidebar:
        st.header("Filters")
        tasks = st.multiselect("Tasks", sorted(frame["task"].unique()), default=sorted(frame["task"].unique()))
        bases = st.multiselect("Bases", sorted(frame["base"].unique()), default=sorted(frame["base"].unique()))
        metrics = st.multiselect("Metrics", sorted(frame["metric"].unique()), default=sorted(frame["metric"].unique()))
        only_significant = st.checkbox("Only adapters with a significant delta", value=False)
    view = frame[frame["task"].isin(tasks) & frame["base"].isin(bases) & frame["metric"].isin(metrics)]
    if only_significant:
        view = view[(view["adapter"] == "") | (view["significant"] == True)]  # noqa: E712

    st.subheader("Table")
    shown = view.assign(
        adapter=view["adapter"].replace("", "(base)"),
        sig=view.apply(
            lambda r: "" if pd.isna(r["p_value"]) else ("better *" if r["improves"] else ("worse *" if r["significant"] else "n.s.")),
            axis=1,
        ),
    )[
        [
            "task",
            "base",
            "adapter",
            "metric",
            "value",
            "ci_low",
            "ci_high",
            "n",
            "delta",
            "delta_low",
            "delta_high",
            "p_value",
            "sig",
            "data",
        ]
    ]
    st.dataframe(shown, hide_index=True, width="stretch")

    st.subheader("Per task")
    for task in sorted(view["task"].unique()):
        part = view[view["task"] == task]
        st.markdown(f"**{task}**")
        cols = st.columns(min(3, max(1, part["metric"].nunique())))
        for i, metric in enumerate(sorted(part["metric"].unique())):
            data = part[part["metric"] == metric]
            bars = (
                alt.Chart(data)
                .mark_bar()
                .encode(
                    x=alt.X("system:N", title=None),
                    y=alt.Y("value:Q", title=metric),
                    color="system:N",
                    tooltip=["system", "value", "ci_low", "ci_high", "n"],
                )
            )
            whiskers = (
                alt.Chart(data.dropna(subset=["ci_low"]))
                .mark_errorbar()
                .encode(x="system:N", y=alt.Y("ci_low:Q", title=metric), y2="ci_high:Q")
            )
            cols[i % len(cols)].altair_chart((bars + whiskers).properties(height=260, title=metric), width="stretch")

    st.subheader("Delta vs base")
    deltas = view[view["delta"].notna()]
    if deltas.empty:
        st.info("No adapter has a comparable base cell in this view.")
    else:
        chart = (
            alt.Chart(deltas.assign(label=deltas["adapter"] + " · " + deltas["metric"]))
            .mark_point(filled=True, size=80)
            .encode(
                y=alt.Y("label:N", title=None),
                x=alt.X("delta:Q", title="adapter - base"),
                color=alt.Color("significant:N", scale=alt.Scale(domain=[True, False], range=["#d62728", "#7f7f7f"])),
                tooltip=["task", "base", "adapter", "metric", "delta", "delta_low", "delta_high", "p_value"],
            )
        )
        rules = (
            alt.Chart(deltas.assign(label=deltas["adapter"] + " · " + deltas["metric"]))
            .mark_rule()
            .encode(y="label:N", x="delta_low:Q", x2="delta_high:Q")
        )
        st.altair_chart((rules + chart).properties(height=max(120, 28 * len(deltas))), width="stretch")

    st.subheader("Samples: base and adapter side by side")
    pairs = view[view["adapter"] != ""][["task", "base", "adapter", "key"]].drop_duplicates()
    if pairs.empty:
        st.info("No adapter cells to drill into.")
        return
    choice = st.selectbox("Cell", [f"{r.task} · {r.base} + {r.adapter} · {r.key}" for r in pairs.itertuples()])
    chosen = pairs.iloc[[f"{r.task} · {r.base} + {r.adapter} · {r.key}" for r in pairs.itertuples()].index(choice)]
    base_id = index.get((chosen["task"], chosen["base"], "", chosen["key"]))
    adapter_id = index[(chosen["task"], chosen["base"], chosen["adapter"], chosen["key"])]
    store = ResultStore(path)
    adapter_samples = {s.doc_id: s for s in store.samples(adapter_id)}
    base_samples = {s.doc_id: s for s in store.samples(base_id)} if base_id else {}
    names = sorted({m for s in adapter_samples.values() for m in s.scores})
    metric = st.selectbox("Per-sample metric", names) if names else None
    records = []
    for doc_id, a in sorted(adapter_samples.items()):
        b = base_samples.get(doc_id)
        records.append(
            {
                "doc": a.doc_key,
                "prompt": (a.prompt or "")[-400:],
                "reference": a.reference,
                "base answer": b.response if b else "",
                "adapter answer": a.response,
                f"base {metric}": b.scores.get(metric) if b and metric else None,
                f"adapter {metric}": a.scores.get(metric) if metric else None,
            }
        )
    st.dataframe(pd.DataFrame(records), hide_index=True, width="stretch")


main()
