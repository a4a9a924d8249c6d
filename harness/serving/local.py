"""The local backend: a base model and its LoRA adapters in this process (transformers + peft).

The base is loaded once; every adapter is loaded into the same `PeftModel` under its own name
(`PeftModel.from_pretrained` for the first, `load_adapter` for the others), and a request picks
one with `set_adapter`, or the base with the `disable_adapter()` context. Nothing is reloaded
when the adapter changes. Tokens stream through transformers' `TextIteratorStreamer` from a
generation thread; one generation runs at a time, and a consumer that stops reading stops it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from harness.adapters import base_name
from harness.serving import adapters as adapter_dirs
from harness.serving.backend import (
    BASE,
    AdapterMissingError,
    BackendError,
    GenerationSettings,
    Message,
)

log = logging.getLogger(__name__)


class LocalBackend:
    def __init__(
        self,
        base: str | Path | None = None,
        adapters: dict[str, Path] | None = None,
        *,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        from harness.models import registry

        self.base = str(base or registry.EMBEDDED)
        self.base_dir = registry.resolve(self.base)  # one-line error when it is not prepared
        self.base_id = base_name(self.base)
        self.adapters = {name: adapter_dirs.check(name, path) for name, path in (adapters or {}).items()}
        self.device = device
        self.threads = threads
        self.description = f"local: {self.base_id} ({self.base_dir}) with transformers on {device}"
        self.served = None  # the serving manifest its adapters came from, if any
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._model = None
        self._tokenizer = None

    def list_adapters(self) -> list[str]:
        return [BASE, *self.adapters]

    def load(self) -> None:
        """Load the base and every adapter (once; later calls return at once)."""
        with self._load_lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            if self.threads:
                torch.set_num_threads(self.threads)
            log.info("loading %s from %s", self.base_id, self.base_dir)
            tokenizer = AutoTokenizer.from_pretrained(self.base_dir)
            model = AutoModelForCausalLM.from_pretrained(self.base_dir, dtype="auto" if self.device != "cpu" else torch.float32)
            model.to(self.device)
            if self.adapters:
                from peft import PeftModel

                items = iter(self.adapters.items())
                first, first_path = next(items)
                log.info("loading adapter %s from %s", first, first_path)
                model = PeftModel.from_pretrained(model, first_path, adapter_name=first)
                for name, path in items:
                    log.info("loading adapter %s from %s", name, path)
                    model.load_adapter(path, adapter_name=name)
            model.eval()
            self._tokenizer, self._model = tokenizer, model

    def stream_chat(self, messages: list[Message], adapter: str, settings: GenerationSettings) -> Iterator[str]:
        if adapter != BASE and adapter not in self.adapters:
            have = ", ".join(self.list_adapters())
            raise AdapterMissingError(
                f"adapter {adapter!r} is not loaded (this backend has: {have}); train it or restart with --adapter {adapter}=DIR"
            )
        if not messages:
            raise BackendError("nothing to answer: send at least one message")
        self.load()
        return self._stream(list(messages), adapter, settings)

    def _adapter_context(self, adapter: str):
        model = self._model
        if not self.adapters:
            return contextlib.nullcontext()
        if adapter == BASE:
            return model.disable_adapter()
        model.set_adapter(adapter)
        return contextlib.nullcontext()

    def _stream(self, messages: list[Message], adapter: str, settings: GenerationSettings) -> Iterator[str]:
        import torch
        from transformers import (
            StoppingCriteria,
            StoppingCriteriaList,
            TextIteratorStreamer,
        )

        tokenizer, model = self._tokenizer, self._model
        stop = threading.Event()

        class _StopWhenAsked(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return stop.is_set()

        with self._lock:  # one generation at a time: the adapter choice is the model's state
            inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
            kwargs = dict(
                **inputs,
                streamer=streamer,
                max_new_tokens=settings.max_new_tokens,
                repetition_penalty=settings.repetition_penalty,
                stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]),
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
            if settings.temperature > 0:
                kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
            else:
                kwargs.update(do_sample=False)
            failure: list[BaseException] = []

            def generate() -> None:
                try:
                    if settings.seed is not None:
                        torch.manual_seed(settings.seed)
                    with torch.inference_mode(), self._adapter_context(adapter):
                        model.generate(**kwargs)
                except BaseException as exc:  # surfaced to the reader below
                    failure.append(exc)
                    streamer.end()

            thread = threading.Thread(target=generate, name=f"generate-{adapter}", daemon=True)
            thread.start()
            try:
                for text in streamer:
                    if text:
                        yield text
            finally:
                stop.set()  # a reader that stops early (closed generator) stops generation too
                thread.join()
        if failure:
            raise BackendError(f"generation with {adapter!r} failed: {failure[0]}") from failure[0]
