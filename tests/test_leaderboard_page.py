"""The leaderboard page on a real results database: Streamlit's AppTest, then a real Chromium."""

from __future__ import annotations

from pathlib import Path

from browser import browser, colours, streamlit_server, wait_for

APP = Path(__file__).resolve().parent.parent / "leaderboard" / "app.py"


def test_page_shows_table_charts_deltas_and_samples(results_db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LORABENCH_RESULTS_DB", str(results_db))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["Table", "Per task", "Delta vs base", "Samples: base and adapter side by side"]
    table = at.dataframe[0].value
    assert set(table["task"]) == {"arxiv_sum", "humaneval_greedy", "code_instruct"}
    assert "(base)" in set(table["adapter"]) and any(a.startswith("random-lora@") for a in table["adapter"])
    assert any("Proxy data" in w.value for w in at.warning)
    # Drill-down: the same documents answered by base and adapter, with per-sample scores.
    samples = at.dataframe[1].value
    assert {"base answer", "adapter answer", "prompt"} <= set(samples.columns) and len(samples) == 2
    # Filters narrow the table.
    at.sidebar.multiselect[0].set_value(["humaneval_greedy"]).run()
    assert set(at.dataframe[0].value["task"]) == {"humaneval_greedy"}


def test_page_in_a_real_browser(results_db, tmp_path):
    with streamlit_server(APP, {"LORABENCH_RESULTS_DB": str(results_db)}) as url, browser() as driver:
        driver.get(url)
        wait_for(driver, "[data-testid='stDataFrame']", 2)
        wait_for(driver, "[data-testid='stVegaLiteChart']", 4)
        text = driver.execute_script("return document.body.innerText")
        assert "lorabench leaderboard" in text and "Delta vs base" in text and "humaneval_greedy" in text
        png = tmp_path / "leaderboard.png"
        driver.save_screenshot(str(png))
    assert colours(png) > 200  # a rendered page with charts, not a blank or error page
