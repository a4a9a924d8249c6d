"""lm-eval's `hf` model with a faster greedy `generate_until`: the same tokenisation, prompts and
text post-processing, a leaner decode loop.

What it changes, each measured by benchmarks/eval_throughput.py:
- on CPU, an adapter is merged into a full-precision copy of the weights for generation (peft's
  merge_and_unload), so a step is one matmul per projection instead of three (on a GPU the copy
  would double a large base's memory, so the adapter generates unmerged there);
- a row leaves the batch as soon as it hits an EOS token or a stop sequence (lm-eval's HFLM keeps
  every row generating until the whole batch is done) and its freed slot is refilled with the
  next prompt (continuous batching: the new row is prefilled alone and its KV cache left-padded
  into the running batch);
- stop sequences are checked on the tail of the rows still running, once per step;
- on a CPU in float32, each linear layer multiplies by a copy of its weights packed once for
  oneDNN (torch's own CPU kernels, the ones torch.compile's freezing uses): an unpacked matmul
  repacks the weights on every call, which at a decode step's few rows cost about a quarter of an
  MLP layer's time and over half of the vocabulary projection's ("Packed weights" in
  benchmarks/RESULTS.md). It rounds differently from stock's matmul, in the last bits of float32;
- on a CPU the prompts are dealt to one decode worker per torch thread, each a batch of its own on
  one thread: a decode step's small matmuls gain little from a second thread, while batches side by
  side add up (benchmarks/decode_workers.py). The answers are the same with one worker or two.
Prompts are taken longest first, as stock lm-eval takes them. Sampled requests (do_sample) and
generation arguments this loop does not implement go to HFLM's own generate_until, unchanged.
Log-likelihood requests use HFLM's (unmerged) model.
"""

from __future__ import annotations

import copy
import logging
from contextlib import contextmanager, nullcontext

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text

log = logging.getLogger(__name__)

NAME = "lorabench-hf"
# Generation arguments a greedy loop may ignore (top_p/top_k/temperature do nothing without sampling).
_GREEDY_KEYS = {"until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k"}


def is_greedy(gen_kwargs: dict) -> bool:
    """Whether stock HFLM would decode these arguments greedily with nothing this loop lacks."""
    if set(gen_kwargs) - _GREEDY_KEYS:
        return False
    do_sample = gen_kwargs.get("do_sample")
    if do_sample is None:  # HFLM: temperature 0 (its default) means greedy
        return float(gen_kwargs.get("temperature", 0.0)) == 0.0
    return do_sample is False


def merged_copy(model):
    """A plain transformers model with a PEFT model's adapters folded into its weights, on a copy:
    the PEFT model itself is left as it was. A model without adapters is returned as it is."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return model
    if not isinstance(model, PeftModel):
        return model
    first = next(model.parameters())
    if first.device.type != "cpu":
        # A second copy of a 7B base would double its accelerator memory (and a float32 one
        # quadruple a bf16 base's): there the adapter generates unmerged. Measured only on CPU.
        log.debug("generating with the unmerged adapter on %s (a merged copy would double the model's memory)", first.device)
        return model
    dtype = first.dtype
    twin = copy.deepcopy(model)
    if dtype not in (torch.float32, torch.float64):
        twin = twin.float()  # merge W + BA at full precision, round once
    merged = twin.merge_and_unload()
    return merged.to(dtype).eval()


ATTENTION = "lorabench_sdpa"


def ready_for_generation(model):
    """`model` with the grouped-head decode attention below (when it runs transformers' sdpa)."""
    if getattr(model.config, "_attn_implementation", None) == "sdpa":
        _register_attention()
        model.set_attn_implementation(ATTENTION)
    return model


def can_pack(model) -> bool:
    """Whether `model`'s linear layers can run on oneDNN-packed weights: float32 on a CPU."""
    first = next(model.parameters())
    return (
        first.device.type == "cpu"
        and first.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    )


class PackedLinears:
    """A model's `torch.nn.Linear` layers with their weights packed once for oneDNN; `active()`
    runs them on the packed copies and restores them after. The model itself is not changed, so
    log-likelihood requests and training see the plain layers."""

    def __init__(self, model, rows: int):
        self.layers = [m for m in model.modules() if type(m) is torch.nn.Linear]
        with torch.inference_mode():
            # `rows` is oneDNN's hint of the rows per call (the batch width); any count works.
            self.packed = [torch.ops.mkldnn._reorder_linear_weight(m.weight.detach(), rows) for m in self.layers]

    @contextmanager
    def active(self):
        for layer, weight in zip(self.layers, self.packed, strict=True):
            layer.forward = _packed_forward(weight, layer.bias)
        try:
            yield
        finally:
            for layer in self.layers:
                del layer.forward


def _packed_forward(weight, bias):
    def forward(x):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

    return forward


def _gqa_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' sdpa attention, except on a padded decode step (one query per row, a mask):
    there torch's CPU flash kernel, given the key/value heads repeated per query head over the
    whole cache, was a quarter of the step; two batched matmuls over the grouped heads do the
    same sums without the copies."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is None or query.shape[2] != 1 or dropout or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    rows, heads, _, dim = query.shape
    groups = key.shape[1]
    q = query.reshape(rows, groups, heads // groups, dim)
    scores = torch.matmul(q, key.transpose(-1, -2)) * (scaling if scaling is not None else dim**-0.5)
    mask = attention_mask.reshape(rows, 1, 1, -1)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min) if mask.dtype == torch.bool else scores + mask
    out = torch.matmul(scores.softmax(-1), value)  # [rows, groups, heads per group, dim]
    return out.reshape(rows, 1, heads, dim), None


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION, _gqa_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)


def _growing_cache(config, room: int):
    """A transformers DynamicCache whose layers write each step into spare room instead of
    concatenating (which copies the whole cache every token)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                self.set(key_states[..., :0, :], value_states[..., :0, :])
            n, q = self.keys.shape[-2], key_states.shape[-2]
            if n + q > self.k_buf.shape[-2]:
                self.set(self.keys, self.values, room=q + room)
            self.k_buf[..., n : n + q, :] = key_states
            self.v_buf[..., n : n + q, :] = value_states
            self.keys, self.values = self.k_buf[..., : n + q, :], self.v_buf[..., : n + q, :]
            return self.keys, self.values

        def set(self, keys, values, room: int = 0):
            """Hold `keys`/`values` ([rows, heads, tokens, dim]) with `room` more tokens free."""
            b, h, n, d = keys.shape
            self.k_buf, self.v_buf = keys.new_empty((b, h, n + room, d)), values.new_empty((b, h, n + room, d))
            self.k_buf[..., :n, :], self.v_buf[..., :n, :] = keys, values
            self.keys, self.values = self.k_buf[..., :n, :], self.v_buf[..., :n, :]

    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() for _ in cache.layers]
    return cache


class _Batch:
    """The running rows of a continuous batch: their KV cache, attention mask and next positions."""

    def __init__(self, model, pad_id: int, room: int):
        self.model = model
        self.pad_id = pad_id
        self.room = room  # spare cache tokens a row's prefill allocates: its generation budget
        self.prefix = None  # the KV cache of the prompts' common first tokens
        self.rows: list[int] = []  # request index of each batch row
        self.cache = None
        self.mask: torch.Tensor | None = None  # [rows, cached tokens]
        self.pos: torch.Tensor | None = None  # [rows] position of the next token
        self.next: torch.Tensor | None = None  # [rows] the token each row feeds next

    def __len__(self) -> int:
        return len(self.rows)

    def share_prefix(self, prefix: list[int]) -> None:
        """Prefill `prefix`, which every prompt to come starts with, once; `add` then prefills only
        the rest of each prompt on a copy of its cache."""
        self.prefix = _growing_cache(self.model.config, 0)
        ids = torch.tensor([prefix], dtype=torch.long)
        self.model(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=self.prefix, use_cache=True, logits_to_keep=1)

    def add(self, row: int, prompt: list[int]) -> None:
        """Prefill request `row`'s prompt alone (no padding) and join it to the running rows; its first
        generated token becomes the last entry of `next`."""
        cache = _growing_cache(self.model.config, self.room)
        done = 0
        if self.prefix is not None:
            for layer, shared in zip(cache.layers, self.prefix.layers, strict=True):
                layer.lazy_initialization(shared.keys, shared.values)
                layer.set(shared.keys, shared.values, room=len(prompt) + self.room)
            done = self.prefix.get_seq_length()
        ids = torch.tensor([prompt[done:]], dtype=torch.long)
        mask = torch.ones((1, len(prompt)), dtype=torch.long)
        position = torch.arange(done, len(prompt), dtype=torch.long)[None]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=position, past_key_values=cache, use_cache=True, logits_to_keep=1)
        first = out.logits[:, -1, :].float().argmax(-1)
        pos = torch.tensor([len(prompt)], dtype=torch.long)
        if self.cache is None:
            self.cache, self.mask, self.pos, self.next = cache, mask, pos, first
        else:
            self._join(cache, mask, pos, first)
        self.rows.append(row)

    def _join(self, cache, mask, pos, first) -> None:
        # Left-pad the shorter side's keys/values (masked out) so both have the same length.
        width = max(self.mask.shape[1], mask.shape[1])
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            keys = torch.cat([_left_pad(old.keys, width), _left_pad(new.keys, width)], dim=0)
            values = torch.cat([_left_pad(old.values, width), _left_pad(new.values, width)], dim=0)
            old.set(keys, values, room=self.room)
        self.mask = torch.cat([_left_pad(self.mask, width, dim=1), _left_pad(mask, width, dim=1)], dim=0)
        self.pos = torch.cat([self.pos, pos])
        self.next = torch.cat([self.next, first])

    def keep(self, keep: list[int]) -> None:
        """Keep only the batch rows at positions `keep`; trim columns no remaining row attends to."""
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[j] for j in keep]
        if not keep:
            self.cache = self.mask = self.pos = self.next = None
            return
        idx = torch.tensor(keep, dtype=torch.long)
        self.mask, self.pos, self.next = self.mask[idx], self.pos[idx], self.next[idx]
        start = int((self.mask.sum(0) == 0).long().cumprod(0).sum())  # leading all-padding columns
        for layer in self.cache.layers:
            layer.set(layer.keys[idx, :, start:], layer.values[idx, :, start:], room=self.room)
        self.mask = self.mask[:, start:]

    def step(self) -> torch.Tensor:
        """Feed each row its next token; return the tokens that follow."""
        self.mask = torch.cat([self.mask, torch.ones((len(self.rows), 1), dtype=torch.long)], dim=1)
        out = self.model(
            input_ids=self.next[:, None],
            attention_mask=self.mask,
            position_ids=self.pos[:, None],
            past_key_values=self.cache,
            use_cache=True,
        )
        self.pos = self.pos + 1
        self.next = out.logits[:, -1, :].float().argmax(-1)
        return self.next


_MIN_SHARED = 8  # common prompt tokens worth a shared prefill
# Greedy answers already generated in this process: (weights, context, arguments) -> text. Greedy
# decoding here gives the same text at any batch and with any batch-mates (tests/test_fast_hf.py), so
# with reuse_answers a request asked again of the same weights (a routed system's request, sent to
# the adapter that answered it in the adapter's own cell) is answered from here, not generated twice.
_ANSWERS: dict[tuple, str] = {}


def weights_id(path) -> str:
    """A model or adapter directory's content hash (cached by size and mtime), else the name given."""
    from pathlib import Path

    if not path:
        return ""
    if Path(str(path)).is_dir():
        from harness import provenance

        return provenance.dir_fingerprint(Path(str(path)))
    return str(path)


def _common_prefix(prompts: list[list[int]]) -> int:
    """How many first tokens all prompts share, leaving each at least one of its own to prefill."""
    shortest = min(len(p) for p in prompts)
    n = 0
    while n < shortest - 1 and all(p[n] == prompts[0][n] for p in prompts):
        n += 1
    return n


def _left_pad(t: torch.Tensor, width: int, dim: int = 2) -> torch.Tensor:
    short = width - t.shape[dim]
    if short <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = short
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class _StopCheck:
    """lm-eval's stop rule for one request's arguments: an EOS token id, or a stop string in the
    decoded last (its length in tokens + 2) tokens of the continuation."""

    def __init__(self, tokenizer, until: list[str], eos_ids: set[int]):
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.strings = [(s, len(tokenizer.encode(s, add_special_tokens=False)) + 2) for s in until if s]

    def done(self, toks: list[int]) -> bool:
        if toks[-1] in self.eos_ids:
            return True
        for s, back in self.strings:
            if s in self.tokenizer.decode(toks[-back:]):
                return True
        return False


def _workers(device) -> int:
    """Decode workers on a CPU: one per core torch would use (a decode step's matmuls are too small
    for threads to share well: "Decode workers" in benchmarks/RESULTS.md); on a GPU one batch."""
    if str(device).startswith("cpu"):
        return max(1, torch.get_num_threads())
    return 1


def _in_threads(run, queues: list[list[int]]) -> None:
    """`run(queue)` for each queue in its own thread, torch on one thread each (its ops release the
    GIL). The weights are shared, read-only; each worker has its own batch and KV cache."""
    import threading

    threads_before = torch.get_num_threads()
    errors: list[BaseException] = []

    def work(queue):
        try:
            with torch.inference_mode():
                run(queue)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            errors.append(exc)

    torch.set_num_threads(1)
    try:
        pool = [threading.Thread(target=work, args=(q,), name=f"decode-{k}") for k, q in enumerate(queues)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        torch.set_num_threads(threads_before)
    if errors:
        raise errors[0]


@register_model(NAME)
class FastHFLM(HFLM):
    """HFLM whose greedy generate_until drops finished rows, refills the batch and runs a merged adapter."""

    def __init__(
        self,
        *args,
        merge_adapter: bool = True,
        refill: bool = True,
        share_prefix: bool = True,
        reuse_answers: bool = False,
        workers: int | None = None,
        pack_weights: bool = True,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.reuse_answers = reuse_answers  # answer from _ANSWERS (never in a benchmark that times generation)
        self.share_prefix = share_prefix
        self.merge_adapter = merge_adapter
        self.refill = refill
        self.pack_weights = pack_weights
        self._packed: dict[int, tuple] = {}  # id(generation model) -> (that model, its PackedLinears)
        self.workers = _workers(self.device) if workers is None else max(1, int(workers))
        self._gen_model = None
        # Which weights answer: greedy text is a function of these, the prompt and the arguments alone.
        self.identity = (weights_id(kwargs.get("pretrained")), weights_id(kwargs.get("peft")))

    def generation_model(self):
        if self._gen_model is None:
            self._gen_model = ready_for_generation(merged_copy(self.model) if self.merge_adapter else self.model)
        return self._gen_model

    def _packed_layers(self, model):
        """Run `model`'s linear layers on packed weights, where that is possible and asked for."""
        if not (self.pack_weights and can_pack(model)):
            return nullcontext()
        # Per model: a routed system (harness.matrix.routed) generates with one model per adapter.
        held = self._packed.get(id(model))
        if held is None or held[0] is not model:
            width = self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 else 8
            held = self._packed[id(model)] = (model, PackedLinears(model, width))
        return held[1].active()

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        greedy = [i for i, r in enumerate(requests) if is_greedy(r.args[1])]
        other = [i for i, r in enumerate(requests) if not is_greedy(r.args[1])]
        res: list[str | None] = [None] * len(requests)
        if other:
            for i, s in zip(other, super().generate_until([requests[i] for i in other], disable_tqdm), strict=True):
                res[i] = s
        groups: dict[str, list[int]] = {}
        for i in greedy:
            groups.setdefault(repr(sorted(requests[i].args[1].items())), []).append(i)
        for idx in groups.values():
            keys = {i: (self.identity, requests[i].args[0], repr(sorted(requests[i].args[1].items()))) for i in idx}
            fresh = [i for i in idx if not self.reuse_answers or keys[i] not in _ANSWERS]
            if fresh:
                for i, s in zip(fresh, self._greedy([requests[i].args for i in fresh]), strict=True):
                    res[i] = s
                    if self.reuse_answers:
                        _ANSWERS[keys[i]] = s
            for i in idx:
                res[i] = res[i] if res[i] is not None else _ANSWERS[keys[i]]
                self.cache_hook.add_partial("generate_until", requests[i].args, res[i])
        return res

    def _eos_ids(self) -> set[int]:
        ids = getattr(self.generation_model().generation_config, "eos_token_id", None)
        ids = {ids} if isinstance(ids, int) else set(ids or [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    @torch.inference_mode()
    def _greedy(self, args: list[tuple[str, dict]]) -> list[str]:
        """Greedy continuations of the contexts in `args` (all with the same generation arguments)."""
        kwargs = normalize_gen_kwargs(dict(args[0][1]), self.max_gen_toks)
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_new = kwargs.pop("max_gen_toks")
        max_ctx = self.max_length - max_new
        # The same tokens as HFLM's tok_batch_encode gives each context (left truncation included).
        prompts = [self.tok_batch_encode([ctx], left_truncate_len=max_ctx, truncation=self.truncation)[0][0].tolist() for ctx, _ in args]
        order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), args[i][0]))
        stop = _StopCheck(self.tokenizer, until, self._eos_ids())
        width = self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 else 8
        outs: list[list[int]] = [[] for _ in prompts]
        model = self.generation_model()
        workers = min(self.workers, len(prompts))
        # Longest first, dealt round-robin, so each worker gets a like share of the long prompts.
        queues = [order[w::workers] for w in range(workers)]
        run = lambda queue: self._decode(model, queue, prompts, outs, stop, width, max_new)  # noqa: E731
        with self._packed_layers(model):
            if workers == 1:
                run(queues[0])
            else:
                _in_threads(run, queues)
        return [self._text(outs[i], until) for i in range(len(prompts))]

    def _decode(self, model, queue: list[int], prompts, outs, stop, width: int, max_new: int) -> None:
        """Greedy tokens for the prompts in `queue` into `outs`: one continuous batch of `width` rows."""
        batch = _Batch(model, self.tokenizer.pad_token_id or 0, room=max_new)
        queue = list(queue)
        mine = [prompts[i] for i in queue]
        shared = _common_prefix(mine) if self.share_prefix and len(mine) > 1 else 0
        if shared >= _MIN_SHARED:
            batch.share_prefix(mine[0][:shared])
        filling = True  # without refill, prompts join only a batch that has emptied
        while queue or len(batch):
            filling = filling or not len(batch)
            if queue and len(batch) < width and (self.refill or filling):
                # A freed slot takes the next prompt, prefilled alone (as stock batch 1 prefills it).
                row = queue.pop(0)
                batch.add(row, prompts[row])
                fresh = [(len(batch) - 1, row, int(batch.next[-1]))]
                keep = list(range(len(batch) - 1))
            else:
                filling = False
                fresh = [(j, row, tok) for j, (row, tok) in enumerate(zip(batch.rows, batch.step().tolist(), strict=True))]
                keep = []
            for j, row, tok in fresh:
                outs[row].append(tok)
                if len(outs[row]) < max_new and not stop.done(outs[row]):
                    keep.append(j)
            batch.keep(keep)

    def _text(self, toks: list[int], until: list[str]) -> str:
        # As HFLM.generate_until turns a continuation into text.
        if isinstance(self.think_end_token, int):
            hits = [i for i, t in enumerate(toks) if t == self.think_end_token]
            if hits:
                toks = toks[hits[-1] + 1 :]
        s = self.tok_decode(toks)
        if isinstance(self.think_end_token, int):
            s = s.lstrip()
        think = self.think_end_token if isinstance(self.think_end_token, str) else None
        return postprocess_generated_text(generation=s, stop=until, think_end_token=think)
