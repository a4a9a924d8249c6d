"""Chat with a base model and its LoRA adapters: one small interface, two backends.

- `LocalBackend` (`harness.serving.local`): the base and its adapters in this process with
  transformers + peft; adapters switch without reloading the base. The offline default.
- `RemoteBackend` (`harness.serving.remote`): any OpenAI-compatible chat endpoint (TGI, vLLM,
  llama.cpp's server, or `lorabench serve --api`), choosing the adapter with the request's `model`.
- `harness.serving.api`: serves a backend as an OpenAI-compatible endpoint on loopback.
- `harness.serving.ui`: the Streamlit chat page (`serving/chat_app.py`).
- `harness.serving.chains`: chains of adapters, one step each (`lorabench chain`, the page's Chains
  mode in `harness.serving.chains_page`); see docs/chains.md.

Nothing heavy is imported here: the remote path needs no torch.
"""

from harness.serving.backend import (
    BASE,
    AdapterMissingError,
    Backend,
    BackendError,
    BackendUnavailableError,
    GenerationSettings,
)

__all__ = [
    "BASE",
    "AdapterMissingError",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "GenerationSettings",
]
