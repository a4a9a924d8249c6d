"""Do the offline proxies' adapters transfer? Proxy test rows and real sample rows, side by side.

For each task (summarization, code): prepare the offline proxy corpus as `lorabench demo` does,
train the embedded adapter on it with the demo's recipe (or reuse one given with --summarization-
adapter / --code-adapter), then evaluate base and base+adapter twice, paired on the same documents:
on the proxy's own test rows and on the real samples in ../shared/data (development data beside
the checkout, never shipped):

  summarization  arxiv_sample.jsonl, `prepare-data arxiv --from ... --sizes 1,1,18 --max-input-tokens 256`
  code           mbpp_code_sample.jsonl, `prepare-data code --from ... --sizes 8,10,280`

Every step is the `lorabench` command a user would type (run with this interpreter), in a work
home of its own: `proxy/` for the proxy data, adapters and results, `real/` for the real samples
(prepared there, outside the checkout), both sharing the converted model of $LORABENCH_HOME.
The deltas and CIs are the leaderboard's (paired permutation test or paired bootstrap).

    .venv/bin/python benchmarks/proxy_transfer.py --write
    .venv/bin/python benchmarks/proxy_transfer.py --summarization-adapter DIR --tasks summarization
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, publish, today  # noqa: E402

SECTION = "Proxy transfer"
SHARED_DATA = ROOT.parent / "shared" / "data"
BASE = "smollm2-135m-instruct"
TASKS = {
    # task: (data set, lm-eval task, real sample, real prepare-data options, proxy prepare-data options, metrics)
    "summarization": (
        "arxiv",
        "arxiv_sum",
        "arxiv_sample.jsonl",
        ["--sizes", "1,1,18", "--max-input-tokens", "256"],
        ["--max-input-tokens", "256"],
        ("rougeL", "bertscore_f1", "rouge1", "rouge2", "bleu"),
    ),
    "code": (
        "code",
        "code_instruct",
        "mbpp_code_sample.jsonl",
        ["--sizes", "8,10,280"],
        [],
        ("codebleu", "bleu", "test_pass_rate", "all_tests_pass"),
    ),
}


def lorabench(home: Path, *args: str) -> None:
    env = {**os.environ, "LORABENCH_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    print(f"+ LORABENCH_HOME={home} lorabench {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env, check=True)


def share_models(home: Path) -> None:
    """Both work homes use the model converted in $LORABENCH_HOME (converted once, as the demo does)."""
    from harness import paths

    models = paths.home() / "models"
    models.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(models.resolve(), target_is_directory=True)


def leaderboard(home: Path, db: Path, task: str) -> dict[tuple[str, str], dict]:
    """{(adapter directory name or '', metric): leaderboard row} for `task` in `db`."""
    out = db.with_suffix(f".{task}.csv")
    lorabench(home, "leaderboard", "--db", str(db), "--task", task, "--csv", str(out))
    with out.open(encoding="utf-8") as fh:
        return {(_adapter_name(r["adapter"]), r["metric"]): r for r in csv.DictReader(fh)}


def _adapter_name(cell_adapter: str) -> str:
    """The directory name: a cell names an adapter outside its home's adapters/ `name@<hash of path>`."""
    return Path(cell_adapter.split("@")[0]).name if cell_adapter else ""


def answer_words(db: Path, task: str) -> dict[str, float]:
    """Median words per answer of each cell of `task` ('' = the base) and of the references: the shape learnt."""
    from statistics import median

    from harness.results.store import ResultStore

    store = ResultStore(db)
    out: dict[str, float] = {}
    for cell in store.cells():
        if cell.task != task:
            continue
        samples = store.samples(cell.cell_id)
        out[_adapter_name(cell.adapter)] = median(len((s.response or "").split()) for s in samples)
        out["reference"] = median(len((s.reference or "").split()) for s in samples)
    return out


def document_words(home: Path, dataset: str) -> str:
    """Median words of the whole test documents (before the input budget) and of their targets, and
    the median ratio of the two: the shape the proxy has to copy ('' where only truncated rows are kept)."""
    from statistics import median

    from harness.data import io

    full = home / "data" / dataset / "full" / "test.jsonl"
    if not full.is_file():
        return ""
    rows = list(io.read_table(full))
    docs = [len(r["input"].split()) for r in rows]
    targets = [len(r["target"].split()) for r in rows]
    ratio = median(d / max(t, 1) for d, t in zip(docs, targets))
    return f"document {median(docs):.0f}, target {median(targets):.0f}, document/target {ratio:.1f}"


def _words(w: dict[str, float], adapter: str) -> str:
    return f"reference {w.get('reference', 0):.0f}, base {w.get('', 0):.0f}, adapter {w.get(adapter, 0):.0f}"


def _num(x: str, digits: int) -> str:
    return f"{float(x):.{digits}f}" if x not in ("", None) else ""


def _delta(r: dict, digits: int) -> str:
    if r.get("delta") in ("", None):
        return "n/a"
    mark = ""
    if r["significant"] == "True":
        mark = " (better)" if r["improves"] == "True" else " (worse)"
    return (
        f"{float(r['delta']):+.{digits}f} [{float(r['delta_low']):+.{digits}f}, {float(r['delta_high']):+.{digits}f}] "
        f"p={float(r['p_value']):.3f}{mark}"
    )


def measure(task: str, adapter: Path | None, work: Path, args) -> tuple[list[str], dict]:
    dataset, lm_task, sample, real_opts, proxy_opts, metrics = TASKS[task]
    proxy, real = work / "proxy", work / "real"
    for home in (proxy, real):
        share_models(home)
    gen = ["--gen-kwargs", f"max_gen_toks={args.max_gen_toks}"]
    lorabench(proxy, "prepare-data", dataset, "--source", "offline", *proxy_opts)
    trained = adapter is None
    if trained:
        adapter = proxy / "adapters" / f"{task}-{BASE}"
        started = time.time()
        lorabench(proxy, "train", task, "--base", BASE, "--no-eval", "--force", "--out", str(adapter))
        train_s = time.time() - started
    lorabench(
        proxy,
        "eval",
        "--bases",
        BASE,
        "--adapters",
        str(adapter),
        "--tasks",
        lm_task,
        "--limit",
        str(args.proxy_limit),
        *gen,
        "--db",
        str(proxy / "proxy.sqlite"),
    )
    lorabench(real, "prepare-data", dataset, "--from", str((args.shared_data / sample).resolve()), *real_opts)
    limit = args.arxiv_limit if task == "summarization" else args.code_limit
    lorabench(
        real,
        "eval",
        "--bases",
        BASE,
        "--adapters",
        str(adapter),
        "--tasks",
        lm_task,
        "--limit",
        str(limit),
        *gen,
        "--db",
        str(real / "real.sqlite"),
    )
    on_proxy = leaderboard(proxy, proxy / "proxy.sqlite", lm_task)
    on_real = leaderboard(real, real / "real.sqlite", lm_task)
    name = adapter.name
    words_proxy, words_real = answer_words(proxy / "proxy.sqlite", lm_task), answer_words(real / "real.sqlite", lm_task)
    origin = f"trained here in {train_s:.0f} s with the demo's recipe" if trained else f"given: {adapter}"
    proxy_base, real_base = on_proxy.get(("", metrics[0]), {}), on_real.get(("", metrics[0]), {})
    lines = [
        f"#### {task}: adapter `{name}` ({origin})",
        "",
        f"- Proxy: {proxy_base.get('data', '?')}, test split, n = {proxy_base.get('n', '?')}",
        f"- Real: `{sample}` ({' '.join(real_opts)}), test split, n = {real_base.get('n', '?')}",
        f"- Median words per answer: proxy {_words(words_proxy, name)}; real {_words(words_real, name)}",
    ]
    shape_proxy, shape_real = document_words(proxy, dataset), document_words(real, dataset)
    if shape_proxy and shape_real:
        lines.append(f"- Median words per whole test document: proxy {shape_proxy}; real {shape_real}")
    lines += [
        "",
        "| metric | proxy: base | proxy: adapter | proxy: delta [95% CI] p | real: base | real: adapter | real: delta [95% CI] p |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for metric in metrics:
        digits = 2 if metric == "bleu" else 4
        pb, pa = on_proxy.get(("", metric)), on_proxy.get((name, metric))
        rb, ra = on_real.get(("", metric)), on_real.get((name, metric))
        if not (pb and pa and rb and ra):
            continue  # e.g. test pass rates on the proxy, whose rows carry no unit tests
        lines.append(
            f"| {metric} | {_num(pb['value'], digits)} | {_num(pa['value'], digits)} | {_delta(pa, digits)} | "
            f"{_num(rb['value'], digits)} | {_num(ra['value'], digits)} | {_delta(ra, digits)} |"
        )
        summary[metric] = ra
    missing = [m for m in metrics if m not in summary and (("", m) in on_real)]
    for metric in missing:  # on the real rows only (the proxy has no unit tests)
        rb, ra = on_real[("", metric)], on_real.get((name, metric))
        if ra:
            real = f"{_num(rb['value'], 4)} | {_num(ra['value'], 4)} | {_delta(ra, 4)}"
            lines.append(f"| {metric} | | | (not scored on the proxy) | {real} |")
            summary[metric] = ra
    return lines, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="summarization,code", help="comma-separated: summarization, code")
    parser.add_argument("--summarization-adapter", type=Path, help="reuse this adapter instead of training one")
    parser.add_argument("--code-adapter", type=Path, help="reuse this adapter instead of training one")
    parser.add_argument("--proxy-limit", type=int, default=16, help="proxy test rows (the demo's --limit)")
    parser.add_argument("--arxiv-limit", type=int, default=18, help="real arXiv test rows")
    parser.add_argument("--code-limit", type=int, default=40, help="real MBPP-shaped test rows")
    parser.add_argument("--max-gen-toks", type=int, default=128, help="generation budget (the demo's)")
    parser.add_argument("--shared-data", type=Path, default=SHARED_DATA, help="where the real samples are (default: ../shared/data)")
    parser.add_argument("--home", type=Path, help="work home to keep (finished eval cells in it are reused)")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/RESULTS.md")
    args = parser.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    absent = [TASKS[t][2] for t in tasks if not (args.shared_data / TASKS[t][2]).is_file()]
    if absent:
        print(
            f"proxy_transfer: {', '.join(absent)} absent from {args.shared_data}: the transfer check needs the real sample rows "
            "(development data beside the checkout, never shipped); nothing was measured",
            file=sys.stderr,
        )
        return 2
    given = {"summarization": args.summarization_adapter, "code": args.code_adapter}
    for task, path in given.items():
        if path is not None and not (path / "adapter_config.json").is_file():
            parser.error(f"--{task}-adapter {path} is not a PEFT adapter directory (no adapter_config.json)")
    load = machine()
    started = time.time()
    body: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.home or Path(tmp)).resolve()
        for task in tasks:
            lines, _ = measure(task, given[task].resolve() if given[task] else None, work, args)
            body += [*lines, ""]
    command = " ".join(["benchmarks/proxy_transfer.py", *sys.argv[1:]])
    text = "\n".join(
        [
            f"### {today()}: embedded adapters trained on the offline proxies, scored on proxy and real rows",
            "",
            f"- Command: `.venv/bin/python {command}`",
            (
                f"- Machine: {load}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (torch default)')}; "
                f"whole run {time.time() - started:.0f} s"
            ),
            (
                f"- Base `{BASE}`; `--gen-kwargs max_gen_toks={args.max_gen_toks}`; deltas are adapter minus base on the same "
                "documents (paired sign-flip permutation test, paired bootstrap for corpus BLEU/CodeBLEU), as the leaderboard computes them"
            ),
            "",
            *body,
        ]
    )
    return publish(SECTION, text, args.write)


if __name__ == "__main__":
    sys.exit(main())
