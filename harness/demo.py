"""`lorabench demo`: the whole product on the embedded model, offline, top to bottom.

  1. prepare the embedded base (SmolLM2-135M-Instruct, converted from the shipped GGUF);
  2. prepare every benchmark's data (offline proxy corpora unless --source hub; HumanEval ships);
  3. train each benchmark's adapter (summarization, code) with the embedded Axolotl recipes;
  4. evaluate the base and base + each adapter on each benchmark's demo task, on a small slice;
  5. decide the winners (`lorabench winners`: the serving manifest), merge the adapters into one
     (`lorabench merge`, TIES) and evaluate the combined systems on the same documents: the merged
     adapter, and the routed system (the centroid router picks an adapter per document);
  6. index the held-out papers (`lorabench index`, with retrieval quality cells) and evaluate the
     tasks that compare with a demo task (arxiv_sum_rag: retrieval-selected context against head
     truncation) on the base and that benchmark's own adapter;
  7. print the leaderboard and say how to open the page and the chat UI.
The benchmarks, their demo tasks and adapters come from the registry (`harness.benchmarks`).
Every stage reuses what an earlier run finished (models, data, adapters, result cells), so a rerun
after an interruption continues where it stopped. The demo lives in $LORABENCH_HOME/demo (its own
data, adapters and results, sharing the prepared models), so it never touches real data sets.
Stage wall times go to $LORABENCH_HOME/demo/results/demo_stages.json.
"""

from __future__ import annotations

import dataclasses
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
    # Rows in flight per decode worker. A system's demo run is 3 tasks x 16 documents (13 on the arXiv
    # proxy) dealt to two workers on a 2-core CPU: at 24 each worker holds its whole share at once.
    # The base's run took 44.8 and 37.3 s at 24 against 52.3 and 45.2 s at 16, alternating, on the
    # one-line arXiv proxy of that time (`lorabench eval --bases smollm2-135m-instruct --tasks
    # arxiv_sum,code_instruct,humaneval_greedy --limit 16 --gen-kwargs max_gen_toks=128 --batch-size N`
    # in a demo home, the cell's wall_s); answers are the same at any width.
    batch_size: int = 24
    merge_method: str = "ties"
    routers: tuple[str, ...] = ("centroid",)

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
    return [
        "prepare model",
        "prepare data",
        *(f"train {t}" for t in benchmarks.adapter_tasks()),
        "evaluate",
        "winners",
        "merge",
        "evaluate combined",
        "index",
        "evaluate retrieval",
        "leaderboard",
    ]


def run_demo(settings: DemoSettings) -> Path:
    from harness.data.pipeline import prepare_dataset
    from harness.matrix.run import EvalSettings, run_matrix
    from harness.models import registry
    from harness.results import board, table, winners
    from harness.serving import manifest as serving_manifest
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
        evaluation = EvalSettings(
            tasks=benchmarks.demo_tasks(), limit=settings.limit, gen_kwargs=settings.gen_kwargs, batch_size=settings.batch_size
        )
        with stages.stage("evaluate"):
            store = run_matrix([registry.EMBEDDED], adapters, evaluation)
        with stages.stage("winners"):
            manifest_path = serving_manifest.write(
                serving_manifest.build(registry.EMBEDDED, winners.decide(store, registry.EMBEDDED)[registry.EMBEDDED], store.path)
            )
            log.info("serving manifest: %s", manifest_path)
        with stages.stage("merge"):
            merged = _merged(adapters, settings.merge_method)
        with stages.stage("evaluate combined"):
            store = run_matrix([registry.EMBEDDED], [str(merged)], dataclasses.replace(evaluation, routers=list(settings.routers)))
        with stages.stage("index"):
            from harness.commands.index import evaluate as evaluate_index
            from harness.retrieval import index, quality

            for bench in benchmarks.all_benchmarks():
                if any(t.compare_with for t in bench.tasks.values()):
                    index.build(bench.data.name, "test")
                    if quality.stored(store, index.read(bench.data.name, "test")):
                        log.info("reusing the retrieval quality cells of the %s index", bench.data.name)
                    else:
                        evaluate_index(bench.data.name, "test", store.path)
        with stages.stage("evaluate retrieval"):
            for task, adapter_task in benchmarks.demo_versus_tasks().items():
                own = [a for a in adapters if Path(a).name == f"{adapter_task}-{registry.EMBEDDED}"]
                store = run_matrix([registry.EMBEDDED], own, dataclasses.replace(evaluation, tasks=[task]))
        with stages.stage("leaderboard"):
            cells = store.cells()
            rows = board.rows(cells, lambda c: store.samples(c.cell_id))
            table.write(home / "results" / "leaderboard.md", table.markdown(rows))
            table.write(home / "results" / "leaderboard.csv", table.to_csv(rows))
        print(table.terminal(rows))
        print(_next_steps(home, store.path))
        log.debug("demo stage times: %s", json.dumps(stages.times))
        return store.path


def _merged(adapters: list[str], method: str) -> Path:
    """The demo's adapters merged into one (reused when a finished merge of the same sources is there)."""
    from harness import adapters as adapter_dirs
    from harness import provenance
    from harness.adapters_merge import merge_adapters
    from harness.models import registry

    out = paths.adapters_dir() / f"merged-{registry.EMBEDDED}"
    done = adapter_dirs.merge_record(out) if (out / adapter_dirs.MERGE_FILE).is_file() else None
    if (
        done
        and done.get("method") == method
        and [s.get("sha256") for s in done.get("sources") or []] == [provenance.tree_sha256(Path(a))[0] for a in adapters]
    ):
        log.info("reusing the merged adapter at %s", out)
        return out
    return merge_adapters(adapters, method, out=out, force=out.exists())


def _next_steps(home: Path, db: Path) -> str:
    return (
        f"Results: {db} (also {home / 'results' / 'leaderboard.md'} and .csv)\n"
        f"Open the leaderboard page:  uv run lorabench leaderboard --page --db {db}\n"
        f"Chat with base and adapters: LORABENCH_HOME={home} uv run lorabench serve"
    )
