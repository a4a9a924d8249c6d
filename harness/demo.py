"""`lorabench demo`: the whole product on the embedded model, offline, top to bottom.

  1. prepare the embedded base (SmolLM2-135M-Instruct, converted from the shipped GGUF);
  2. prepare every benchmark's data (offline proxy corpora unless --source hub; HumanEval ships);
  3. train each benchmark's adapter (summarization, code) with the embedded Axolotl recipes;
  4. evaluate the base and base + each adapter on each benchmark's demo task, on a small slice;
  5. print the leaderboard and say how to open the page and the chat UI.
The benchmarks, their demo tasks and adapters come from the registry (`harness.benchmarks`).
Every stage reuses what an earlier run finished (models, data, adapters, result cells), so a rerun
after an interruption continues where it stopped. The demo lives in $LORABENCH_HOME/demo (its own
data, adapters and results, sharing the prepared models), so it never touches real data sets.
Stage wall times go to $LORABENCH_HOME/demo/results/demo_stages.json.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import benchmarks, paths
from harness.atomic import write_json

log = logging.getLogger(__name__)


@dataclass
class DemoSettings:
    source: str = "offline"
    limit: int = 16  # documents per task
    max_steps: int | None = None  # None: the embedded recipes' own
    max_gen_toks: int = 128
    batch_size: int = 16

    @property
    def gen_kwargs(self) -> dict:
        return {"max_gen_toks": self.max_gen_toks}


def demo_home() -> Path:
    return paths.home() / "demo"


@contextmanager
def _in_demo_home():
    """Point $LORABENCH_HOME at the demo's own tree (models shared with the real one)."""
    real = paths.home()
    home = demo_home()
    (real / "models").mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    link = home / "models"
    if link.is_symlink() and not link.exists():
        link.unlink()  # an absolute link of an older version, left dangling by a moved home
    if not link.exists():
        # Relative, so the whole $LORABENCH_HOME can move and the demo still finds its models.
        link.symlink_to(Path("..") / "models", target_is_directory=True)
    old = os.environ.get("LORABENCH_HOME")
    os.environ["LORABENCH_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("LORABENCH_HOME", None)
        else:
            os.environ["LORABENCH_HOME"] = old


class _Stages:
    def __init__(self, path: Path, names: list[str]):
        self.path = path
        self.names = names
        self.times: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        k = self.names.index(name) + 1
        log.info("[%d/%d] %s", k, len(self.names), name)
        started = time.time()
        yield
        self.times[name] = round(time.time() - started, 1)
        write_json(self.path, {"stages_s": self.times, "total_s": round(sum(self.times.values()), 1)})


def stage_names() -> list[str]:
    return ["prepare model", "prepare data", *(f"train {t}" for t in benchmarks.adapter_tasks()), "evaluate", "leaderboard"]


def run_demo(settings: DemoSettings) -> Path:
    from harness.data.pipeline import prepare_dataset
    from harness.matrix.run import EvalSettings, run_matrix
    from harness.models import registry
    from harness.results import compare, table
    from harness.train import job, recipes, record

    with _in_demo_home() as home:
        stages = _Stages(home / "results" / "demo_stages.json", stage_names())
        with stages.stage("prepare model"):
            registry.prepare(registry.EMBEDDED)
        with stages.stage("prepare data"):
            for bench in benchmarks.all_benchmarks():
                kwargs: dict = {}
                if bench.adapter and bench.data.max_input_tokens is not None:
                    # Inputs are cut to what the embedded recipe's window holds.
                    kwargs["max_input_tokens"] = recipes.input_budget(recipes.find(bench.adapter, registry.EMBEDDED))
                if bench.data.splits != "package":
                    kwargs.update(source=settings.source, tokenizer=registry.EMBEDDED)
                prepare_dataset(bench.data.name, **kwargs)
        adapters = []
        for task in benchmarks.adapter_tasks():
            target = paths.adapters_dir() / f"{task}-{registry.EMBEDDED}"
            with stages.stage(f"train {task}"):
                if (target / record.RECORD_FILE).is_file():
                    log.info("reusing the trained %s adapter at %s", task, target)
                else:
                    # no_eval: the demo measures the adapters with lm-eval below, not with eval loss.
                    job.train(
                        task, registry.EMBEDDED, max_steps=settings.max_steps, source=settings.source, force=target.exists(), no_eval=True
                    )
            adapters.append(str(target))
        with stages.stage("evaluate"):
            store = run_matrix(
                [registry.EMBEDDED],
                adapters,
                EvalSettings(
                    tasks=benchmarks.demo_tasks(), limit=settings.limit, gen_kwargs=settings.gen_kwargs, batch_size=settings.batch_size
                ),
            )
        with stages.stage("leaderboard"):
            cells = store.cells()
            rows = compare.rows(cells, lambda c: store.samples(c.cell_id)) + compare.versus_rows(cells, lambda c: store.samples(c.cell_id))
            table.write(home / "results" / "leaderboard.md", table.markdown(rows))
            table.write(home / "results" / "leaderboard.csv", table.to_csv(rows))
        print(table.terminal(rows))
        print(_next_steps(home, store.path))
        log.debug("demo stage times: %s", json.dumps(stages.times))
        return store.path


def _next_steps(home: Path, db: Path) -> str:
    return (
        f"Results: {db} (also {home / 'results' / 'leaderboard.md'} and .csv)\n"
        f"Open the leaderboard page:  uv run lorabench leaderboard --page --db {db}\n"
        f"Chat with base and adapters: LORABENCH_HOME={home} uv run lorabench serve\n"
        "Data labelled 'offline proxy' stands in for arXiv/OpenCodeInstruct: it is not a benchmark number."
    )
