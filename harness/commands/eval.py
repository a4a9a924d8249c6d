"""`lorabench eval`: every base x adapter x task cell through lm-eval, into the results store."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
writes:
  $LORABENCH_HOME/results/results.sqlite        cells, metrics with 95% bootstrap CIs, per-sample
                                                scores and provenance (schema: docs/results.md)
  $LORABENCH_HOME/results/lm_eval/.../          lm-eval's own results.json and samples.jsonl per cell
A finished cell is never recomputed unless --force; a killed run loses only the cell in flight.

scaling out (the same command on lm-eval's engines, no scheduler of ours):
  data parallel, one model copy per GPU:  accelerate launch -m harness.cli eval ...
  vLLM (tensor parallel, LoRA served by one engine): lorabench eval --backend vllm ...
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate each base alone and with each of its adapters on our lm-eval tasks",
        description="Evaluate every cell (each base alone, and each base with each adapter trained "
        "for it) on the given tasks through lm-eval's Python API with the tasks in lm_eval_tasks/, "
        "and store metrics, per-sample scores and provenance in the results database.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from harness.commands.argtypes import at_least, batch_size

    p.add_argument(
        "--bases",
        nargs="+",
        default=["smollm2-135m-instruct"],
        metavar="NAME",
        help="registry names or checkpoint dirs (default: the embedded model)",
    )
    p.add_argument(
        "--adapters", nargs="*", default=[], metavar="PATH", help="PEFT adapter directories; each is paired with the base it was trained on"
    )
    p.add_argument(
        "--routed",
        nargs="+",
        default=[],
        metavar="ROUTER",
        help="also evaluate each base as a routed system: ROUTER (centroid, arrow) picks, per document, one of the adapters its "
        "serving manifest ($LORABENCH_HOME/serving/<base>.json, from `lorabench winners`) serves, or the base; the cell is "
        "named routed-ROUTER and pairs with the base and with each benchmark's specialist on the leaderboard",
    )
    from harness import benchmarks

    p.add_argument(
        "--tasks",
        default=",".join(benchmarks.main_tasks()),
        help="comma-separated lm-eval tasks or groups (default: each benchmark's main task, %(default)s)",
    )
    p.add_argument(
        "--limit",
        type=at_least(1),
        help="evaluate only the first N documents of each task (cells with different limits are never compared)",
    )
    p.add_argument("--backend", choices=["hf", "vllm"], default="hf", help="hf (default) or vllm (GPU, LoRA through one engine)")
    p.add_argument(
        "--batch-size",
        default="16",
        type=batch_size,
        help="generation batch size, 'auto' or 'auto:N' (default 16: the answers are the same at any size; lower it on a small GPU)",
    )
    p.add_argument("--device", help="torch device for the hf backend (default: lm-eval's choice)")
    p.add_argument("--dtype", default="auto", help="model dtype (default auto)")
    p.add_argument(
        "--gen-kwargs",
        metavar="K=V,...",
        help="override the tasks' generation settings, e.g. max_gen_toks=128 (part of the comparability key)",
    )
    p.add_argument("--no-chat-template", action="store_true", help="do not apply the model's chat template")
    p.add_argument("--seed", type=at_least(0), default=1234, help="lm-eval's random seeds, 0 or more (default 1234)")
    p.add_argument("--db", type=Path, help="results database (default $LORABENCH_HOME/results/results.sqlite)")
    p.add_argument(
        "--include-path",
        type=Path,
        metavar="DIR",
        help="also read task YAMLs and benchmark declarations from DIR (lm_eval_tasks/README.md)",
    )
    p.add_argument("--force", action="store_true", help="recompute cells that are already stored")
    p.set_defaults(func=run)


def log_dir(args: argparse.Namespace) -> Path:
    from harness.errors import LorabenchError
    from harness.matrix.run import default_db
    from harness.results.store import check_location

    db = (args.db or default_db()).expanduser()
    check_location(db)  # an impossible --db is one line, before the log directory beside it is made
    logs = db.parent / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. under /proc: the ancestor looks writable, the directory cannot be made
        raise LorabenchError(f"--db {db} cannot be created ({exc.strerror}: {exc.filename}): pick another --db") from None
    return logs


def run(args: argparse.Namespace) -> int:
    from harness import benchmarks
    from harness.matrix.run import EvalSettings, run_matrix

    if args.include_path:
        benchmarks.add_include_path(args.include_path)
    gen_kwargs = parse_gen_kwargs(args.gen_kwargs)
    settings = EvalSettings(
        tasks=[t.strip() for t in args.tasks.split(",") if t.strip()],
        limit=args.limit,
        backend=args.backend,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        apply_chat_template=not args.no_chat_template,
        seed=args.seed,
        gen_kwargs=gen_kwargs,
        force=args.force,
        db=args.db,
        routers=list(dict.fromkeys(args.routed)),
    )
    store = run_matrix(args.bases, args.adapters, settings)
    print(f"results: {store.path}  (see them with `lorabench leaderboard --db {store.path}`)")
    return 0


def parse_gen_kwargs(text: str | None) -> dict:
    """`K=V,...` as lm-eval parses it, checked before any model loads: every key is one lm-eval or
    transformers' generate() knows, and the common ones have sensible values."""
    from harness.errors import LorabenchError

    if not text:
        return {}
    from lm_eval.utils import simple_parse_args_string
    from transformers import GenerationConfig

    try:
        kwargs = simple_parse_args_string(text)
    except ValueError:
        kwargs = None
    bare = [k for k, v in (kwargs or {}).items() if v == ""]
    if not kwargs or bare:
        raise LorabenchError(f"bad --gen-kwargs {text!r}: write KEY=VALUE pairs separated by commas, e.g. max_gen_toks=128,temperature=0")
    known = {"until", "max_gen_toks", *GenerationConfig().to_dict()}
    unknown = [k for k in kwargs if k not in known]
    if unknown:
        raise LorabenchError(
            f"--gen-kwargs: unknown generation setting(s) {', '.join(unknown)}: use lm-eval's max_gen_toks, until, "
            "or a transformers GenerationConfig field (temperature, top_p, do_sample, ...)"
        )
    return check_gen_kwargs(kwargs, "--gen-kwargs")


def check_gen_kwargs(kwargs: dict, where: str) -> dict:
    """The values that would otherwise fail inside generation, after the model has loaded."""
    from harness.errors import LorabenchError

    def number(key, minimum, *, integer, strict=False):
        if key not in kwargs:
            return
        value = kwargs[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (not integer or float(value).is_integer())
        if ok and (value > minimum if strict else value >= minimum):
            kwargs[key] = int(value) if integer else value
            return
        kind = "a whole number" if integer else "a number"
        bound = f"more than {minimum}" if strict else f"at least {minimum}"
        raise LorabenchError(f"{where}: {key}={value!r} must be {kind} {bound}")

    number("max_gen_toks", 1, integer=True)
    number("max_new_tokens", 1, integer=True)
    number("temperature", 0, integer=False)
    number("top_k", 0, integer=True)
    number("num_beams", 1, integer=True)
    number("repetition_penalty", 0, integer=False, strict=True)
    if "top_p" in kwargs:
        number("top_p", 0, integer=False, strict=True)
        if kwargs["top_p"] > 1:
            raise LorabenchError(f"{where}: top_p={kwargs['top_p']!r} must be in (0, 1]")
    if "do_sample" in kwargs and not isinstance(kwargs["do_sample"], bool):
        raise LorabenchError(f"{where}: do_sample={kwargs['do_sample']!r} must be True or False")
    return kwargs
