"""An Axolotl plugin that expands `${LORABENCH_HOME}` and `~` in a recipe's paths.

Axolotl reads paths verbatim (it expands neither `~` nor environment variables), yet the models and
data live under $LORABENCH_HOME (default ~/.cache/lorabench). Axolotl calls `register(cfg)` on every
plugin a config lists before it validates the config, so the committed recipes can say
`${LORABENCH_HOME}/data/code/train.jsonl` and run unchanged with `accelerate launch`.
"""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin


class LorabenchPaths(BasePlugin):
    def register(self, cfg: dict) -> None:
        from harness.train.recipes import expand_paths

        for key, value in list(cfg.items()):
            cfg[key] = expand_paths(value)
