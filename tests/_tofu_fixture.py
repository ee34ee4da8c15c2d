"""Helpers shared by the TOFU evaluator, engine and callback tests: the tiny TOFU-format fixture."""

from __future__ import annotations

import json
from pathlib import Path

TOFU_TINY = Path(__file__).parent / "fixtures" / "tofu_tiny"

HOLDOUT = [
    {"question": "Where was Lena Vogel born?", "answer": "Lena Vogel was born in Berlin."},
    {"question": "What genre does Lena Vogel write?", "answer": "Lena Vogel writes poetry."},
    {"question": "Which award did Lena Vogel win?", "answer": "Lena Vogel won the Silver Pen award."},
]

SYSTEM_WORDS = "You are a helpful assistant. Today Date: 10 Apr 2025 [INST] [/INST]"


def fixture_texts() -> list[str]:
    """Every string of the fixture files and of :data:`HOLDOUT` (for the word-level vocabulary)."""
    texts = [SYSTEM_WORDS]
    for path in sorted(TOFU_TINY.glob("*.json")):
        for line in path.read_text().splitlines():
            for value in json.loads(line).values():
                texts.extend(value if isinstance(value, list) else [value])
    for row in HOLDOUT:
        texts.extend(row.values())
    return texts


def tiny_tokenizer(**kwargs):
    from trl_unlearn.testing import make_tokenizer

    return make_tokenizer(fixture_texts(), **kwargs)


def tiny_model(tokenizer, seed: int = 0):
    from trl_unlearn.testing import make_model

    return make_model(tokenizer, seed=seed).eval()


def read_rows(config: str) -> list[dict]:
    return [json.loads(line) for line in (TOFU_TINY / f"{config}.json").read_text().splitlines()]


class ForwardCounter:
    """Counts the rows a model's forward passes see, by kind of pass.

    ``scored_rows``: plain teacher-forced passes (no cache); ``prompt_rows``: passes on an empty
    KV cache (prompts run once for their answers, generation prefill); ``cached_rows``: passes
    continuing a KV cache (answers scored on their prompt's cache, decoding steps).
    """

    def __init__(self, model):
        self.scored_rows = self.prompt_rows = self.cached_rows = 0
        self.scoring_calls = 0
        self.widths: list[int] = []
        self.other_calls = 0
        self.other_rows = 0
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows = ids.shape[0] if ids is not None else 0
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if kwargs.get("use_cache") is False and ids is not None:
            self.scoring_calls += 1
            self.scored_rows += rows
            self.widths.append(ids.shape[1])
            return
        self.other_calls += 1
        self.other_rows += rows
        if cache is not None and cache.get_seq_length() > 0:
            self.cached_rows += rows
        else:
            self.prompt_rows += rows

    def reset(self):
        self.scored_rows = self.prompt_rows = self.cached_rows = self.scoring_calls = 0
        self.other_calls = self.other_rows = 0
        self.widths.clear()

    def close(self):
        self._handle.remove()


def single_thread():
    """Context for tiny-model tests: one intra-op thread (2 threads on 2 busy cores is ~10x slower)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    return ctx()
