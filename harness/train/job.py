"""One `lorabench train` run, end to end.

  1. pick the recipe (task x base [x scale], or --recipe FILE) and the base checkpoint;
  2. prepare the data if `prepare-data` has not (the same call as `lorabench prepare-data`);
  3. write the plain Axolotl config of this run (absolute paths) into a run directory;
  4. run Axolotl (`runner`), which leaves its output, checkpoints and log in the run directory;
  5. publish the adapter: a standard PEFT directory plus the training record and the config, written
     to a temporary directory and renamed to $LORABENCH_HOME/adapters/<task>-<base>.
A failed run keeps its run directory (log, checkpoints) and publishes nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
from pathlib import Path

from harness import adapters, benchmarks, hub, paths
from harness.atomic import atomic_dir, atomic_file, write_json
from harness.errors import LorabenchError
from harness.train import recipes, record, runner

log = logging.getLogger(__name__)

# What a PEFT consumer (PeftModel.from_pretrained, lm-eval `peft=`, TGI LORA_ADAPTERS) reads, plus
# the tokenizer and chat template the adapter was trained with.
ADAPTER_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "chat_template.jinja",
    "README.md",
)
RUN_CONFIG = "axolotl_config.yml"


def default_base() -> str:
    import torch

    from harness.models import registry

    return "mistral-7b-instruct" if torch.cuda.is_available() else registry.EMBEDDED


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_base(base: str) -> tuple[Path | None, str]:
    """(local checkpoint or None, registry name or path) for `base`; prepares the embedded model."""
    from harness.models import registry

    if base in registry.MODELS:
        spec = registry.MODELS[base]
        if spec.embedded and not spec.is_prepared():
            log.info("preparing the embedded base %s (offline conversion, about a minute)", base)
            return registry.prepare(base), base
        try:
            return registry.resolve(base), base
        except LorabenchError:
            if hub.hub_reachable():
                return None, base  # Axolotl downloads it from the hub, as the recipe says
            raise
    return registry.resolve(base), base


def ensure_data(task: str, base: str, source: str, recipe: recipes.Recipe | None) -> Path:
    """The prepared data set of `task`; prepares it (as `lorabench prepare-data` would) if missing."""
    from harness.models import registry

    data = benchmarks.for_adapter(task).data
    budgeted = data.max_input_tokens is not None  # inputs cut to a token budget (arXiv articles)
    data_dir = paths.data_dir() / data.name
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        from harness.data.pipeline import prepare_dataset

        # Truncation budgets are in tokens of the tokenizer that will train on them.
        tokenizer = base if base in registry.MODELS and _prepared(base) else None
        kwargs: dict = {}
        if budgeted and recipe is not None and recipes.input_budget(recipe) < data.max_input_tokens:
            kwargs["max_input_tokens"] = recipes.input_budget(recipe)  # the window is shorter than the default
        log.info("preparing data set %s (source %s)", data.name, source)
        return prepare_dataset(data.name, source=source, tokenizer=tokenizer, **kwargs)
    params = json.loads(manifest.read_text()).get("params") or {}
    used = params.get("tokenizer")
    if budgeted and recipe is not None and (params.get("max_input_tokens") or 10**9) > recipes.input_budget(recipe):
        log.warning(
            "%s keeps up to %s input tokens but %s fits %d: longer rows will be dropped; re-run "
            "`lorabench prepare-data %s --max-input-tokens %d --force`",
            data.name,
            params.get("max_input_tokens"),
            recipe.file,
            recipes.input_budget(recipe),
            data.name,
            recipes.input_budget(recipe),
        )
    if budgeted and used and used != base:
        log.warning(
            "%s was prepared with the %s tokenizer, not %s: rows over sequence_len will be dropped; "
            "re-run `lorabench prepare-data %s --tokenizer %s --force` if many are",
            data.name,
            used,
            base,
            data.name,
            base,
        )
    return data_dir


def _prepared(name: str) -> bool:
    from harness.models import registry

    try:
        registry.resolve(name)
        return True
    except LorabenchError:
        return False


def train(
    task: str,
    base: str | None = None,
    *,
    recipe: Path | None = None,
    scale: str | None = None,
    max_steps: int | None = None,
    num_processes: int = 1,
    source: str = "auto",
    out: Path | None = None,
    force: bool = False,
    no_eval: bool = False,
    progress: bool = True,
) -> Path:
    """Train `task` on `base` with its Axolotl recipe; return the published adapter directory."""
    benchmarks.for_adapter(task)  # an unknown task is a one-line error naming the known ones
    if max_steps is not None and max_steps < 1:
        raise LorabenchError(f"--max-steps {max_steps}: give at least 1 optimizer step (leave it out for the recipe's own)")
    base = base or default_base()
    known = None if recipe else recipes.find(task, base, scale)
    recipe_path = Path(recipe) if recipe else known.path
    name = f"{task}-{Path(base).name}"
    final = Path(out) if out else paths.adapters_dir() / name
    if final.exists() and not force:
        raise LorabenchError(f"adapter {final} already exists: pass --force to replace it, or --out DIR")
    # Everything that can be checked in the recipe is checked before the base is converted or the
    # data prepared (a minute and half a gigabyte in a fresh home): syntax, shape, and the keys.
    early = recipes.load(recipe_path)
    if not (known is not None and recipes.is_pristine(known)):
        recipes.check_keys(early, str(recipe_path))

    base_dir, base_name = resolve_base(base)
    data_dir = ensure_data(task, base_name, source, known)

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = paths.home() / "runs" / f"{name}-{stamp}"
    overrides: dict = {}
    if base_dir is not None:
        overrides["base_model"] = str(base_dir)  # the local checkpoint: no hub needed
    if max_steps is not None:
        overrides["max_steps"] = max_steps
        overrides["eval_steps"] = max_steps  # evaluate before and after, never mid-run
    if no_eval:
        overrides.update(test_datasets=None, eval_steps=None, evals_per_epoch=None, eval_sample_packing=None)
    # A shipped recipe identical to its layers was validated against Axolotl's schema by the test
    # suite; validating it again here would import Axolotl twice per run (~20 s on 2 cores).
    shipped = known is not None and recipes.is_pristine(known)
    cfg = recipes.for_run(recipe_path, output_dir=run_dir / "axolotl", overrides=overrides, check=not shipped)
    cuda = _cuda()
    if not cuda and str(cfg.get("attn_implementation", "")).startswith("flash"):
        raise LorabenchError(
            f"{recipe_path.name} needs a CUDA GPU (flash attention) and this machine has none: "
            "train the embedded model instead (--base smollm2-135m-instruct)"
        )
    rendered = recipes.dump(cfg)
    with atomic_file(run_dir / RUN_CONFIG, encoding="utf-8") as fh:
        fh.write(rendered)
    log.info("training %s on %s with %s; run directory %s", task, base_name, recipe_path.name, run_dir)

    result = runner.run(
        run_dir / RUN_CONFIG,
        log_path=run_dir / "axolotl.log",
        total_steps=cfg.get("max_steps"),
        num_processes=num_processes,
        ray=bool(cfg.get("use_ray")),
        distributed=bool(cfg.get("deepspeed") or cfg.get("fsdp") or cfg.get("fsdp_config")),
        progress=progress,
    )
    output = run_dir / "axolotl"
    if not (output / "adapter_model.safetensors").is_file():
        raise LorabenchError(f"Axolotl finished but wrote no adapter to {output}: read {result.log_path}")
    for d in result.dropped:
        log.warning("Axolotl: %s", d["message"])

    base_ident = (
        adapters.base_identity(Path(cfg["base_model"]))
        if Path(cfg["base_model"]).is_dir()
        else {"name": base_name, "hf_id": cfg["base_model"], "path": None, "fingerprint": _fingerprint_from(output)}
    )
    rec = record.build(
        task=task, recipe_path=recipe_path, rendered=rendered, base=base_ident, data_dir=data_dir, result=result, overrides=overrides
    )
    _publish(output, final, rec, rendered, base_ident)
    tp = rec["throughput"]
    log.info(
        "adapter written to %s: %d steps, %.1f s/step, %s tokens/s, wall %.0f s",
        final,
        tp.get("steps", 0),
        tp.get("seconds_per_step") or 0,
        tp.get("tokens_per_s"),
        result.wall_s,
    )
    return final


def _fingerprint_from(output: Path) -> str | None:
    cfg = output / "config.json"
    return adapters.fingerprint(json.loads(cfg.read_text())) if cfg.is_file() else None


def _publish(output: Path, final: Path, rec: dict, rendered: str, base_ident: dict) -> None:
    with atomic_dir(final) as tmp:
        for f in ADAPTER_FILES:
            if (output / f).is_file():
                shutil.copy2(output / f, tmp / f)
        peft_cfg = json.loads((tmp / "adapter_config.json").read_text())
        # Name the hub model when the base is one (portable to TGI, vLLM, the hub); an embedded
        # model converted from GGUF is not the hub's weights, so it keeps its local path.
        from harness.models import origin

        prov = origin.read(Path(base_ident["path"])) if base_ident.get("path") else {}
        if base_ident.get("hf_id") and prov.get("method") != "gguf-conversion":
            peft_cfg["base_model_name_or_path"] = base_ident["hf_id"]
            write_json(tmp / "adapter_config.json", peft_cfg)
        with atomic_file(tmp / RUN_CONFIG, encoding="utf-8") as fh:
            fh.write(rendered)
        write_json(tmp / record.RECORD_FILE, rec)
