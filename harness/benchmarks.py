"""The benchmark registry: one declaration per benchmark, and nothing else keeps a list of them.

A benchmark is declared once, in `lm_eval_tasks/<name>.benchmark.yml` beside the lm-eval task
YAMLs it owns (lm-eval reads only `*.yaml`, so it never mistakes a declaration for a task):

  benchmark       its name
  tasks           the lm-eval tasks it owns, each with its version (and, optionally, the subset
                  of the metrics it reports)
  demo_task       the task `lorabench demo` evaluates
  adapter         the adapter task it trains (`lorabench train ADAPTER`), or null
  route_as        a benchmark with no adapter: the benchmark whose adapter answers its prompts
                  when a request is routed (`harness.routing`; e.g. humaneval: code_instruct)
  prompt          the user turn, a template over `{input}`
  metrics         name -> kind (mean | corpus | label), statistic (corpus metrics: bleu |
                  codebleu), higher_is_better (default true), scale, description
  primary_metric  the metric a verdict is read from
  filter          the lm-eval filter its metrics are reported under (default none)
  data            name (`lorabench prepare-data NAME`), shape (text | code | humaneval), hub id
                  and config, fields, splits rule (own | hash | package), sizes, token budget,
                  quality filter, local-copy formats, and the offline proxy (builder + label)

Data preparation, recipes, the eval matrix, the statistics, serving, the demo and the leaderboard
read these objects. More declarations (with their task YAMLs) are found in the folders named by
`$LORABENCH_INCLUDE_PATH` (os.pathsep-separated; `--include-path` sets it), so a new benchmark is
a registry entry, a task YAML and its data, and no change to the package. tests/test_benchmarks.py
fails when a task YAML disagrees with its declaration.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from harness.errors import LorabenchError

TASKS_DIR = Path(__file__).resolve().parent.parent / "lm_eval_tasks"
DECLARATION_SUFFIX = ".benchmark.yml"
INCLUDE_ENV = "LORABENCH_INCLUDE_PATH"
KINDS = ("mean", "corpus", "label")
STATISTICS = ("bleu", "codebleu")
SHAPES = ("text", "code", "humaneval")
SPLIT_RULES = ("own", "hash", "package")

_KEYS = {"benchmark", "title", "adapter", "tasks", "demo_task", "prompt", "primary_metric", "metrics", "data", "filter", "route_as"}
_METRIC_KEYS = {"kind", "statistic", "higher_is_better", "scale", "description"}
_DATA_KEYS = {
    "name",
    "shape",
    "hub",
    "fields",
    "splits",
    "hub_sizes",
    "max_input_tokens",
    "min_test_score",
    "local",
    "proxy",
    "package",
    "decontaminate_against",
}
_FIELD_KEYS = {"input", "target", "extra", "unit_tests", "test_imports"}


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # mean: per-document scores, averaged | corpus: pooled statistic | label: a setting, not a score
    higher_is_better: bool = True
    statistic: str | None = None  # corpus metrics: which sufficient statistics (bleu, codebleu)
    scale: str = ""
    description: str = ""


@dataclass(frozen=True)
class Task:
    name: str
    version: float
    metrics: tuple[str, ...]
    # Another task of the benchmark on the same documents (e.g. retrieval-selected context against
    # head truncation): the leaderboard pairs each system's cells of the two, document by document.
    compare_with: str | None = None


@dataclass(frozen=True)
class Data:
    name: str  # `lorabench prepare-data NAME`, `$LORABENCH_HOME/data/NAME`
    shape: str  # text | code | humaneval: which fields an eval row carries
    splits: str  # own | hash | package
    hub_id: str | None = None
    hub_config: str | None = None
    input_field: str = "input"
    target_field: str = "target"
    extra_fields: tuple[str, ...] = ()
    unit_tests_field: str = "unit_tests"  # shape code: the row's asserts (a list, or JSON of one)
    test_imports_field: str = "test_imports"
    hub_sizes: tuple[int, int, int] | None = None
    max_input_tokens: int | None = None
    min_test_score: float | None = None
    local_formats: tuple[str, ...] = ()
    proxy_builder: str | None = None  # "module:function" returning rows with the hub's field names
    proxy_label: str | None = None
    package_label: str | None = None
    # Other benchmarks whose evaluation documents training rows must not share a 13-gram with
    # (the data set's own validation and test splits are always checked).
    decontaminate_against: tuple[str, ...] = ()

    def proxy_rows(self) -> list[dict]:
        if not self.proxy_builder:
            raise LorabenchError(f"{self.name} has no offline proxy: pass --from PATH (a local copy) or use --source hub")
        return list(resolve(self.proxy_builder)())


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    adapter: str | None
    tasks: dict[str, Task]
    demo_task: str
    prompt: str
    primary_metric: str
    metrics: dict[str, Metric]
    data: Data
    filter: str = "none"
    route_as: str | None = None  # no adapter of its own: whose adapter answers its prompts when routed
    path: Path | None = field(default=None, compare=False)

    def format_prompt(self, text: str) -> str:
        return self.prompt.format(input=text)

    def metrics_of(self, task: str) -> dict[str, Metric]:
        return {m: self.metrics[m] for m in self.tasks[task].metrics}

    def record(self, task: str) -> dict:
        """What a result cell keeps of its benchmark, so a store can be read without this registry."""
        return {
            "benchmark": self.name,
            "primary_metric": self.primary_metric,
            "metrics": {name: asdict(m) for name, m in self.metrics_of(task).items()},
        }


def include_paths() -> list[Path]:
    """The shipped task folder, then every folder in $LORABENCH_INCLUDE_PATH."""
    extra = [Path(p).expanduser() for p in os.environ.get(INCLUDE_ENV, "").split(os.pathsep) if p.strip()]
    return [TASKS_DIR, *[p for p in extra if p.resolve() != TASKS_DIR.resolve()]]


def add_include_path(path: Path) -> None:
    """Make the declarations and tasks in `path` known here and to child processes."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise LorabenchError(f"--include-path {path} is not a folder: give the folder that holds the task YAMLs and *.benchmark.yml")
    current = [p for p in os.environ.get(INCLUDE_ENV, "").split(os.pathsep) if p.strip()]
    if str(path) not in current:
        os.environ[INCLUDE_ENV] = os.pathsep.join([*current, str(path)])


def registry() -> dict[str, Benchmark]:
    return _load(tuple(str(p) for p in include_paths()))


@functools.cache
def _load(folders: tuple[str, ...]) -> dict[str, Benchmark]:
    found: dict[str, Benchmark] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob(f"*{DECLARATION_SUFFIX}")):
            bench = _parse(path)
            if bench.name in found:
                raise LorabenchError(f"benchmark {bench.name!r} is declared twice ({found[bench.name].path} and {path}): rename one")
            found[bench.name] = bench
    tasks = [t for b in found.values() for t in b.tasks]
    twice = sorted({t for t in tasks if tasks.count(t) > 1})
    if twice:
        raise LorabenchError(f"task(s) {', '.join(twice)} are owned by two benchmarks: a task belongs to one declaration")
    return found


def _parse(path: Path) -> Benchmark:
    where = f"{path.name}"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LorabenchError(f"{path} is not valid YAML ({str(exc).splitlines()[0]}): fix the declaration") from None
    if not isinstance(raw, dict):
        raise LorabenchError(f"{path} must be a mapping of benchmark fields ({', '.join(sorted(_KEYS))})")
    _known(raw, _KEYS, where)
    try:
        name = str(raw["benchmark"])
        metrics = {}
        for m_name, spec in (raw["metrics"] or {}).items():
            spec = spec or {}
            _known(spec, _METRIC_KEYS, f"{where} metric {m_name}")
            metric = Metric(str(m_name), **spec)
            if metric.kind not in KINDS:
                raise LorabenchError(f"{where}: metric {m_name} has kind {metric.kind!r}: choose {', '.join(KINDS)}")
            if (metric.kind == "corpus") != (metric.statistic is not None) or (metric.statistic and metric.statistic not in STATISTICS):
                raise LorabenchError(
                    f"{where}: metric {m_name}: a corpus metric names its statistic ({', '.join(STATISTICS)}); others name none"
                )
            metrics[metric.name] = metric
        tasks = {}
        for t_name, spec in (raw["tasks"] or {}).items():
            spec = spec or {}
            _known(spec, {"version", "metrics", "compare_with"}, f"{where} task {t_name}")
            subset = tuple(spec.get("metrics") or metrics)
            unknown = [m for m in subset if m not in metrics]
            if unknown:
                raise LorabenchError(f"{where}: task {t_name} lists metric(s) {', '.join(unknown)} that the benchmark does not declare")
            tasks[str(t_name)] = Task(str(t_name), float(spec["version"]), subset, spec.get("compare_with"))
        data = _parse_data(raw["data"] or {}, where)
        bench = Benchmark(
            name=name,
            title=str(raw.get("title") or name),
            adapter=raw.get("adapter"),
            tasks=tasks,
            demo_task=str(raw.get("demo_task") or next(iter(tasks))),
            prompt=str(raw["prompt"]),
            primary_metric=str(raw["primary_metric"]),
            metrics=metrics,
            data=data,
            filter=str(raw.get("filter") or "none"),
            route_as=raw.get("route_as"),
            path=path,
        )
    except KeyError as exc:
        raise LorabenchError(
            f"{path} lacks {exc.args[0]!r}: every benchmark declares {', '.join(sorted(_KEYS - {'title', 'filter', 'demo_task', 'route_as'}))}"
        ) from None
    except TypeError as exc:
        raise LorabenchError(f"{path}: {exc}: see lm_eval_tasks/arxiv_sum.benchmark.yml for the fields") from None
    if bench.primary_metric not in bench.metrics or bench.metrics[bench.primary_metric].kind == "label":
        raise LorabenchError(f"{where}: primary_metric {bench.primary_metric!r} must be one of its scored metrics")
    for task in bench.tasks.values():
        if task.compare_with is not None and task.compare_with not in bench.tasks:
            raise LorabenchError(f"{where}: task {task.name} compares with {task.compare_with!r}, which is not one of its tasks")
    if bench.demo_task not in bench.tasks:
        raise LorabenchError(f"{where}: demo_task {bench.demo_task!r} is not one of its tasks ({', '.join(bench.tasks)})")
    if bench.route_as is not None and bench.adapter:
        raise LorabenchError(f"{where}: route_as is for a benchmark with no adapter of its own; {bench.name} trains {bench.adapter}")
    if "{input}" not in bench.prompt:
        raise LorabenchError(f"{where}: prompt must contain {{input}}, where the row's input goes")
    return bench


def _parse_data(raw: dict, where: str) -> Data:
    _known(raw, _DATA_KEYS, f"{where} data")
    hub = raw.get("hub") or {}
    fields = raw.get("fields") or {}
    _known(fields, _FIELD_KEYS, f"{where} data fields")
    proxy = raw.get("proxy") or {}
    sizes = raw.get("hub_sizes")
    data = Data(
        name=str(raw["name"]),
        shape=str(raw.get("shape") or "text"),
        splits=str(raw.get("splits") or "hash"),
        hub_id=hub.get("id"),
        hub_config=hub.get("config"),
        input_field=fields.get("input", "input"),
        target_field=fields.get("target", "target"),
        extra_fields=tuple(fields.get("extra") or ()),
        unit_tests_field=fields.get("unit_tests", "unit_tests"),
        test_imports_field=fields.get("test_imports", "test_imports"),
        hub_sizes=tuple(int(s) for s in sizes) if sizes else None,  # type: ignore[arg-type]
        max_input_tokens=raw.get("max_input_tokens"),
        min_test_score=raw.get("min_test_score"),
        local_formats=tuple(raw.get("local") or ()),
        proxy_builder=proxy.get("builder"),
        proxy_label=proxy.get("label"),
        package_label=(raw.get("package") or {}).get("label"),
        decontaminate_against=tuple(str(b) for b in raw.get("decontaminate_against") or ()),
    )
    if data.shape not in SHAPES:
        raise LorabenchError(f"{where}: data shape {data.shape!r}: choose {', '.join(SHAPES)}")
    if data.splits not in SPLIT_RULES:
        raise LorabenchError(f"{where}: data splits {data.splits!r}: choose {', '.join(SPLIT_RULES)}")
    return data


def _known(mapping: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise LorabenchError(f"{where}: unknown field(s) {', '.join(unknown)}: allowed are {', '.join(sorted(allowed))}")


# --- look-ups ------------------------------------------------------------------------------------


def all_benchmarks() -> list[Benchmark]:
    return list(registry().values())


def get(name: str) -> Benchmark:
    try:
        return registry()[name]
    except KeyError:
        raise LorabenchError(
            f"unknown benchmark {name!r}: choose {', '.join(registry())} or declare it in a *{DECLARATION_SUFFIX}"
        ) from None


def for_task(task: str) -> Benchmark | None:
    """The benchmark that owns lm-eval task `task` (None for a task no declaration owns)."""
    return next((b for b in registry().values() if task in b.tasks), None)


def for_data(name: str) -> Benchmark:
    """The benchmark whose data set is `lorabench prepare-data NAME`."""
    found = next((b for b in registry().values() if b.data.name == name), None)
    if found is None:
        raise LorabenchError(f"unknown data set {name!r}: choose {', '.join(data_names())}")
    return found


def for_adapter(adapter_task: str) -> Benchmark:
    found = next((b for b in registry().values() if b.adapter == adapter_task), None)
    if found is None:
        raise LorabenchError(f"unknown task {adapter_task!r}: choose {' or '.join(adapter_tasks())}")
    return found


def task_names() -> list[str]:
    return [t for b in registry().values() for t in b.tasks]


def data_names() -> list[str]:
    return [b.data.name for b in registry().values()]


def adapter_tasks() -> list[str]:
    """The adapters lorabench trains (`lorabench train TASK`), in declaration order."""
    return [b.adapter for b in registry().values() if b.adapter]


def main_tasks() -> list[str]:
    """Each benchmark's first task: what `lorabench eval` runs by default."""
    return [next(iter(b.tasks)) for b in registry().values()]


def demo_tasks() -> list[str]:
    return [b.demo_task for b in registry().values()]


def demo_versus_tasks() -> dict[str, str]:
    """task -> its benchmark's adapter task, for each task declared `compare_with` a demo task (e.g.
    arxiv_sum_rag): the demo evaluates it on the base and that benchmark's own adapter."""
    return {
        t.name: b.adapter
        for b in registry().values()
        for t in b.tasks.values()
        if t.compare_with and t.compare_with == b.demo_task and b.adapter
    }


def metric(task: str, name: str, recorded: dict | None = None) -> Metric | None:
    """The declaration of `task`'s metric `name`: from the registry, else from what a result cell
    recorded of its benchmark (`Benchmark.record`), so stores outlive a folder on the path."""
    bench = for_task(task)
    if bench is not None and name in bench.tasks[task].metrics:
        return bench.metrics[name]
    spec = ((recorded or {}).get("metrics") or {}).get(name)
    return Metric(**spec) if spec else None


def result_filter(task: str) -> str:
    bench = for_task(task)
    return bench.filter if bench else "none"


def resolve(reference: str) -> Callable:
    """A "module:function" reference of a declaration."""
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


# --- agreement with the lm-eval task YAMLs -----------------------------------------------------


def disagreements(folder: Path | None = None) -> list[str]:
    """Where the task YAMLs in `folder` (default: every include path) and the declarations differ:
    task names, versions, metric names, directions and aggregations, filters and data sets."""
    from lm_eval.utils import load_yaml_config

    folders = [Path(folder)] if folder else include_paths()
    declared = registry() if folder is None else _load((str(folder),))
    problems: list[str] = []
    seen: set[str] = set()
    for f in folders:
        for path in sorted(Path(f).glob("*.yaml")):
            config = load_yaml_config(str(path), mode="simple")
            if "group" in config or "task" not in config:
                continue
            task = str(config["task"])
            seen.add(task)
            bench = next((b for b in declared.values() if task in b.tasks), None)
            if bench is None:
                problems.append(f"{path.name}: task {task} is owned by no *{DECLARATION_SUFFIX}")
                continue
            problems += _task_disagreements(path.name, task, config, bench)
    for bench in declared.values():
        for task in bench.tasks:
            if task not in seen:
                problems.append(f"{bench.path.name if bench.path else bench.name}: task {task} has no task YAML")
    return problems


def _task_disagreements(where: str, task: str, config: dict, bench: Benchmark) -> list[str]:
    out = []
    version = (config.get("metadata") or {}).get("version")
    if version is None or float(version) != bench.tasks[task].version:
        out.append(f"{where}: version {version} but {bench.name} declares {bench.tasks[task].version}")
    listed = {m["metric"]: m for m in config.get("metric_list") or []}
    expected = bench.metrics_of(task)
    if set(listed) != set(expected):
        out.append(f"{where}: metrics {sorted(listed)} but {bench.name} declares {sorted(expected)}")
    for name in set(listed) & set(expected):
        spec, item = expected[name], listed[name]
        if bool(item.get("higher_is_better", True)) != spec.higher_is_better:
            out.append(f"{where}: {name} higher_is_better disagrees with {bench.name}")
        if (item.get("aggregation") == "mean") != (spec.kind == "mean"):
            out.append(f"{where}: {name} aggregation {item.get('aggregation')!r} does not fit kind {spec.kind}")
    filters = [f["name"] for f in config.get("filter_list") or []]
    if (filters or ["none"]) != [bench.filter]:
        out.append(f"{where}: filters {filters or ['none']} but {bench.name} declares {bench.filter}")
    dataset = (config.get("dataset_kwargs") or {}).get("dataset")
    if dataset != bench.data.name:
        out.append(f"{where}: reads data set {dataset!r} but {bench.name} declares {bench.data.name!r}")
    return out
