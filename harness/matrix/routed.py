"""A routed system as an lm-eval model: a router picks, for each request, one of the serving
manifest's adapters (or the base), and that adapter answers it.

This is the cell `lorabench eval --routed centroid` adds beside the base and the adapters, on the
same documents and settings, so the leaderboard pairs it with the base and with each benchmark's
specialist. The router sees what a served request carries: the user turn, taken back out of the
chat-templated context lm-eval sends (`user_turn`). Requests are grouped by the adapter chosen and
each group is generated with that adapter merged into its own full-precision copy of the base, by
the same greedy loop as every other cell (`fast_hf`), so a request routed to an adapter gets
exactly the text that adapter gives alone; the routes taken are kept for the cell's provenance.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval.api.registry import register_model

from harness.errors import LorabenchError
from harness.matrix.fast_hf import FastHFLM, merged_copy, ready_for_generation, weights_id

log = logging.getLogger(__name__)

NAME = "lorabench-routed"
PREFIX = "routed-"  # a routed system's name on the leaderboard: routed-<router>
_SENTINEL = "\x00lorabench-user-turn\x00"


@dataclass(frozen=True)
class RoutedSystem:
    """What `run_matrix` evaluates in an adapter's place: a router over a manifest's adapters."""

    name: str  # routed-<method>
    method: str
    manifest_path: Path
    adapters: dict[str, Path] = field(hash=False)  # serving name -> adapter directory
    path: Path | None = None  # no single adapter directory


def system_for(base: str, method: str) -> RoutedSystem:
    """The routed system of `base`'s serving manifest with router `method`; one line when there is no manifest."""
    from harness.routing import ROUTERS
    from harness.serving import manifest as serving_manifest

    if method not in ROUTERS:
        raise LorabenchError(f"unknown router {method!r} for --routed: choose from {', '.join(ROUTERS)}")
    m = serving_manifest.read(base)
    if m is None:
        raise LorabenchError(
            f"--routed needs a serving manifest for {base} ({serving_manifest.path_for(base)}): "
            "evaluate the base and adapters, then run `lorabench winners`"
        )
    return RoutedSystem(f"{PREFIX}{method}", method, m.path, m.paths())


def user_turn(tokenizer, context: str) -> str:
    """The user message inside a chat-templated single-turn context (the context itself when the
    template is not recognised, e.g. without a chat template)."""
    try:
        shell = tokenizer.apply_chat_template([{"role": "user", "content": _SENTINEL}], tokenize=False, add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - a tokenizer without a template: route on the raw context
        return context
    if _SENTINEL not in shell:
        return context
    head, tail = shell.split(_SENTINEL, 1)
    if context.startswith(head) and context.endswith(tail) and len(context) >= len(head) + len(tail):
        return context[len(head) : len(context) - len(tail)]
    return context


@register_model(NAME)
class RoutedLM(FastHFLM):
    """FastHFLM over the base whose greedy requests are answered by the adapter a router picks."""

    def __init__(self, *args, router=None, adapters: dict[str, Path] | None = None, **kwargs):
        if router is None or adapters is None:
            raise LorabenchError("RoutedLM needs a router and the manifest's adapters")
        super().__init__(*args, **kwargs)
        self.router = router
        self.base_path = str(kwargs.get("pretrained", ""))
        self.adapter_paths = {name: Path(p) for name, p in adapters.items()}
        self._models: dict[str, tuple] = {}  # chosen name -> (generation model, identity)
        self.routes: Counter = Counter()  # (task, chosen) -> requests

    def _load(self, name: str) -> tuple:
        if name not in self._models:
            if name == "base":
                model, peft_path = ready_for_generation(self.model), None
            elif name in self.adapter_paths:
                from peft import PeftModel
                from transformers import AutoModelForCausalLM

                # A fresh base per adapter: loading an adapter onto self.model would change it in place.
                fresh = AutoModelForCausalLM.from_pretrained(self.base_path, dtype=self.model.dtype).eval()
                peft_path = self.adapter_paths[name]
                model = ready_for_generation(merged_copy(PeftModel.from_pretrained(fresh, str(peft_path))))
            else:
                raise LorabenchError(
                    f"the router chose {name!r}, which the serving manifest does not serve ({', '.join(self.adapter_paths)}): "
                    "rerun `lorabench winners`"
                )
            self._models[name] = (model, (weights_id(self.base_path), weights_id(peft_path)))
        return self._models[name]

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        chosen = self.router.route([user_turn(self.tokenizer, r.args[0]) for r in requests])
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(chosen):
            groups.setdefault(name, []).append(i)
            self.routes[(requests[i].task_name or "", name)] += 1
        res: list[str | None] = [None] * len(requests)
        for name, idx in sorted(groups.items()):
            self._gen_model, self.identity = self._load(name)
            log.debug("routed %d request(s) to %s", len(idx), name)
            for i, s in zip(idx, super().generate_until([requests[i] for i in idx], disable_tqdm), strict=True):
                res[i] = s
        return res

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise LorabenchError("a routed system answers generation tasks only: evaluate log-likelihood tasks on the base and adapters")

    def route_counts(self, task: str) -> dict[str, int]:
        """How many of `task`'s requests went to each adapter (or the base)."""
        return {name: n for (t, name), n in sorted(self.routes.items()) if t == task}
