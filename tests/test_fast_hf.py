"""lorabench's generation model (`harness.matrix.fast_hf`) against stock lm-eval `HFLM`, on the real
embedded model: the same greedy answers as stock batch 1 (prompts of different lengths, so the
batch pads, drops finished rows and refills; one decode worker or two; linear layers on packed
weights), with and without a real PEFT adapter, and a merged adapter with the logits of peft's
unmerged model."""

from __future__ import annotations

import pytest

from tests.conftest import random_lora_adapter

QUESTIONS = [
    "Write a Python function that returns the square of a number.",
    "What is 2 + 2?",
    "Write a Python function `is_even(n)` that tells whether n is even, with a docstring and two examples of its use.",
    "Name a colour.",
    "Explain in one sentence what a list comprehension is.",
]


def _requests(lm, gen_kwargs: dict):
    from lm_eval.api.instance import Instance

    prompts = [lm.apply_chat_template([{"role": "user", "content": q}]) for q in QUESTIONS]
    return [
        Instance(request_type="generate_until", doc={}, arguments=(p, dict(gen_kwargs)), idx=0, metadata=("t", i, 1))
        for i, p in enumerate(prompts)
    ]


def _answers(lm, gen_kwargs: dict) -> list[str]:
    return lm.generate_until(_requests(lm, gen_kwargs), disable_tqdm=True)


@pytest.fixture(scope="module")
def adapter(embedded_model, tmp_path_factory):
    return random_lora_adapter(embedded_model, tmp_path_factory.mktemp("fast-hf") / "lora", seed=3)


GREEDY = {"until": [], "do_sample": False, "max_gen_toks": 24}
# A stop string the answers reach before the budget: rows finish at different steps.
STOP = {"until": ["."], "do_sample": False, "max_gen_toks": 24}


@pytest.mark.parametrize("with_adapter", [False, True], ids=["base", "adapter"])
def test_greedy_answers_equal_stock_batch_1(embedded_model, adapter, with_adapter):
    from lm_eval.models.huggingface import HFLM

    from harness.matrix.fast_hf import FastHFLM

    kwargs = {"pretrained": str(embedded_model), "device": "cpu", **({"peft": str(adapter)} if with_adapter else {})}
    stock = HFLM(batch_size=1, **kwargs)
    expected = {name: _answers(stock, g) for name, g in (("greedy", GREEDY), ("stop", STOP))}
    del stock
    assert any(a.count(".") == 0 for a in expected["stop"]) or len(set(map(len, expected["stop"]))) > 1
    # One decode worker, and two side by side (the CPU default: each on one torch thread).
    for batch, workers in ((1, 1), (2, 1), (8, 1), (2, 2), (8, 2)):
        fast = FastHFLM(batch_size=batch, workers=workers, **kwargs)
        assert _answers(fast, GREEDY) == expected["greedy"], f"batch {batch}, {workers} worker(s)"
        assert _answers(fast, STOP) == expected["stop"], f"batch {batch}, {workers} worker(s), stop string"
        if with_adapter:  # generation ran on a merged copy; the peft model lm-eval scores log-likelihoods with is untouched
            assert fast.generation_model() is not fast.model
            assert type(fast.model).__name__.startswith("Peft")


def test_merged_adapter_logits_match_peft(embedded_model, adapter):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.matrix.fast_hf import merged_copy

    tok = AutoTokenizer.from_pretrained(embedded_model)
    base = AutoModelForCausalLM.from_pretrained(embedded_model, dtype=torch.float32)
    ids = tok(QUESTIONS[2], return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        plain = base(ids).logits
        peft_model = PeftModel.from_pretrained(base, str(adapter)).eval()
        unmerged = peft_model(ids).logits
        merged_model = merged_copy(peft_model)
        merged = merged_model(ids).logits
        again = peft_model(ids).logits
    assert not isinstance(merged_model, PeftModel)
    assert (unmerged - plain).abs().max() > 1e-2  # the adapter changes the model
    assert torch.allclose(merged, unmerged, atol=1e-4, rtol=1e-4), (merged - unmerged).abs().max()
    assert torch.equal(again, unmerged)  # the peft model itself was not merged


def test_sampled_requests_go_to_stock(embedded_model):
    import torch
    from lm_eval.models.huggingface import HFLM

    from harness.matrix.fast_hf import FastHFLM, is_greedy

    sampled = {"until": [], "do_sample": True, "temperature": 0.8, "top_p": 0.95, "max_gen_toks": 12}
    answers = []
    for cls in (HFLM, FastHFLM):
        lm = cls(pretrained=str(embedded_model), device="cpu", batch_size=2)
        torch.manual_seed(7)
        answers.append(_answers(lm, sampled))
    assert answers[0] == answers[1]  # the same sampler, the same draws

    assert is_greedy({"until": [], "do_sample": False, "max_gen_toks": 8, "temperature": 0.8})
    assert is_greedy({"until": ["\n"]})  # HFLM's default temperature 0: greedy
    assert not is_greedy({"do_sample": True, "temperature": 0.8, "top_p": 0.95})
    assert not is_greedy({"do_sample": False, "num_beams": 4})  # beam search: stock's generate


def test_packed_linears_run_the_packed_copy_and_leave_the_model_as_it_was():
    import torch

    from harness.matrix.fast_hf import PackedLinears, can_pack

    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 48)
    model = torch.nn.Sequential(layer)
    if not can_pack(model):
        pytest.skip("packed weights need float32 on a CPU with oneDNN")
    x = torch.randn(4, 1, 64)
    with torch.inference_mode():
        before = model(x)
        packed = PackedLinears(model, rows=4)
        layer.weight.mul_(2)  # the packed copy keeps the weights it was made from
        with packed.active():
            inside = model(x)
        after = model(x)
    assert torch.allclose(inside, before, atol=1e-5), (inside - before).abs().max()
    assert not torch.allclose(after, before, atol=1e-2)  # outside, the layer's own (changed) weights
    assert "forward" not in vars(layer)  # its own forward is back
