"""Loading the MUSE benchmark data (Hub ``muse-bench/MUSE-News`` / ``MUSE-Books`` or local files).

MUSE (Shi et al., 2024) ships two corpora, each with the same subsets and splits:

============  ==========================================================  =====================
subset        splits                                                      columns
============  ==========================================================  =====================
``raw``       ``forget``, ``retain1``, ``retain2``, ``holdout``           ``text``
``verbmem``   ``forget``                                                  ``prompt``, ``gt``
``knowmem``   ``forget_qa``, ``forget_qa_icl``, ``retain_qa``,            ``question``,
              ``retain_qa_icl``                                           ``answer``
``privleak``  ``forget``, ``retain``, ``holdout``                         ``text``
============  ==========================================================  =====================

Older revisions of MUSE-Books (and the original MUSE GitHub data) name the retain splits
``retain2_qa`` / ``retain2_qa_icl`` (knowmem) and ``retain2`` (privleak); :func:`load_muse_split`
falls back to those names when the current one is absent, in either source.

Local layout
------------
``data_dir`` is the folder of one corpus, with one sub-folder per subset and one file per split::

    data_dir/
        raw/forget.json  raw/retain1.json  raw/retain2.json  raw/holdout.json
        verbmem/forget.json
        knowmem/forget_qa.json  knowmem/forget_qa_icl.json  knowmem/retain_qa.json  ...
        privleak/forget.json  privleak/retain.json  privleak/holdout.json

Each file is JSON lines (one row object per line) or a JSON array of row objects, named
``<split>.json`` or ``<split>.jsonl``. This is the layout of the MUSE repository's
``data/bbc`` (News) and ``data/hp`` (Books) folders, so a checkout of it can be used directly;
only the subsets an evaluation needs must be present.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..checks import load_json_dataset
from .data import as_rows, require_columns

__all__ = [
    "MUSE_DATASETS",
    "MUSE_SPLITS",
    "MUSE_COLUMNS",
    "SPLIT_ALIASES",
    "check_corpus",
    "muse_dataset_id",
    "load_muse_split",
    "load_muse_rows",
]

#: Hub dataset of each corpus.
MUSE_DATASETS = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}

#: Splits of each subset (current names).
MUSE_SPLITS = {
    "raw": ("forget", "retain1", "retain2", "holdout"),
    "verbmem": ("forget",),
    "knowmem": ("forget_qa", "forget_qa_icl", "retain_qa", "retain_qa_icl"),
    "privleak": ("forget", "retain", "holdout"),
}

#: Columns each subset must have.
MUSE_COLUMNS = {
    "raw": ("text",),
    "verbmem": ("prompt", "gt"),
    "knowmem": ("question", "answer"),
    "privleak": ("text",),
}

#: Older split names, tried when the current one is absent.
SPLIT_ALIASES = {
    ("knowmem", "retain_qa"): ("retain2_qa",),
    ("knowmem", "retain_qa_icl"): ("retain2_qa_icl",),
    ("privleak", "retain"): ("retain2",),
}


def check_corpus(corpus: str) -> str:
    """Normalise a corpus name: ``"news"`` / ``"books"`` (case-insensitive; ``"MUSE-News"`` works too)."""
    if not isinstance(corpus, str):
        raise TypeError(f"corpus must be 'news' or 'books', got {type(corpus).__name__}")
    name = corpus.strip().lower()
    for prefix in ("muse-bench/", "muse-", "muse_"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name not in MUSE_DATASETS:
        raise ValueError(f"unknown MUSE corpus {corpus!r}; use 'news' or 'books'")
    return name


def muse_dataset_id(corpus: str) -> str:
    """Hub id of a corpus: ``"news"`` -> ``"muse-bench/MUSE-News"``."""
    return MUSE_DATASETS[check_corpus(corpus)]


def _check_subset(subset: str) -> None:
    if subset not in MUSE_SPLITS:
        raise ValueError(f"unknown MUSE subset {subset!r}; use one of {', '.join(MUSE_SPLITS)}")


def _candidate_splits(subset: str, split: str) -> list[str]:
    return [split, *SPLIT_ALIASES.get((subset, split), ())]


def _local_file(folder: Path, split: str) -> Path | None:
    for suffix in (".json", ".jsonl"):
        path = folder / f"{split}{suffix}"
        if path.is_file():
            return path
    return None


def _is_missing_split_error(err: Exception) -> bool:
    text = str(err).lower()
    return "split" in text and ("unknown" in text or "not found" in text or "should be one of" in text)


def load_muse_split(
    corpus: str,
    subset: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    revision: str | None = None,
):
    """Load one MUSE split as a ``datasets.Dataset``.

    Parameters
    ----------
    corpus : {"news", "books"}
        Which corpus.
    subset : {"raw", "verbmem", "knowmem", "privleak"}
        The Hub config (subset).
    split : str
        The split, by its current name (older names are tried automatically, see
        :data:`SPLIT_ALIASES`).
    data_dir : str or os.PathLike, optional
        Local copy of the corpus (layout in the module docstring). Without it the split is read
        from the Hub with ``datasets.load_dataset("muse-bench/MUSE-<Corpus>", subset,
        split=split, revision=revision)``.
    revision : str, optional
        Hub revision (branch, tag or commit) of the dataset; ignored for local files.

    Returns
    -------
    datasets.Dataset
    """
    import datasets

    corpus = check_corpus(corpus)
    _check_subset(subset)
    candidates = _candidate_splits(subset, split)
    if data_dir is not None:
        folder = Path(data_dir) / subset
        for name in candidates:
            path = _local_file(folder, name)
            if path is not None:
                return load_json_dataset(path)
        tried = ", ".join(f"{n}.json[l]" for n in candidates)
        raise FileNotFoundError(
            f"MUSE {subset}/{split} not found in {folder} (looked for {tried}). The local layout is "
            "<data_dir>/<subset>/<split>.json (JSON lines or a JSON array); see "
            "trl_unlearn.evaluation.muse_data."
        )
    dataset_id = MUSE_DATASETS[corpus]
    last_error: Exception | None = None
    for name in candidates:
        try:
            return datasets.load_dataset(dataset_id, subset, split=name, revision=revision)
        except (ValueError, KeyError) as err:
            if not _is_missing_split_error(err) and not isinstance(err, KeyError):
                raise
            last_error = err
    raise ValueError(
        f"{dataset_id} (config {subset!r}, revision {revision or 'main'}) has none of the splits "
        f"{candidates}: {last_error}"
    )


def load_muse_rows(
    corpus: str,
    subset: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    limit: int | None = None,
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """:func:`load_muse_split` as a list of row dicts, checked for the subset's columns.

    ``limit`` keeps the first rows only (smoke tests); ``columns`` overrides the required ones.
    """
    rows = as_rows(load_muse_split(corpus, subset, split, data_dir, revision), f"MUSE {subset}/{split}")
    require_columns(rows, MUSE_COLUMNS[subset] if columns is None else columns, f"MUSE {subset}/{split}")
    return rows[:limit] if limit is not None else rows
