"""Axolotl recipes: layers merged into complete configs, checked offline, rendered for one run.

`axolotl_configs/layers/recipes.yml` says which layers make which recipe; `render` writes each
recipe into `axolotl_configs/` as a complete Axolotl YAML (the files users run), `check` reports
the ones that drifted from their layers. `for_run` turns a recipe into the plain config one
`lorabench train` run uses: absolute paths, no path plugin (other plugins stay), the run's output
directory.

    python -m harness.train.recipes render   # rewrite axolotl_configs/*.yml from the layers
    python -m harness.train.recipes check    # exit 1 if any of them is out of date
"""

from __future__ import annotations

import copy
import difflib
import functools
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import benchmarks, paths
from harness.errors import LorabenchError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "axolotl_configs"
LAYER_DIR = CONFIG_DIR / "layers"
MANIFEST = LAYER_DIR / "recipes.yml"
PLUGIN = "harness.train.plugin.LorabenchPaths"
HOME_VAR = "${LORABENCH_HOME}"
SCALES = ("zero2", "zero3", "fsdp", "ray")
INPUT_RESERVE = 512  # tokens of the window left for the target (an abstract) and the chat template
_HOME_RE = re.compile(r"\$\{LORABENCH_HOME\}|\$LORABENCH_HOME\b")


@dataclass(frozen=True)
class Recipe:
    file: str
    task: str
    base: str
    layers: tuple[str, ...]
    scale: str | None = None

    @property
    def path(self) -> Path:
        return CONFIG_DIR / self.file

    @property
    def adapter_name(self) -> str:
        return f"{self.task}-{self.base}"


@functools.cache
def recipes() -> tuple[Recipe, ...]:
    entries = yaml.safe_load(MANIFEST.read_text())["recipes"]
    return tuple(Recipe(e["file"], e["task"], e["base"], tuple(e["layers"]), e.get("scale")) for e in entries)


def find(task: str, base: str, scale: str | None = None) -> Recipe:
    """The recipe for `task` on registry base `base` (and a multi-GPU `scale`), or a one-line error."""
    benchmarks.for_adapter(task)  # an unknown task is a one-line error naming the known ones
    for r in recipes():
        if (r.task, r.base, r.scale) == (task, base, scale):
            return r
    have = sorted({r.base for r in recipes() if r.task == task and r.scale == scale})
    if scale:
        raise LorabenchError(
            f"no {scale} recipe for {task} on {base}: multi-GPU recipes exist for {', '.join(have)}; "
            "or pass your own config with --recipe FILE"
        )
    raise LorabenchError(f"no {task} recipe for base {base!r}: choose --base {' or '.join(have)}, or pass --recipe FILE")


# --- merging layers ---------------------------------------------------------------------------


def deep_merge(base: Any, overlay: Any) -> Any:
    """`overlay` on top of `base`: mappings merge key by key (a None value deletes the key), lists of
    mappings merge item by item (so an overlay can change one field of a dataset entry), anything
    else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(overlay, list) and all(isinstance(x, dict) for x in base + overlay):
        merged = [deep_merge(b, o) for b, o in zip(base, overlay)]
        return merged + copy.deepcopy(base[len(overlay) :]) + copy.deepcopy(overlay[len(base) :])
    return copy.deepcopy(overlay)


def _layer_path(name: str) -> Path:
    path = LAYER_DIR / f"{name}.yml"
    if not path.is_file():
        raise LorabenchError(f"{MANIFEST.relative_to(ROOT)} names layer {name!r} but {path.relative_to(ROOT)} does not exist")
    return path


def compose(recipe: Recipe) -> dict:
    cfg: dict = {}
    for name in recipe.layers:
        cfg = deep_merge(cfg, yaml.safe_load(_layer_path(name).read_text()) or {})
    cfg["output_dir"] = f"{HOME_VAR}/adapters/{recipe.adapter_name}"
    # The base model first: it is what a reader looks for.
    return {k: cfg[k] for k in ("base_model", *cfg) if k in cfg}


def _header(path: Path) -> list[str]:
    """The leading comment block of a layer file: its justification, carried into the recipe."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def _precondition(recipe: Recipe) -> list[str]:
    bench = benchmarks.for_adapter(recipe.task)
    data, budgeted = bench.data.name, bench.data.max_input_tokens is not None
    embedded = recipe.base == "smollm2-135m-instruct"
    if embedded:
        budget = f" --max-input-tokens {input_budget(recipe)}" if budgeted else ""
        prep = f"#   lorabench prepare-model {recipe.base} && lorabench prepare-data {data}{budget}"
    elif budgeted:
        prep = f"#   lorabench prepare-data {data} --tokenizer {recipe.base}   (article budget in this base's tokens)"
    else:
        prep = f"#   lorabench prepare-data {data}"
    if recipe.scale == "ray":
        run = f"python -m axolotl.cli.train axolotl_configs/{recipe.file}   (on the Ray head node)"
    elif recipe.scale:
        run = f"accelerate launch --num_processes N -m axolotl.cli.train axolotl_configs/{recipe.file}"
    else:
        run = f"accelerate launch -m axolotl.cli.train axolotl_configs/{recipe.file}"
    env = "HF_HUB_OFFLINE=1 " if embedded else ""  # no hub here; threads: see layers/cpu.yml
    scale = f" --scale {recipe.scale}" if recipe.scale else ""
    return [
        "# Precondition (once):",
        prep,
        "# Run from the repository root, with the venv's bin/ on PATH:",
        f"#   {env}WANDB_MODE=disabled AXOLOTL_DO_NOT_TRACK=1 {run}",
        f"#   or: lorabench train {recipe.task} --base {recipe.base}{scale}",
        f"# Writes the adapter (a PEFT directory) to $LORABENCH_HOME/adapters/{recipe.adapter_name}.",
    ]


def input_budget(recipe: Recipe) -> int:
    """Input tokens (an arXiv article) that fit the recipe's window: 512 are kept for the target and
    the template (arxiv's declared budget, 3584, is exactly this for a 4096 window)."""
    return int(compose(recipe)["sequence_len"]) - INPUT_RESERVE


def render_text(recipe: Recipe) -> str:
    layer_files = ", ".join(f"{n}.yml" for n in recipe.layers)
    lines = [
        f"# {recipe.task} QLoRA recipe for {recipe.base}" + (f", multi-GPU ({recipe.scale})" if recipe.scale else "") + ".",
        "# A complete Axolotl 0.21 config, GENERATED by `python -m harness.train.recipes render`",
        f"# from axolotl_configs/layers/{{{layer_files}}}:",
        "# edit the layers, not this file (the tests fail when it is out of date).",
        "#",
        *_precondition(recipe),
    ]
    for name in recipe.layers:
        lines += ["#", f"# --- from layers/{name}.yml ---", *_header(_layer_path(name))]
    body = yaml.safe_dump(compose(recipe), sort_keys=False, default_flow_style=False, width=100)
    return "\n".join(lines) + "\n\n" + body


def render_all(*, write: bool) -> list[Path]:
    """Recipes whose file differs from its layers; with `write`, rewrite them (atomically)."""
    from harness.atomic import atomic_file

    stale = []
    for recipe in recipes():
        text = render_text(recipe)
        if not recipe.path.is_file() or recipe.path.read_text() != text:
            stale.append(recipe.path)
            if write:
                with atomic_file(recipe.path, encoding="utf-8") as fh:
                    fh.write(text)
    return stale


# --- reading and expanding ---------------------------------------------------------------------


def load(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise LorabenchError(f"recipe {path} does not exist: pick one in axolotl_configs/ or give an existing YAML file")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise LorabenchError(f"recipe {path} is not a text file (not UTF-8): give an Axolotl YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise LorabenchError(f"recipe {path}{where} is not valid YAML: fix the syntax ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(cfg, dict):
        raise LorabenchError(f"recipe {path} is not a YAML mapping of Axolotl keys: start from a file in axolotl_configs/")
    check_shape(cfg, str(path))
    return cfg


def check_shape(cfg: dict, source: str) -> None:
    """What Axolotl's schema lets through and then fails on deep inside a run: the data set lists
    must be lists of mappings, and the token and step counts positive."""
    for group in ("datasets", "test_datasets"):
        value = cfg.get(group)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(ds, dict) for ds in value):
            raise LorabenchError(
                f"{source}: {group} must be a list of mappings (- path: ..., type: chat_template), not {type(value).__name__} "
                f"{str(value)[:40]!r}: see axolotl_configs/*.yml"
            )
    for key in ("sequence_len", "max_steps", "micro_batch_size", "gradient_accumulation_steps", "num_epochs"):
        value = cfg.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (key != "num_epochs" and value != int(value)):
            kind = "a positive number" if key == "num_epochs" else "a positive whole number"
            raise LorabenchError(f"{source}: {key} is {value!r}; it must be {kind}")


def expand_paths(cfg: Any, home: Path | None = None) -> Any:
    """Replace `${LORABENCH_HOME}` (default ~/.cache/lorabench) and a leading `~` in every string."""
    home_str = str(home or paths.home())
    if isinstance(cfg, dict):
        return {k: expand_paths(v, Path(home_str)) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [expand_paths(v, Path(home_str)) for v in cfg]
    if isinstance(cfg, str):
        value = _HOME_RE.sub(lambda _: home_str, cfg)
        return os.path.expanduser(value) if value.startswith("~") else value
    return cfg


# --- validation ---------------------------------------------------------------------------------


@functools.cache
def _schema():
    """Axolotl's config schema classes (with the built-in plugins' fields), and the known keys."""
    from axolotl.integrations.config import merge_input_args
    from axolotl.utils.config import prepare_plugins
    from axolotl.utils.dict import DictDefault
    from axolotl.utils.schemas.datasets import SFTDataset

    prepare_plugins(DictDefault({}))  # registers Axolotl's built-in plugins, whose fields are legal keys
    with_caps, input_cls = merge_input_args()

    def names(model_cls) -> set[str]:
        keys = set()
        for name, field in model_cls.model_fields.items():
            keys.add(name)
            if field.alias:
                keys.add(field.alias)
        return keys

    return with_caps, input_cls, names(with_caps) | names(input_cls), names(SFTDataset)


def check_keys(cfg: dict, source: str) -> None:
    """Axolotl's schema ignores keys it does not know; a typo there silently changes nothing."""
    _, _, top_keys, dataset_keys = _schema()
    problems = [_unknown(k, top_keys, "") for k in cfg if k not in top_keys]
    for group in ("datasets", "test_datasets"):
        for i, ds in enumerate(cfg.get(group) or []):
            if isinstance(ds, dict):
                problems += [_unknown(k, dataset_keys, f"{group}[{i}].") for k in ds if k not in dataset_keys]
    if problems:
        raise LorabenchError(f"{source}: {'; '.join(problems)} (Axolotl would silently ignore it): fix or remove the key")


def _unknown(key: str, known: set[str], prefix: str) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    return f"unknown key {prefix}{key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def validate(cfg: dict, source: str) -> dict:
    """Axolotl's own schema validation (no model, no GPU) plus our unknown-key check; returns the
    validated config as Axolotl normalises it. Errors become one line naming the key."""
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    check_keys(cfg, source)
    cfg = copy.deepcopy(cfg)
    if PLUGIN in (cfg.get("plugins") or []):
        cfg = expand_paths(cfg)
    try:
        return dict(validate_config(DictDefault(cfg)))
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()[:3])
        raise LorabenchError(f"{source} is not a valid Axolotl config: {errs}") from None
    except ValueError as exc:
        raise LorabenchError(f"{source} is not a valid Axolotl config: {str(exc).splitlines()[0]}") from None


def check_inputs(cfg: dict, source: str) -> None:
    """The files a run reads exist: the base checkpoint (when local) and every data set."""
    base = str(cfg.get("base_model") or "")
    if not base:
        raise LorabenchError(f"{source} has no base_model: set it to a registry model's directory or a hub id")
    if base.startswith(("/", ".", "~")) and not (Path(base).expanduser() / "config.json").is_file():
        name = Path(base).name
        raise LorabenchError(f"{source}: base model {base} is not prepared: run `lorabench prepare-model {name}`")
    if not cfg.get("datasets"):
        raise LorabenchError(f"{source} has no datasets: add the chat JSONL that `lorabench prepare-data` writes")
    for group in ("datasets", "test_datasets"):
        for ds in cfg.get(group) or []:
            p = Path(str(ds.get("path", ""))).expanduser()
            if not p.exists():
                names = benchmarks.data_names()
                data = p.parent.name if p.parent.name in names else "|".join(names)
                raise LorabenchError(f"{source}: dataset {p} does not exist: run `lorabench prepare-data {data}`")


def is_pristine(recipe: Recipe) -> bool:
    """The shipped recipe file is exactly what its layers render (what the tests validated)."""
    return recipe.path.is_file() and recipe.path.read_text(encoding="utf-8") == render_text(recipe)


def for_run(path: Path, *, output_dir: Path, overrides: dict | None = None, check: bool = True) -> dict:
    """The plain Axolotl config one `lorabench train` run uses: the recipe at `path` with absolute
    paths, without the path plugin, writing to `output_dir`, with `overrides` on top.
    `check` validates keys and values against Axolotl's schema (which imports Axolotl)."""
    source = str(path)
    cfg = load(path)
    if check:
        check_keys(cfg, source)
    cfg = expand_paths(cfg)
    plugins = [p for p in cfg.get("plugins") or [] if p != PLUGIN]
    if plugins:
        cfg["plugins"] = plugins
    else:
        cfg.pop("plugins", None)
    # Relative paths (DeepSpeed JSON, a user's data) are relative to the repository root, where
    # the recipes say to run; the run itself starts elsewhere.
    if isinstance(cfg.get("deepspeed"), str) and not os.path.isabs(cfg["deepspeed"]):
        cfg["deepspeed"] = str(ROOT / cfg["deepspeed"])
    cfg = deep_merge(cfg, overrides or {})
    cfg["output_dir"] = str(output_dir)
    check_shape(cfg, source)
    check_inputs(cfg, source)
    if check:
        validate(cfg, source)
    return cfg


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, width=100)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["render"], ["check"]):
        print(__doc__, file=sys.stderr)
        return 2
    stale = render_all(write=args == ["render"])
    for p in stale:
        print(f"{'wrote' if args == ['render'] else 'out of date'}: {p.relative_to(ROOT)}")
    return 1 if stale and args == ["check"] else 0


if __name__ == "__main__":
    sys.exit(main())
