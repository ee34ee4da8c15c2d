"""Which TOFU rows each stage of ``tofu-bench`` uses.

TOFU's ``full`` config is 200 fictitious authors x 20 QA rows, author by author; the forget splits
are its last rows (``forget01`` the last 2 authors, ``forget05`` 10, ``forget10`` 20) and
``retain_perturbed`` its first 400 rows (the first 20 authors). A bench with N authors, K of them
forgotten, uses:

- target fine-tuning: the first N-K authors and the K forget authors (the last K of the split);
- retain fine-tuning: the first N-K authors only; it is also the retain set of unlearning;
- forget evaluation: the forget authors' rows of ``<forget_split>_perturbed``;
- retain evaluation: rows of ``retain_perturbed`` that belong to the N-K retain authors (evenly
  spaced subset, ``--retain_eval_rows``); real authors and world facts: evenly spaced subsets.

The evaluation rows are written to a folder in the TOFU file layout, which
:class:`~trl_unlearn.evaluation.tofu_evaluator.TOFUEvaluator` reads as its ``data_dir``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..evaluation.data import as_rows, holdout_split_for, load_tofu_config, require_columns

TOFU_SOURCE = "locuslab/TOFU"


def rows_digest(rows: Sequence[dict[str, Any]]) -> str:
    """Short content hash of rows (part of every stage key, so edited data re-runs the stage)."""
    return hashlib.sha256(json.dumps(list(rows), sort_keys=True).encode()).hexdigest()[:16]


def evenly_spaced(rows: list[dict[str, Any]], n: int | None) -> list[dict[str, Any]]:
    """``n`` rows spread over ``rows`` (all of them when ``n`` is None or not smaller)."""
    if n is None or n >= len(rows):
        return list(rows)
    return [rows[i * len(rows) // n] for i in range(n)]


@dataclass
class BenchData:
    """The rows of every stage (lists of dicts in TOFU's columns)."""

    target_rows: list[dict[str, Any]]
    retain_rows: list[dict[str, Any]]
    forget_rows: list[dict[str, Any]]
    eval_rows: dict[str, list[dict[str, Any]]]
    num_authors: int
    num_forget_authors: int

    def describe(self) -> dict[str, Any]:
        """Sizes for ``results.json``."""
        return {
            "authors": self.num_authors,
            "forget_authors": self.num_forget_authors,
            "target_rows": len(self.target_rows),
            "retain_rows": len(self.retain_rows),
            "forget_rows": len(self.forget_rows),
            "eval_rows": {name: len(rows) for name, rows in self.eval_rows.items()},
        }

    def write_eval_dir(self, folder: str | Path) -> Path:
        """Write the evaluation rows as TOFU JSON-lines files (``<config>.json``) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for config, rows in self.eval_rows.items():
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            path = folder / f"{config}.json"
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
        return folder


def _load(config: str, data_dir: str | None) -> list[dict[str, Any]]:
    return as_rows(load_tofu_config(config, data_dir), config)


def select_rows(config) -> BenchData:
    """Load TOFU (``config.data_dir`` or the Hub) and pick the rows of every stage.

    Raises
    ------
    ValueError
        When the options do not fit the data (more forget authors than the split has, fewer
        authors than forget authors, data not in TOFU's author-by-author layout).
    """
    qpa = config.questions_per_author
    full = _load("full", config.data_dir)
    require_columns(full, ("question", "answer"), "TOFU config 'full'")
    if len(full) % qpa:
        raise ValueError(
            f"TOFU 'full' has {len(full)} rows, not a multiple of --questions_per_author={qpa}; the bench needs "
            "TOFU's layout (authors one after another, the same number of rows each)"
        )
    total_authors = len(full) // qpa
    forget_config = f"{config.forget_split}_perturbed"
    forget_perturbed = _load(forget_config, config.data_dir)
    split_authors = len(forget_perturbed) // qpa
    k = config.forget_authors or split_authors
    if not 1 <= k <= split_authors:
        raise ValueError(
            f"--forget_authors {k}: {config.forget_split} has {split_authors} author(s); use 1..{split_authors} or a "
            "larger --forget_split"
        )
    n = total_authors if config.authors == "all" else int(config.authors)
    if not k < n <= total_authors:
        raise ValueError(
            f"--authors {config.authors}: need more authors than the {k} forget author(s) and at most the "
            f"{total_authors} TOFU has (or 'all')"
        )

    def author_rows(a: int) -> list[dict[str, Any]]:
        return [{"question": r["question"], "answer": r["answer"]} for r in full[a * qpa : (a + 1) * qpa]]

    retain_rows = [row for a in range(n - k) for row in author_rows(a)]
    forget_rows = [row for a in range(total_authors - k, total_authors) for row in author_rows(a)]
    forget_eval = forget_perturbed[len(forget_perturbed) - k * qpa :]
    mismatched = [i for i, (e, r) in enumerate(zip(forget_eval, forget_rows)) if e["question"] != r["question"]]
    if mismatched:
        raise ValueError(
            f"{forget_config} row {mismatched[0]} does not match the same forget author's row of 'full' "
            f"({forget_eval[mismatched[0]]['question']!r} vs {forget_rows[mismatched[0]]['question']!r}): "
            "the forget split must be the last rows of 'full', as in TOFU"
        )
    retain_questions = {r["question"] for r in retain_rows}
    retain_perturbed = [r for r in _load("retain_perturbed", config.data_dir) if r["question"] in retain_questions]
    if not retain_perturbed:
        raise ValueError(
            "no row of retain_perturbed belongs to the retain authors, so model utility cannot be measured; "
            "retain_perturbed must be rows of the first authors of 'full', as in TOFU"
        )
    eval_rows = {
        forget_config: forget_eval,
        "retain_perturbed": evenly_spaced(retain_perturbed, config.retain_eval_rows),
        "real_authors_perturbed": evenly_spaced(_load("real_authors_perturbed", config.data_dir),
                                                config.real_authors_eval_rows),
        "world_facts_perturbed": evenly_spaced(_load("world_facts_perturbed", config.data_dir),
                                               config.world_facts_eval_rows),
    }
    if config.mia:
        holdout_config = holdout_split_for(config.forget_split)
        holdout = _load(holdout_config, config.data_dir)
        eval_rows[holdout_config] = holdout[max(0, len(holdout) - k * qpa) :]
    return BenchData(
        target_rows=retain_rows + forget_rows,
        retain_rows=retain_rows,
        forget_rows=forget_rows,
        eval_rows=eval_rows,
        num_authors=n,
        num_forget_authors=k,
    )
