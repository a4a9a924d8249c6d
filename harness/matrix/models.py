"""The model a cell is evaluated with: lm-eval's `hf` model with lorabench's faster greedy generation
(`fast_hf`; peft= for an adapter) or lm-eval's vLLM model."""

from __future__ import annotations

import logging

from harness import adapters as adapter_dirs
from harness.errors import LorabenchError

log = logging.getLogger(__name__)


def load_lm(base, adapter, settings, *, reuse_answers: bool = False):
    """An lm-eval model of `base` (+ `adapter`) for `settings` (a `run.EvalSettings`); `reuse_answers`:
    greedy answers this process already generated with the same weights are not generated again."""
    if settings.backend == "hf":
        import torch

        from harness.matrix.fast_hf import FastHFLM
        from harness.matrix.routed import RoutedLM, RoutedSystem

        # lm-eval's hf model assumes CUDA unless told otherwise.
        device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs = {"pretrained": str(base.path), "batch_size": settings.batch_size, "dtype": settings.dtype, "device": device}
        if isinstance(adapter, RoutedSystem):
            from harness.routing import load_router

            log.debug("loading %s routed by %s over %s", base.name, adapter.method, ", ".join(adapter.adapters))
            return RoutedLM(router=load_router(base.name, adapter.method), adapters=adapter.adapters, reuse_answers=True, **kwargs)
        if adapter:
            kwargs["peft"] = str(adapter.path)
        log.debug("loading %s%s (hf, batch %s)", base.name, f" + {adapter.name}" if adapter else "", settings.batch_size)
        return FastHFLM(reuse_answers=reuse_answers, **kwargs)
    if settings.backend == "vllm":
        try:
            from lm_eval.models.vllm_causallms import VLLM
        except ImportError:
            raise LorabenchError(
                "the vllm backend needs vLLM: install it on a GPU machine (`uv pip install vllm`) or use --backend hf"
            ) from None
        kwargs = {"pretrained": str(base.path), "batch_size": "auto", "dtype": settings.dtype}
        if adapter:
            kwargs.update(enable_lora=True, lora_local_path=str(adapter.path), max_lora_rank=adapter_dirs.lora_rank(adapter.path))
        return VLLM(**kwargs)
    raise LorabenchError(f"unknown backend {settings.backend!r}: use hf or vllm")
