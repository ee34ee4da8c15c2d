"""The small question-answer dataset shipped with trl-unlearn for the quick start.

The data were written for this project. The **forget** set is 16 short facts about one subject,
France (its capital, landmarks, history and language); the **retain** set is 24 facts from other
areas (other countries' capitals, science, space, literature and art). Every item was checked
against SmolLM2-135M-Instruct, the quick-start model: its greedy answer through the chat template
contains the key fact (``benchmarks/verify_quickstart_data.py`` reproduces the check). A model
that has forgotten the subject stops naming Paris, the Louvre or Napoleon while still answering
that Berlin is the capital of Germany.

Columns: ``question`` and ``answer`` (one sentence), plus ``keywords``: the accepted spellings of
the key fact, used to score a generation as "still knows it" (any keyword, case-insensitive, as a
whole word). The trainers only read ``question``/``answer``; pass ``with_keywords=False`` to drop
the extra column.
"""

from __future__ import annotations

import json
import re
from importlib import resources

QUICKSTART_RESOURCE = "resources/quickstart"
SPLITS = ("forget", "retain")


def _read_jsonl(name: str) -> list[dict]:
    path = resources.files("trl_unlearn").joinpath(f"{QUICKSTART_RESOURCE}/{name}.jsonl")
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_quickstart_records(split: str) -> list[dict]:
    """The rows of one split (``"forget"`` or ``"retain"``) as a list of dicts."""
    if split not in SPLITS:
        raise ValueError(f"unknown quick-start split {split!r}; expected one of {SPLITS}")
    return _read_jsonl(split)


def load_quickstart_dataset(with_keywords: bool = True):
    """Load the packaged quick-start data.

    Parameters
    ----------
    with_keywords : bool
        Keep the ``keywords`` column (list of accepted spellings of the key fact).

    Returns
    -------
    tuple of datasets.Dataset
        ``(forget, retain)`` with columns ``question``, ``answer`` (and ``keywords``).
    """
    from datasets import Dataset

    out = []
    for split in SPLITS:
        rows = load_quickstart_records(split)
        if not with_keywords:
            rows = [{"question": r["question"], "answer": r["answer"]} for r in rows]
        out.append(Dataset.from_list(rows))
    return out[0], out[1]


def mentions_key_fact(generation: str, keywords) -> bool:
    """Whether ``generation`` contains any of ``keywords`` as a whole word (case-insensitive)."""
    if isinstance(keywords, str):
        keywords = [keywords]
    return any(re.search(r"(?<!\w)" + re.escape(k) + r"(?!\w)", generation, re.IGNORECASE) for k in keywords)


__all__ = ["load_quickstart_dataset", "load_quickstart_records", "mentions_key_fact"]
