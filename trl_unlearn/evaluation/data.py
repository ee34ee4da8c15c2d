"""Loading the TOFU benchmark data (Hub ``locuslab/TOFU`` or a local copy with the same files)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..checks import load_json_dataset

TOFU_HUB_ID = "locuslab/TOFU"

TOFU_CONFIGS = (
    "full",
    "forget01",
    "forget05",
    "forget10",
    "retain90",
    "retain95",
    "retain99",
    "forget01_perturbed",
    "forget05_perturbed",
    "forget10_perturbed",
    "retain_perturbed",
    "real_authors",
    "real_authors_perturbed",
    "world_facts",
    "world_facts_perturbed",
    "holdout01",
    "holdout05",
    "holdout10",
)

FORGET_SPLITS = ("forget01", "forget05", "forget10")


def check_forget_split(forget_split: str) -> str:
    """Validate a TOFU forget split name (``forget01``, ``forget05`` or ``forget10``)."""
    if forget_split not in FORGET_SPLITS:
        raise ValueError(f"unknown TOFU forget split {forget_split!r}; use one of {', '.join(FORGET_SPLITS)}")
    return forget_split


def holdout_split_for(forget_split: str) -> str:
    """The holdout config paired with a forget split (``forget10`` -> ``holdout10``)."""
    return "holdout" + re.sub(r"^forget", "", check_forget_split(forget_split))


def load_tofu_config(config: str, data_dir: str | Path | None = None):
    """Load one TOFU config as a ``datasets.Dataset``.

    Parameters
    ----------
    config : str
        One of :data:`TOFU_CONFIGS`.
    data_dir : str or Path, optional
        A folder holding ``<config>.json`` (JSON lines, as in ``../shared/data/tofu``). Without
        it the config is read from the Hub with ``load_dataset("locuslab/TOFU", config,
        split="train")``.

    Returns
    -------
    datasets.Dataset
    """
    import datasets

    if config not in TOFU_CONFIGS:
        raise ValueError(f"unknown TOFU config {config!r}; known configs: {', '.join(TOFU_CONFIGS)}")
    if data_dir is None:
        return datasets.load_dataset(TOFU_HUB_ID, config, split="train")
    folder = Path(data_dir)
    for suffix in (".json", ".jsonl"):
        path = folder / f"{config}{suffix}"
        if path.is_file():
            return load_json_dataset(path)
    hint = (
        " The holdout configs are not in the local copy: pass `holdout=` a dataset or a list of "
        "{'question', 'answer'} rows, or leave it unset to skip the MIA metrics."
        if config.startswith("holdout")
        else ""
    )
    raise FileNotFoundError(f"TOFU config {config!r} not found as {folder / (config + '.json')}.{hint}")


def as_rows(data: Any, name: str) -> list[dict[str, Any]]:
    """Turn a ``datasets.Dataset``, a list of dicts or a dict of columns into a list of row dicts."""
    if data is None:
        raise ValueError(f"{name}: no data")
    if isinstance(data, Mapping):
        columns = {k: list(v) for k, v in data.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"{name}: columns have different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        return [{k: v[i] for k, v in columns.items()} for i in range(n)]
    if hasattr(data, "to_list"):
        return list(data.to_list())
    rows = list(data)
    if rows and not isinstance(rows[0], Mapping):
        raise TypeError(f"{name}: expected rows as dicts, got {type(rows[0]).__name__}")
    return [dict(r) for r in rows]


def require_columns(rows: Sequence[Mapping[str, Any]], columns: Iterable[str], name: str) -> None:
    """Raise a clear error when ``rows`` lack any of ``columns``."""
    if not rows:
        raise ValueError(f"{name} is empty")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; it has {sorted(rows[0])}. "
            "Rename the columns (e.g. `dataset.rename_column(old, new)`) to TOFU's names."
        )
