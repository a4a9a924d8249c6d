"""The leaderboard page: the verdict grid, forest plots and table, on a results store with a known
outcome (tests/known_store.py) and on a real evaluation matrix; Streamlit's AppTest in process, then
the real server in Debian's headless Chromium, with screenshots for a person to look at."""

from __future__ import annotations

import time
from pathlib import Path

import known_store
import pytest
from browser import browser, colours, screenshot, streamlit_server, text_of, wait_for

APP = Path(__file__).resolve().parent.parent / "leaderboard" / "app.py"
BASE = known_store.BASE


@pytest.fixture(scope="module")
def known_db(tmp_path_factory) -> Path:
    return known_store.build(tmp_path_factory.mktemp("known") / "results.sqlite")


def _grid(db: Path):
    from harness.results import compare, verdict
    from harness.results.store import ResultStore

    store = ResultStore(db)
    cells = store.cells()
    return verdict.grids(cells, compare.rows(cells, lambda c: store.samples(c.cell_id)))


def test_verdict_grid_reads_the_primary_metric_and_marks_each_system(known_db):
    [grid] = _grid(known_db)
    assert grid.base == BASE
    assert grid.systems == ["base", "code", "merged", "summarization"]  # base suffix dropped from adapter names
    assert grid.full_names["summarization"] == f"{BASE} + summarization-{BASE}"  # the full name, for hover
    arxiv, humaneval = grid.lines
    assert (arxiv.task, arxiv.primary, humaneval.primary) == ("arxiv_sum", "rougeL", "pass@1")  # from the registry
    assert arxiv.data == known_store.DATA_LABEL
    assert {name: e.metric for name, e in arxiv.entries.items()} == dict.fromkeys(grid.systems, "rougeL")
    assert {name: e.mark for name, e in arxiv.entries.items()} == {"base": "base", **known_store.EXPECTED}
    assert {name: e.mark for name, e in humaneval.entries.items()} == {
        "base": "base",
        "code": "n.s.",
        "merged": "n.s.",
        "summarization": "n.s.",
    }


def test_verdict_grid_without_the_registry_reads_what_the_cell_recorded(known_db, monkeypatch):
    """A store outlives its declarations: the primary metric comes from cell.provenance["benchmark"]."""
    from harness import benchmarks

    monkeypatch.setattr(benchmarks, "for_task", lambda task: None)
    [grid] = _grid(known_db)
    assert [(line.primary, line.title) for line in grid.lines] == [("rougeL", "arxiv_sum"), ("pass@1", "humaneval")]


def test_page_in_process_on_the_known_outcome(known_db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LORABENCH_RESULTS_DB", str(known_db))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, at.exception
    assert [h.value for h in at.main.header] == ["Forest plots", "Every metric"]
    assert [s.value for s in at.subheader] == [f"Base: {BASE}"]
    text = "\n".join(m.value for m in at.markdown)
    for word in ("▲ better", "▼ worse", "○ no significant difference", "■ base"):
        assert word in text
    # A metric at zero for every system says so instead of an empty plot.
    assert [i.value for i in at.info] == ["**pass@1**: 0 for every system, 0 of 16 solved (nothing to plot)."]
    table = at.dataframe[0].value
    assert list(table.columns) == ["task", "system", "metric", "value", "95% CI", "Δ vs base", "Δ 95% CI", "verdict", "p", "n"]
    better = table[(table["system"] == "summarization") & (table["metric"] == "rougeL")].iloc[0]
    assert (better["p"], better["verdict"], better["n"]) == ("<0.001", "▲ better", 16)
    assert set(table[table["system"] == "base"]["p"]) == {""}
    # Filters narrow the page.
    at.sidebar.multiselect(key="tasks").set_value(["humaneval_greedy"]).run()
    assert set(at.dataframe[0].value["task"]) == {"humaneval_greedy"}


def test_page_in_process_on_a_real_matrix(results_db, monkeypatch):
    """Cells the real eval matrix wrote (embedded model, a random LoRA, three tasks, two documents)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LORABENCH_RESULTS_DB", str(results_db))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert set(table["task"]) == {"arxiv_sum", "humaneval_greedy", "code_instruct"}
    assert "base" in set(table["system"]) and any(s.startswith("random-lora@") for s in table["system"])
    assert any("⚠ offline proxy" in c.value for c in at.caption)  # the data source, once per benchmark


# -- a real browser --------------------------------------------------------------------------------


def _cell_css(task: str, key: str, system: str) -> str:
    """The CSS class of a grid cell's container (the page's key_of: letters, digits, - and _)."""
    return f".st-key-cell-{BASE}-{task}-{key}-{system}"


def _scroll_overflow(driver) -> list[int]:
    """How far each data frame's grid scrolls sideways (0 = every column visible)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=stDataFrame] .dvn-scroller')].map(e => e.scrollWidth - e.clientWidth)"
    )


def test_page_in_a_real_browser_on_the_known_outcome(known_db, tmp_path):
    from selenium.webdriver.common.by import By

    with streamlit_server(APP, {"LORABENCH_RESULTS_DB": str(known_db)}) as url, browser((1400, 1000)) as driver:
        driver.get(url)
        wait_for(driver, "[data-testid='stDataFrame']")
        wait_for(driver, "[data-testid='stVegaLiteChart'] svg.marks", 3)

        # 1. The verdict grid: each cell carries the mark the statistics gave, in words and shapes.
        marks = {
            system: text_of(driver, _cell_css("arxiv_sum", "a" * 8, system)).splitlines()[0]
            for system in ("base", "summarization", "code", "merged")
        }
        assert marks == {"base": "■ base", "summarization": "▲ better", "code": "▼ worse", "merged": "○ no significant difference"}
        better = text_of(driver, _cell_css("arxiv_sum", "a" * 8, "summarization"))
        assert "Δ +0.089 [+0.085, +0.094]" in better and "p <0.001" in better
        header = driver.find_element(By.CSS_SELECTOR, "b[title]")  # full names on hover
        assert header.get_attribute("title") == f"{BASE} (base)"
        assert driver.execute_script("return document.body.innerText").count(known_store.DATA_LABEL) == 1  # data said once
        first = screenshot(driver, "leaderboard_verdict", tmp_path)

        # 2. One forest plot per benchmark and metric: a row per system, labelled in full.
        for metric in known_store.ARXIV_METRICS:
            chart = wait_for(driver, f".st-key-forest-{BASE}-arxiv_sum-{'a' * 8}-{metric} svg.marks")[0]
            y_axis = "g[aria-label^='Y-axis'] g.role-axis-label text"  # textContent: charts below the fold have no .text
            labels = [t.get_attribute("textContent") for t in chart.find_elements(By.CSS_SELECTOR, y_axis)]
            assert labels == ["base", "code", "merged", "summarization"], labels
            points = chart.find_elements(By.CSS_SELECTOR, "g.mark-symbol path")
            assert len(points) == 4, f"{metric}: {len(points)} points"
        assert "0 of 16 solved" in text_of(driver, f".st-key-forest-{BASE}-humaneval_greedy-{'b' * 8}-pass_1")
        forest = driver.find_element(By.CSS_SELECTOR, f".st-key-forest-{BASE}-arxiv_sum-{'a' * 8}-rougeL")
        driver.execute_script("arguments[0].scrollIntoView({behavior: 'instant'})", forest)
        time.sleep(1)
        screenshot(driver, "leaderboard_forest", tmp_path)

        # 3. The table: value, CI, delta, its CI, p and n without scrolling sideways at 1400 px.
        table = driver.find_element(By.CSS_SELECTOR, "[data-testid='stDataFrame']")
        driver.execute_script("arguments[0].scrollIntoView({behavior: 'instant'})", table)
        time.sleep(1)
        assert _scroll_overflow(driver) == [0]
        screenshot(driver, "leaderboard_table", tmp_path)

        # 4. A cell opens its details: every metric, and the same documents side by side.
        button = driver.find_element(By.CSS_SELECTOR, f"{_cell_css('arxiv_sum', 'a' * 8, 'summarization')} button")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        dialog = wait_for(driver, "[role='dialog']")[0]
        deadline = time.time() + 60
        while "The adapter summary of article 0." not in dialog.text and time.time() < deadline:
            time.sleep(0.5)
        text = dialog.text
        assert f"{BASE} + summarization-{BASE}" in text
        for metric in known_store.ARXIV_METRICS:
            assert metric in text
        assert "The base summary of article 0." in text and "The adapter summary of article 0." in text
        assert "The reference abstract of article 0." in text
        screenshot(driver, "leaderboard_details", tmp_path)
    assert colours(first) > 50  # a rendered page, not a blank or error page


def test_page_in_a_real_browser_on_a_real_matrix(results_db, tmp_path):
    with streamlit_server(APP, {"LORABENCH_RESULTS_DB": str(results_db)}) as url, browser((1400, 1000)) as driver:
        driver.get(url)
        wait_for(driver, "[data-testid='stDataFrame']")
        text = driver.execute_script("return document.body.innerText")
        assert "lorabench leaderboard" in text and "Forest plots" in text and "humaneval_greedy" in text
        assert "Traceback" not in text
        png = screenshot(driver, "leaderboard_matrix", tmp_path)
    assert colours(png) > 50
