"""An Axolotl plugin that expands `${LORABENCH_HOME}` and `~` in a recipe's paths.

Axolotl reads paths verbatim (it expands neither `~` nor environment variables), yet the models and
data live under $LORABENCH_HOME (default ~/.cache/lorabench). Axolotl calls `register(cfg)` on every
plugin a config lists before it validates the config, so the committed recipes can say
`${LORABENCH_HOME}/data/code/train.jsonl` and run unchanged with `accelerate launch`.
"""

from __future__ import annotations

import logging

from axolotl.integrations.base import BasePlugin


class LorabenchPaths(BasePlugin):
    def register(self, cfg: dict) -> None:
        from harness.train.recipes import expand_paths

        for key, value in list(cfg.items()):
            cfg[key] = expand_paths(value)


class CpuMixedPrecision(BasePlugin):
    """Lets `bf16: true` train on a CPU. transformers refuses bf16 without a GPU unless `use_cpu` is
    set, and Axolotl has no key for it: with no CUDA device this plugin sets it, and the Trainer runs
    under CPU bf16 autocast. On a CPU without bf16 instructions (AVX512-BF16), where bf16 would be
    emulated and slower than float32, it turns bf16 off before Axolotl reads the config (so the base
    loads in float32 too). On a GPU it does nothing."""

    def register(self, cfg: dict) -> None:
        if cfg.get("bf16") is True and not _cuda() and not _cpu_bf16():
            logging.getLogger(__name__).warning("this CPU has no bf16 instructions: training in float32 instead")
            cfg["bf16"] = False

    def get_training_args(self, cfg) -> dict | None:
        if cfg.get("bf16") is True and not _cuda():
            return {"use_cpu": True}
        return None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _cpu_bf16() -> bool:
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported())
