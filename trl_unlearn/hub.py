"""Publishing to the Hugging Face Hub: benchmark results on model cards, and the metric modules.

- :func:`push_results_to_hub` adds TOFU / MUSE results to the card of a model already on the Hub
  (unlearned elsewhere, or re-evaluated later). Only ``README.md`` is uploaded; weights are untouched.
- :func:`publish_metric_modules` / :func:`publish_metric_module` publish trl-unlearn's ``evaluate``
  metric modules as Hub Spaces so that ``evaluate.load("<namespace>/<metric>")`` works for anyone;
  each module folder ships its Space files (``README.md``, ``app.py``, ``requirements.txt``).
  ``evaluate-cli create`` is not used: it relies on ``huggingface_hub.Repository``, gone since
  ``huggingface_hub`` 1.0. Everything goes through :class:`huggingface_hub.HfApi`.

Pushing a trained model is ``trainer.push_to_hub()``; its card comes from
:class:`trl_unlearn.trainer.card.ModelCardMixin`.

Tokens are passed through to :class:`~huggingface_hub.HfApi` and never printed or logged.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData, SpaceCard
from huggingface_hub.errors import RemoteEntryNotFoundError

from .checks import HubAccessError, check_hub_push
from .model_card import (
    eval_results_from_records,
    eval_results_from_summary,
    merge_eval_results,
    replace_results_section,
)

logger = logging.getLogger(__name__)

__all__ = [
    "HubAccessError",
    "MissingModelCardError",
    "SPACE_FILES",
    "metric_space_files",
    "publish_metric_module",
    "publish_metric_modules",
    "push_results_to_hub",
]


class MissingModelCardError(FileNotFoundError):
    """The Hub repository has no ``README.md`` to add results to."""


# --------------------------------------------------------------------------------------------------
# Results on an existing model card
# --------------------------------------------------------------------------------------------------


def _to_eval_results(
    results: Any,
    benchmark: str | None,
    dataset_id: str | None,
    dataset_config: str | None,
    dataset_split: str | None,
) -> list[EvalResult]:
    if results is None or (isinstance(results, (Mapping, Sequence)) and not isinstance(results, str) and not results):
        raise ValueError("No results to push: pass a non-empty summary, evaluation records or EvalResult list.")
    if isinstance(results, EvalResult):
        return [results]
    if isinstance(results, Mapping):
        if "summary" in results:  # one evaluation record, as in `trainer.eval_results`
            record = dict(results)
            record.setdefault("benchmark", benchmark)
            record.setdefault("dataset_id", dataset_id)
            record.setdefault("dataset_config", dataset_config)
            record.setdefault("dataset_split", dataset_split)
            if record["benchmark"] is None:
                raise ValueError("The record has no 'benchmark': pass `benchmark='TOFU'` or `benchmark='MUSE'`.")
            return eval_results_from_records([record])
        if benchmark is None:
            raise ValueError("Pushing a summary needs `benchmark` ('TOFU' or 'MUSE') and usually `dataset_config`.")
        return eval_results_from_summary(benchmark, dataset_id, dataset_config, results, dataset_split=dataset_split)
    if isinstance(results, Sequence) and not isinstance(results, str):
        if all(isinstance(item, EvalResult) for item in results):
            return list(results)
        if all(isinstance(item, Mapping) for item in results):
            return eval_results_from_records(results)
    raise TypeError(
        "`results` must be a summary dict, an evaluation record ({'benchmark', 'dataset_id', 'dataset_config', "
        f"'summary'}}), a list of records or a list of huggingface_hub.EvalResult; got {type(results).__name__}."
    )


def _load_hub_card(api: HfApi, repo_id: str, revision: str | None, token: str | bool | None) -> ModelCard | None:
    with tempfile.TemporaryDirectory(prefix="trl-unlearn-card-") as cache_dir:
        try:
            path = api.hf_hub_download(
                repo_id=repo_id, filename="README.md", revision=revision, token=token, cache_dir=cache_dir
            )
        except RemoteEntryNotFoundError:
            return None
        return ModelCard.load(path)


def push_results_to_hub(
    repo_id: str,
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]] | Sequence[EvalResult],
    *,
    benchmark: str | None = None,
    dataset_id: str | None = None,
    dataset_config: str | None = None,
    dataset_split: str | None = None,
    model_name: str | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_missing_card: bool = False,
    endpoint: str | None = None,
):
    """Add benchmark results to the model card of a model on the Hub, without touching its weights.

    The card is downloaded, the ``model-index`` results of the same evaluations (task, dataset,
    config, split) are replaced by the new ones, every other result and all other metadata are
    kept, the readable results table in the body is regenerated (or appended to a card written by
    someone else), and ``README.md`` alone is committed.

    Parameters
    ----------
    repo_id : str
        Model repository, ``"<namespace>/<name>"``.
    results : dict, list of dict or list of EvalResult
        Either a flat summary (``trl_unlearn.evaluation.tofu.summarize(...)``, needs ``benchmark``),
        one evaluation record ``{"benchmark", "dataset_id", "dataset_config", "summary"}`` or a list
        of them (as in ``trainer.eval_results``; the latest per evaluation is used), or ready
        ``huggingface_hub.EvalResult`` objects.
    benchmark : {"TOFU", "MUSE"} or str, optional
        Benchmark of a flat summary.
    dataset_id : str, optional
        Hub dataset evaluated on; inferred for TOFU (``locuslab/TOFU``), required for MUSE
        (``muse-bench/MUSE-News`` or ``muse-bench/MUSE-Books``).
    dataset_config : str, optional
        Dataset configuration, e.g. ``"forget10"``.
    dataset_split : str, optional
        Dataset split, if worth recording.
    model_name : str, optional
        ``model-index`` name when the card has none; defaults to the repository name.
    token : str or bool, optional
        Hub token with write access; defaults to the stored one.
    revision : str, optional
        Branch to read the card from and commit to (default ``main``).
    create_pr : bool
        Open a pull request instead of committing directly (for repositories you cannot write to).
    commit_message, commit_description : str, optional
        Commit title and description.
    create_missing_card : bool
        If the repository has no ``README.md``, create a minimal card instead of failing.
    endpoint : str, optional
        Hub endpoint (default: ``HF_ENDPOINT`` or ``https://huggingface.co``).

    Returns
    -------
    huggingface_hub.CommitInfo
        The commit (its ``pr_url`` is set with ``create_pr=True``).

    Raises
    ------
    ValueError
        If there are no results, or a summary comes without its benchmark.
    HubAccessError
        If the Hub is in offline mode (``HF_HUB_OFFLINE``) or no token is found.
    MissingModelCardError
        If the repository has no ``README.md`` and ``create_missing_card`` is false.
    huggingface_hub.errors.RepositoryNotFoundError
        If the repository does not exist or is not accessible with ``token``.

    Examples
    --------
    >>> from trl_unlearn.hub import push_results_to_hub
    >>> push_results_to_hub(  # doctest: +SKIP
    ...     "me/Llama-3.2-1B-NPO-forget10",
    ...     {"forget_quality": 0.12, "model_utility": 0.58},
    ...     benchmark="TOFU",
    ...     dataset_config="forget10",
    ... )
    """
    new_results = _to_eval_results(results, benchmark, dataset_id, dataset_config, dataset_split)
    check_hub_push(token)
    api = HfApi(endpoint=endpoint)
    card = _load_hub_card(api, repo_id, revision, token)
    if card is None:
        if not create_missing_card:
            raise MissingModelCardError(
                f"{repo_id} has no README.md (model card){f' at revision {revision!r}' if revision else ''}. Push a "
                "card first (e.g. `trainer.push_to_hub()`), or pass `create_missing_card=True` to start one."
            )
        name = model_name or repo_id.split("/")[-1]
        card = ModelCard(f"---\n{ModelCardData(tags=['unlearning']).to_yaml()}\n---\n\n# {name}\n")

    card.data.model_name = card.data.model_name or model_name or repo_id.split("/")[-1]
    card.data.eval_results = merge_eval_results(card.data.eval_results, new_results)
    card.text = replace_results_section(card.text, card.data.eval_results)

    evaluations = sorted({f"{r.dataset_type} {r.dataset_config or ''}".strip() for r in new_results})
    message = commit_message or f"Add unlearning evaluation results ({', '.join(evaluations)})"
    with tempfile.TemporaryDirectory(prefix="trl-unlearn-card-") as tmp:
        path = Path(tmp) / "README.md"
        card.save(path)
        return api.upload_file(
            path_or_fileobj=str(path),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="model",
            token=token,
            revision=revision,
            create_pr=create_pr,
            commit_message=message,
            commit_description=commit_description,
        )


# --------------------------------------------------------------------------------------------------
# evaluate metric modules as Spaces
# --------------------------------------------------------------------------------------------------

_SKIPPED_NAMES = {"__pycache__", "__init__.py"}
#: What a metric module folder ships besides its script to be a Space (static files, kept with it).
SPACE_FILES = ("README.md", "app.py", "requirements.txt")


def _module_folder(path: str | Path, name: str | None) -> tuple[Path, str]:
    path = Path(path)
    if path.is_file():
        folder, name = path.parent, name or path.stem
        if path.stem != name:
            raise ValueError(f"The script {path} must be named {name}.py to be loaded as '<namespace>/{name}'.")
    elif path.is_dir():
        folder, name = path, name or path.name
    else:
        raise FileNotFoundError(f"Metric module not found: {path}")
    if not name.isidentifier():
        raise ValueError(
            f"Invalid metric module name {name!r}: `evaluate` imports the script {name}.py, so the name must be a "
            "Python identifier (letters, digits, underscores; no hyphens)."
        )
    if not (folder / f"{name}.py").is_file():
        raise FileNotFoundError(
            f"{folder} has no {name}.py: `evaluate.load` looks for the script named after the module."
        )
    return folder, name


def _check_loads(folder: Path) -> None:
    import evaluate

    try:
        evaluate.load(str(folder))
    except Exception as error:  # a module that does not load locally must not be published
        raise RuntimeError(f"The metric module in {folder} does not load with evaluate.load: {error}") from error


def metric_space_files(
    path: str | Path,
    repo_id: str,
    *,
    requirements: Iterable[str] | None = None,
    sdk_version: str | None = None,
) -> dict[str, bytes]:
    """The files of the Space that hosts a metric module, by path in the repository.

    A module folder is its Space: ``<name>.py`` (what ``evaluate.load("<namespace>/<name>")``
    downloads), its helpers, and the static :data:`SPACE_FILES` shipped next to it (``README.md``
    with the Space front matter and the metric card, ``app.py`` launching ``evaluate``'s Gradio
    widget, ``requirements.txt``), as trl-unlearn's bundled modules do. They are copied as they
    are; ``sdk_version`` is written into the card's front matter and ``requirements`` replaces the
    requirements file.

    Parameters
    ----------
    path : str or Path
        The module folder (``<name>/<name>.py`` inside) or its script.
    repo_id : str
        ``"<namespace>/<name>"`` of the Space; its name must be the module's name.
    requirements : iterable of str, optional
        Replaces ``requirements.txt``.
    sdk_version : str, optional
        Gradio version of the Space; the Hub's default if omitted.

    Returns
    -------
    dict of str to bytes

    Raises
    ------
    FileNotFoundError
        When the folder lacks its script or one of :data:`SPACE_FILES`.
    ValueError
        When ``README.md`` does not declare a Gradio Space running ``app.py``.
    RuntimeError
        When the module does not load with ``evaluate.load``.
    """
    folder, name = _module_folder(path, repo_id.split("/")[-1])
    _check_loads(folder)
    files: dict[str, bytes] = {}
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder)
        if not file.is_file() or file.suffix == ".pyc":
            continue
        if any(part in _SKIPPED_NAMES or part.startswith(".") for part in relative.parts):
            continue
        files[relative.as_posix()] = file.read_bytes()
    missing = [f for f in SPACE_FILES if f not in files]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}: a metric module ships its Space files next to {name}.py (see "
            "trl_unlearn/evaluation/modules/*/ for the README front matter, app.py and requirements.txt to copy)."
        )
    card = SpaceCard(files["README.md"].decode("utf-8"))
    if (card.data.get("sdk"), card.data.get("app_file")) != ("gradio", "app.py"):
        raise ValueError(f"{folder}/README.md must declare `sdk: gradio` and `app_file: app.py` in its front matter.")
    if sdk_version is not None:
        card.data.sdk_version = sdk_version
        files["README.md"] = str(card).encode("utf-8")
    if requirements is not None:
        files["requirements.txt"] = ("\n".join(dict.fromkeys(r.strip() for r in requirements if r.strip())) + "\n").encode()
    return files


def publish_metric_module(
    path: str | Path,
    namespace: str | None = None,
    *,
    name: str | None = None,
    token: str | bool | None = None,
    private: bool = False,
    requirements: Iterable[str] | None = None,
    sdk_version: str | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Publish one ``evaluate`` module folder as a Hub Space loadable with ``evaluate.load``.

    The module is first loaded locally (a module that does not load is not published), then the
    Space ``<namespace>/<name>`` is created if needed (Gradio SDK) and the files of
    :func:`metric_space_files` are committed in one commit.

    Parameters
    ----------
    path : str or Path
        Module folder (containing ``<name>.py``) or the script itself.
    namespace : str, optional
        User or organisation; defaults to the token's user (``HfApi.whoami``).
    name : str, optional
        Space and module name; defaults to the folder's name.
    token : str or bool, optional
        Hub token with write access; defaults to the stored one.
    private : bool
        Create the Space private (no effect if it exists). Others cannot load a private metric.
    requirements : iterable of str, optional
        Space requirements, replacing the folder's ``requirements.txt``.
    sdk_version : str, optional
        Gradio version for the Space.
    commit_message : str, optional
        Commit title.
    endpoint : str, optional
        Hub endpoint.

    Returns
    -------
    str
        The Space id, ``"<namespace>/<name>"``: ``evaluate.load(<it>)``.
    """
    folder, name = _module_folder(path, name)
    check_hub_push(token)
    api = HfApi(endpoint=endpoint)
    if namespace is None:
        namespace = api.whoami(token=token)["name"]
    repo_id = f"{namespace}/{name}"
    files = metric_space_files(folder, repo_id, requirements=requirements, sdk_version=sdk_version)
    repo_url = api.create_repo(
        repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True, token=token
    )
    repo_id = repo_url.repo_id or repo_id
    api.create_commit(
        repo_id=repo_id,
        repo_type="space",
        operations=[CommitOperationAdd(path_in_repo=path, path_or_fileobj=content) for path, content in files.items()],
        commit_message=commit_message or f"Publish the {name} metric module (trl-unlearn)",
        token=token,
    )
    logger.info("Published metric module %s to https://huggingface.co/spaces/%s", name, repo_id)
    return repo_id


def publish_metric_modules(
    namespace: str | None = None,
    names: Iterable[str] | None = None,
    *,
    token: str | bool | None = None,
    private: bool = False,
    requirements: Iterable[str] | None = None,
    sdk_version: str | None = None,
    endpoint: str | None = None,
) -> dict[str, str]:
    """Publish trl-unlearn's metric modules as Hub Spaces, one per module.

    Parameters
    ----------
    namespace : str, optional
        User or organisation; defaults to the token's user.
    names : iterable of str, optional
        Modules to publish (``trl_unlearn.evaluation.modules.list_metric_modules()`` names); all by default.
    token, private, requirements, sdk_version, endpoint
        See :func:`publish_metric_module`.

    Returns
    -------
    dict of str to str
        Module name to Space id, e.g. ``{"tofu": "me/tofu"}``; ``evaluate.load(space_id)`` loads it.
    """
    from .evaluation.modules import list_metric_modules, metric_module_path

    available = list(list_metric_modules())
    selected = list(names) if names is not None else available
    unknown = sorted(set(selected) - set(available))
    if unknown:
        raise ValueError(f"Unknown metric modules {unknown}; available: {available}.")
    if not selected:
        raise ValueError("No metric module to publish.")
    check_hub_push(token)
    if namespace is None:
        namespace = HfApi(endpoint=endpoint).whoami(token=token)["name"]
    return {
        name: publish_metric_module(
            metric_module_path(name),
            namespace,
            name=name,
            token=token,
            private=private,
            requirements=requirements,
            sdk_version=sdk_version,
            endpoint=endpoint,
        )
        for name in selected
    }
