"""Combine LoRA adapters of one base into one standard PEFT adapter (`lorabench merge`).

The combination is PEFT's own `add_weighted_adapter` (peft >= 0.21), run on the base the adapters
share, so the result loads wherever PEFT adapters load (PEFT, TGI's `LORA_ADAPTERS`, vLLM's
`--lora-modules`) and is evaluated like any adapter:

  cat        the adapters' A and B side by side: rank = the sum of the ranks, and the update is
             exactly sum(weight_i * update_i); any ranks
  svd        sum(weight_i * update_i) per layer, truncated by SVD to --svd-rank (default: the
             largest source rank); any ranks
  ties       TIES-merging (Yadav et al. 2023) of the weighted A and B matrices: keep the top
             --density share by magnitude, elect a sign, average what agrees; equal ranks only
  dare_ties  DARE (Yu et al. 2023) random drop at --density and rescale, then TIES' sign election;
             equal ranks only; the drop is seeded (--seed)

What PEFT needs is checked first, in one line each: two or more distinct LoRA adapters, all of the
base the first was trained on (`harness.adapters.mismatch`), equal ranks where the method needs
them. The directory is written atomically, with the tokenizer and chat template of the first source
and `lorabench_merge.json`: sources (name, path, content hash, rank), method, weights, density,
seed, the base's identity and the PEFT version. The base identity there is what later commands
(eval, serve, merge) check the merged adapter against.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harness import adapters, paths
from harness.errors import LorabenchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    name: str
    equal_ranks: bool  # PEFT 0.21 `_check_add_weighted_adapter` refuses different ranks
    density: bool  # takes --density


METHODS = {
    "cat": Method("cat", equal_ranks=False, density=False),
    "svd": Method("svd", equal_ranks=False, density=False),
    "ties": Method("ties", equal_ranks=True, density=True),
    "dare_ties": Method("dare_ties", equal_ranks=True, density=True),
}
DEFAULT_DENSITY = 0.5
DEFAULT_NAME = "merged"
# Tokenizer and chat-template files a trained adapter carries; the merged one takes the first source's.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "tokenizer.model",
)


def rank_of(config: dict) -> int:
    """The rank PEFT allocates for an adapter: its `r`, or the largest of its rank pattern."""
    return max([int(config.get("r", 8)), *[int(v) for v in (config.get("rank_pattern") or {}).values()]])


def default_out(base_dir: Path, name: str = DEFAULT_NAME) -> Path:
    return paths.adapters_dir() / f"{name}-{adapters.base_name(base_dir)}"


def check(
    sources: list[Path],
    method: str,
    weights: list[float] | None,
    density: float | None,
    base: str | None = None,
) -> tuple[Path, list[float], float | None]:
    """(base_dir, weights, density) after every check that needs no model; one-line errors."""
    if method not in METHODS:
        raise LorabenchError(f"unknown --method {method!r}: choose {', '.join(METHODS)}")
    spec = METHODS[method]
    if len(sources) < 2:
        raise LorabenchError("merging needs two or more adapters: pass --adapters A B [...]")
    real = [p.resolve() for p in sources]
    twice = sorted({str(p) for p in real if real.count(p) > 1})
    if twice:
        raise LorabenchError(f"adapter {twice[0]} is given twice: give each adapter once (use --weights to weigh one more)")
    configs = [adapters.read_config(p) for p in sources]
    not_lora = [p.name for p, c in zip(sources, configs) if str(c.get("peft_type", "LORA")).upper() != "LORA"]
    if not_lora:
        raise LorabenchError(f"adapter(s) {', '.join(not_lora)} are not LoRA adapters (peft_type): only LoRA adapters merge")
    base_dir = adapters.base_dir_for(sources[0], base)
    for p in sources:
        if adapters.mismatch(p, base_dir) is not None:
            first = (
                adapters.describe(adapters.recorded_base(sources[0]))
                if base is None
                else adapters.describe(adapters.base_identity(base_dir))
            )
            raise LorabenchError(
                f"adapters of different bases: {p.name} was trained on {adapters.describe(adapters.recorded_base(p))}, "
                f"{sources[0].name if base is None else '--base'} on {first}: merge adapters of one base"
            )
    ranks = [rank_of(c) for c in configs]
    if spec.equal_ranks and len(set(ranks)) > 1:
        listed = ", ".join(f"{p.name} r={r}" for p, r in zip(sources, ranks))
        raise LorabenchError(f"--method {method} needs adapters of equal rank ({listed}): use --method cat or svd, which merge any ranks")
    weights = [1.0] * len(sources) if not weights else [float(w) for w in weights]
    if len(weights) != len(sources):
        raise LorabenchError(f"--weights gives {len(weights)} weight(s) for {len(sources)} adapters: give one per adapter, in order")
    if spec.density:
        density = DEFAULT_DENSITY if density is None else float(density)
        if not 0 < density <= 1:
            raise LorabenchError(f"--density {density} must be in (0, 1]: the share of each update that is kept")
    elif density is not None:
        raise LorabenchError(f"--density applies to ties and dare_ties, not to {method}: drop it")
    return base_dir, weights, density


def merge_adapters(
    sources: list[str | Path],
    method: str,
    weights: list[float] | None = None,
    *,
    density: float | None = None,
    svd_rank: int | None = None,
    out: Path | None = None,
    name: str = DEFAULT_NAME,
    base: str | None = None,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Write the merged adapter (atomically) and return its directory."""
    dirs = [adapters.resolve(s) for s in sources]
    base_dir, weights, density = check(dirs, method, weights, density, base)
    if svd_rank is not None and method != "svd":
        raise LorabenchError(f"--svd-rank applies to --method svd, not to {method}: drop it")
    if svd_rank is not None and svd_rank < 1:
        raise LorabenchError(f"--svd-rank {svd_rank} must be 1 or more")
    if not name or "/" in name or name.startswith("."):
        raise LorabenchError(f"--name {name!r} must be a plain directory name, e.g. {DEFAULT_NAME}")
    out = Path(out).expanduser() if out else default_out(base_dir, name)
    if any(out.resolve() == d.resolve() for d in dirs):
        raise LorabenchError(f"--out {out} is one of the adapters being merged: write the merge elsewhere")
    if out.exists() and not force:
        raise LorabenchError(f"{out} exists: pass --force to replace it, or --out/--name for another directory")

    import peft
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from harness import provenance
    from harness.atomic import atomic_dir, write_json

    names = [f"source{i}" for i in range(len(dirs))]
    log.info("merging %s with %s onto %s", ", ".join(str(d) for d in dirs), method, base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, dirs[0], adapter_name=names[0])
    for n, d in zip(names[1:], dirs[1:]):
        model.load_adapter(d, adapter_name=n)
    torch.manual_seed(seed)  # dare_ties drops entries at random
    try:
        model.add_weighted_adapter(names, weights, adapter_name="default", combination_type=method, svd_rank=svd_rank, density=density)
    except (ValueError, TypeError) as exc:  # e.g. target modules given as a regex in one and a list in another
        raise LorabenchError(f"PEFT cannot merge these adapters with {method}: {exc}") from None
    merged_rank = model.peft_config["default"].r
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, selected_adapters=["default"])
        tokenizer_from = dirs[0]
        for f in TOKENIZER_FILES:
            if (dirs[0] / f).is_file():
                shutil.copy2(dirs[0] / f, tmp / f)
        if (dirs[0] / "config.json").is_file():  # the base's config, which Axolotl saves beside an adapter
            shutil.copy2(dirs[0] / "config.json", tmp / "config.json")
        write_json(
            tmp / adapters.MERGE_FILE,
            {
                "method": method,
                "weights": weights,
                "density": density,
                "svd_rank": svd_rank,
                "seed": seed,
                "rank": merged_rank,
                "sources": [
                    {
                        "name": adapters.display_name(d),
                        "path": str(d),
                        "sha256": provenance.tree_sha256(d)[0],
                        "rank": rank_of(adapters.read_config(d)),
                        "weight": w,
                    }
                    for d, w in zip(dirs, weights)
                ],
                "tokenizer_from": str(tokenizer_from),
                "base": adapters.base_identity(base_dir),
                "peft": peft.__version__,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "code": {"commit": provenance.git_commit()},
            },
        )
    log.info("merged adapter (%s, rank %d) written to %s", method, merged_rank, out)
    return out
