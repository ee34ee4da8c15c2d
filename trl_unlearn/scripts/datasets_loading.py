"""Dataset shortcuts of the CLI: TOFU and MUSE by name, any Hub dataset, or local files."""

from __future__ import annotations

from pathlib import Path


def _kind(dataset: str) -> str:
    name = dataset.lower()
    if "tofu" in name:
        return "tofu"
    if "muse" in name:
        return "muse"
    return "generic"


def check_benchmark_data(benchmark: str, dataset: str, forget_split: str) -> None:
    """Refuse to evaluate ``benchmark`` after unlearning data that is not that benchmark's.

    Results are labelled with the benchmark split they come from (model card, summary files);
    evaluating TOFU's ``forget10`` after unlearning a custom split would label them wrongly.

    Raises
    ------
    ValueError
        Naming the data and the command that evaluates the saved model on the benchmark explicitly.
    """
    from ..evaluation.data import FORGET_SPLITS

    if benchmark == "tofu" and (_kind(dataset) != "tofu" or forget_split not in FORGET_SPLITS):
        raise ValueError(
            f"--eval_benchmark tofu evaluates TOFU's forget split the model unlearned ({', '.join(FORGET_SPLITS)}), "
            f"but the forget data is {dataset!r} split {forget_split!r}. To measure this model on TOFU anyway, train "
            "with --eval_benchmark none and run `trl-unlearn eval tofu --forget_split forget10 --model_name_or_path "
            "<output_dir>`."
        )
    if benchmark == "muse" and _kind(dataset) != "muse":
        raise ValueError(
            f"--eval_benchmark muse evaluates the MUSE corpus the model unlearned, but the forget data is {dataset!r}. "
            "To measure this model on MUSE anyway, train with --eval_benchmark none and run `trl-unlearn eval muse "
            "--corpus news --model_name_or_path <output_dir>`."
        )


def muse_corpus(dataset: str) -> str:
    """``muse-bench/MUSE-Books`` -> ``"books"``; anything else MUSE-like -> ``"news"``."""
    return "books" if "books" in dataset.lower() else "news"


def load_split(dataset: str, split: str, data_dir: str | None = None, subset: str | None = None):
    """Load one forget/retain split as a ``datasets.Dataset``.

    - TOFU (``locuslab/TOFU``): ``split`` is a config name (``forget10``, ``retain90``); local
      files are ``<data_dir>/<split>.json`` (JSON lines).
    - MUSE (``muse-bench/MUSE-News``/``-Books``): ``split`` is a split of ``subset``
      (default ``raw``: ``forget``, ``retain1``, ``retain2``); local files
      ``<data_dir>/<subset>/<split>.json[l]``.
    - Anything else: ``load_dataset(dataset, subset, split=split)``, or
      ``<data_dir>/<split>.json[l]`` when ``data_dir`` is given.
    """
    kind = _kind(dataset)
    if kind == "tofu":
        from ..evaluation.data import load_tofu_config

        return load_tofu_config(split, data_dir)
    if kind == "muse":
        from ..evaluation.muse_data import load_muse_split

        return load_muse_split(muse_corpus(dataset), subset or "raw", split, data_dir=data_dir)
    from datasets import load_dataset

    from ..checks import load_json_dataset

    if data_dir is not None:
        for suffix in (".json", ".jsonl"):
            path = Path(data_dir) / f"{split}{suffix}"
            if path.is_file():
                return load_json_dataset(path)
        raise FileNotFoundError(f"No {split}.json or {split}.jsonl in {data_dir}.")
    return load_dataset(dataset, subset, split=split)
