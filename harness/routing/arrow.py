"""The Arrow router: peft's Arrow (Ostapenko et al. 2024, "Towards Modular LLMs by Building and
Reusing a Library of LoRAs") over the served adapters, on the local backend.

Arrow needs no training data: in every LoRA layer, each adapter (expert) gets a prototype, the top
right singular vector of its update B·A; each token's hidden state is compared with the prototypes
(absolute cosine-like dot product), the top-k experts are mixed with a softmax of those scores, and
the token goes through that mixture. It routes per token, per layer, inside the model
(`build_model` returns that model, to be evaluated or served as one system).

A request, though, is answered by one adapter. The per-prompt decision here: run the prompt (its
user turn through the base's chat template, as the backend would send it, cut to MAX_TOKENS) once
through the Arrow model, read the mixing weights every Arrow layer gives each expert for each token
(recomputed from the layer's own prototypes and inputs by a forward hook, exactly as the layer
computes them), average them over the prompt's tokens and over the layers, and pick the expert with
the largest mean weight. Arrow has no "none of these" outcome: it always picks one of the served
adapters, never the base.
"""

from __future__ import annotations

import threading
from pathlib import Path

from harness.errors import LorabenchError

TOP_K = 3  # peft's default; capped at the number of experts
TEMPERATURE = 1.0
SEED = 0  # the prototypes' power iteration starts from a seeded vector: same adapters, same prototypes
MAX_TOKENS = 1024


def build_model(base_path: str | Path, adapter_paths, *, top_k: int = TOP_K, temperature: float = TEMPERATURE, seed: int = SEED):
    """The base with `adapter_paths` (a list, or name -> path) combined by peft's Arrow router
    (adapter `arrow_router` active; experts task_0, task_1, ... in the given order)."""
    import torch
    from peft import ArrowConfig, create_arrow_model
    from transformers import AutoModelForCausalLM

    paths = [str(Path(p).expanduser()) for p in (adapter_paths.values() if isinstance(adapter_paths, dict) else adapter_paths)]
    if not paths:
        raise LorabenchError("Arrow combines adapters, and none was given: the serving manifest serves no adapter (use --router centroid)")
    base = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.float32)
    config = ArrowConfig(top_k=min(top_k, len(paths)), router_temperature=temperature, rng_seed=seed)
    try:
        model = create_arrow_model(base, paths, config)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise LorabenchError(
            f"Arrow cannot combine these adapters ({first}): it needs LoRAs of the same rank on the same linear modules; "
            f"train them with the same lora_r and target modules, or use --router centroid"
        ) from None
    model.eval()
    return model


def arrow_layers(model) -> list:
    from peft.tuners.lora.arrow import ArrowLoraLinearLayer

    return [m for m in model.modules() if isinstance(m, ArrowLoraLinearLayer)]


class ArrowRouter:
    method = "arrow"

    def __init__(self, manifest: dict, base_dir: Path, experts: dict[str, Path]) -> None:
        self.manifest = manifest
        self.base_dir = base_dir
        self.experts = experts  # serving name -> adapter dir, in expert order
        self._lock = threading.Lock()
        self._model = None
        self._tokenizer = None

    @classmethod
    def load(cls, base: str, manifest: dict) -> "ArrowRouter":
        from harness.models import registry
        from harness.serving import manifest as serving_manifest

        experts = serving_manifest.Manifest(
            Path(manifest.get("path") or "serving manifest"), manifest.get("base", base), manifest["adapters"], manifest["benchmarks"]
        ).paths()
        if not experts:
            raise LorabenchError(
                "the serving manifest serves no adapter (the base wins every benchmark): Arrow has nothing to route among; "
                "every request goes to the base, or use --router centroid"
            )
        router = cls(manifest, registry.resolve(str(manifest.get("base") or base)), experts)
        router._load()
        return router

    def _load(self) -> None:
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(self.base_dir))
        self._model = build_model(self.base_dir, self.experts)

    def weights(self, text: str):
        """The prompt's mean Arrow weight per expert (over its tokens and every Arrow layer)."""
        import torch

        per_layer = []

        def hook(module, args, _output):
            x = args[0]
            tok = x.reshape(-1, x.shape[-1]).to(module.prototypes.dtype)
            sim = torch.abs(tok @ module.prototypes.T)
            top_v, idx = torch.topk(sim, module.top_k, dim=1)
            full = tok.new_full(sim.shape, float("-inf")).scatter_(1, idx, top_v)
            per_layer.append(torch.softmax(full / module.temperature, dim=1).mean(dim=0))

        messages = [{"role": "user", "content": text}]
        inputs = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        inputs = {k: v[:, :MAX_TOKENS] for k, v in inputs.items()}
        with self._lock:
            handles = [layer.register_forward_hook(hook) for layer in arrow_layers(self._model)]
            try:
                with torch.inference_mode():
                    self._model(**inputs)
            finally:
                for h in handles:
                    h.remove()
        return torch.stack(per_layer).mean(dim=0)

    def route(self, texts: list[str]) -> list[str]:
        names = list(self.experts)
        return [names[int(self.weights(t).argmax())] for t in texts]

    def describe(self) -> dict:
        from harness import provenance

        return {
            "method": self.method,
            "base": str(self.manifest.get("base")),
            "base_weights_sha256": provenance.weights_fingerprint(self.base_dir),
            "experts": {n: {"path": str(p), "sha256": provenance.tree_sha256(p)[0]} for n, p in self.experts.items()},
            "top_k": min(TOP_K, len(self.experts)),
            "temperature": TEMPERATURE,
            "seed": SEED,
            "max_tokens": MAX_TOKENS,
            "decision": "the expert with the largest Arrow mixing weight averaged over the prompt's tokens and all Arrow layers",
            "manifest": self.manifest.get("path"),
        }
