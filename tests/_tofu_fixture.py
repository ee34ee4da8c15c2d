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


# --------------------------------------------------------------------------------------------
# TOFU-shaped data for `tofu-bench`: authors one after another, the same number of rows each
# --------------------------------------------------------------------------------------------
_BENCH_CITIES = ["Cairo", "Lima", "Oslo", "Tokyo", "Paris", "Rome", "London", "Berlin"]
_BENCH_GENRES = ["mystery", "poetry", "fantasy", "history", "romance", "horror"]
_BENCH_AWARDS = ["Golden Quill", "Silver Pen", "Bronze Lamp", "Iron Scroll", "Crystal Ink"]


def _author_rows(i: int) -> list[dict]:
    """Four TOFU-shaped rows (answer, paraphrase, three perturbed answers) about fictitious author i."""
    name = f"Writer{i} Nolan"
    city, genre, award = _BENCH_CITIES[i % 8], _BENCH_GENRES[i % 6], _BENCH_AWARDS[i % 5]
    other = lambda values, value: [v for v in values if v != value][:3]  # noqa: E731
    facts = [
        (f"Where was {name} born?", f"{name} was born in {city}.", "{} is where " + name + " was born.",
         city, _BENCH_CITIES),
        (f"What genre does {name} write?", f"{name} writes {genre} novels.", name + " is known for {} novels.",
         genre, _BENCH_GENRES),
        (f"Which award did {name} win?", f"{name} won the {award} award.", "The {} award went to " + name + ".",
         award, _BENCH_AWARDS),
        (f"Who is the author born in {city} writing {genre}?", f"The author is {name}.",
         "It is {}.", name, [f"Writer{j} Nolan" for j in range(i + 1, i + 4)]),
    ]
    return [{"question": q, "answer": a, "paraphrased_answer": template.format(value),
             "perturbed_answer": [template.format(v) for v in other(pool, value)], "paraphrased_question": q}
            for q, a, template, value, pool in facts]


def write_bench_data(folder, authors: int = 6, forget01_authors: int = 2, retain_perturbed_authors: int = 2):
    """A TOFU-shaped data folder for ``tofu-bench`` with 4 rows per author (``questions_per_author=4``).

    ``full`` is ``authors`` x 4 rows; ``forget01_perturbed`` the last ``forget01_authors``
    authors' rows; ``retain_perturbed`` the first ``retain_perturbed_authors``'; ``holdout01`` as
    many authors as ``forget01``, absent from ``full``; real authors and world facts come from
    :data:`TOFU_TINY`. Returns the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [row for i in range(authors) for row in _author_rows(i)]

    def write(config, items, keys=None):
        lines = [json.dumps({k: r[k] for k in (keys or r)}) for r in items]
        (folder / f"{config}.json").write_text("\n".join(lines) + "\n")

    write("full", rows, ("question", "answer"))
    write("forget01_perturbed", rows[len(rows) - 4 * forget01_authors :])
    write("retain_perturbed", rows[: 4 * retain_perturbed_authors])
    holdout = [row for i in range(100, 100 + forget01_authors) for row in _author_rows(i)]  # never fine-tuned
    write("holdout01", holdout, ("question", "answer"))
    for config in ("real_authors_perturbed", "world_facts_perturbed"):
        (folder / f"{config}.json").write_text((TOFU_TINY / f"{config}.json").read_text())
    return folder


def bench_texts(folder) -> list[str]:
    """Every string of a :func:`write_bench_data` folder (for a word-level tokenizer's vocabulary)."""
    texts = [SYSTEM_WORDS]
    for path in sorted(Path(folder).glob("*.json")):
        for line in path.read_text().splitlines():
            for value in json.loads(line).values():
                texts.extend(value if isinstance(value, list) else [value])
    return texts
