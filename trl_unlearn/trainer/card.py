"""The trainer's model card: :class:`ModelCardMixin` gathers what the card shows from a trainer.

Every card of an unlearned model is written here, by ``create_model_card`` (at each checkpoint,
on ``save_model`` to the output folder, and after the CLI's final evaluation); the rendering and
the ``model-index`` results come from :mod:`trl_unlearn.model_card`, which
:func:`trl_unlearn.hub.push_results_to_hub` also uses to add results to a card already on the Hub.
"""

from __future__ import annotations

import enum
import logging
import os
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from ..model_card import _as_list, _is_hub_id, eval_results_from_records, render_model_card

logger = logging.getLogger(__name__)

__all__ = ["ModelCardMixin", "training_settings"]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def training_settings(args: Any, global_step: int | None = None) -> list[tuple[str, Any]]:
    """Readable training settings from a ``TrainingArguments`` (or any object with those fields).

    Parameters
    ----------
    args : transformers.TrainingArguments
        The trainer's arguments; missing fields are skipped.
    global_step : int, optional
        Optimisation steps actually taken.

    Returns
    -------
    list of (str, value)
    """
    get = lambda name, default=None: _plain(getattr(args, name, default))  # noqa: E731
    rows: list[tuple[str, Any]] = []
    if get("learning_rate") is not None:
        rows.append(("Learning rate", get("learning_rate")))
    max_steps = get("max_steps", -1)
    if isinstance(max_steps, int) and max_steps > 0:
        rows.append(("Max steps", max_steps))
    elif get("num_train_epochs") is not None:
        rows.append(("Epochs", get("num_train_epochs")))
    batch, accumulation = get("per_device_train_batch_size"), get("gradient_accumulation_steps", 1)
    world_size = getattr(args, "world_size", 1)
    world_size = world_size if isinstance(world_size, int) and world_size > 0 else 1
    if batch is not None:
        rows.append(("Batch size per device", batch))
        rows.append(("Gradient accumulation steps", accumulation))
        if world_size > 1:
            rows.append(("Processes", world_size))
        rows.append(("Effective batch size", batch * (accumulation or 1) * world_size))
    for label, name in [
        ("Optimizer", "optim"),
        ("Weight decay", "weight_decay"),
        ("LR scheduler", "lr_scheduler_type"),
        ("Max gradient norm", "max_grad_norm"),
    ]:
        if get(name) is not None:
            rows.append((label, get(name)))
    warmup_steps, warmup_ratio = get("warmup_steps"), get("warmup_ratio")
    if isinstance(warmup_steps, float) and 0 < warmup_steps < 1:  # transformers reads it as a ratio
        rows.append(("Warm-up ratio", round(warmup_steps, 6)))
    elif warmup_steps:
        rows.append(("Warm-up steps", int(warmup_steps)))
    elif warmup_ratio:
        rows.append(("Warm-up ratio", warmup_ratio))
    precision = "bf16" if get("bf16") else "fp16" if get("fp16") else "fp32"
    rows.append(("Mixed precision", precision))
    if get("activation_checkpointing"):
        rows.append(("Activation checkpointing", True))
    if get("seed") is not None:
        rows.append(("Seed", get("seed")))
    if global_step:
        rows.append(("Optimisation steps taken", global_step))
    return rows


class ModelCardMixin:
    """Give a ``transformers.Trainer`` subclass trl-unlearn's model card.

    Put it first in the bases (``class UnlearningTrainer(ModelCardMixin, _BaseTrainer)``) so that its
    :meth:`create_model_card` replaces TRL's and transformers'. It reads, all optional:

    - ``self._name`` (method display name), ``self._tag_names`` (tags), ``self._paper``
      (``{"title", "id", "citation"}``);
    - ``self.args.method_hyperparameters()`` (dict) and the usual ``TrainingArguments`` fields;
    - ``self.dataset_info`` (``{"forget": {"name", "config", "split", "num_rows"}, "retain": ... or None}``);
    - ``self.eval_results`` (records ``{"benchmark", "dataset_id", "dataset_config", "summary"}``; the
      latest per benchmark, dataset and config goes on the card);
    - ``self.model.config`` (base model id), ``self.hub_model_id``, ``self.state.global_step``.
    """

    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: str | list[str] | None = None,
        *,
        language: str | list[str] | None = None,
        license: str | None = None,
        finetuned_from: str | None = None,
        dataset: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        **kwargs: Any,
    ) -> ModelCard | None:
        """Write ``README.md`` in ``args.output_dir`` (main process only).

        Accepts both TRL's (``model_name``, ``dataset_name``, ``tags``) and transformers' keyword
        arguments (``language``, ``license``, ``finetuned_from``, ``dataset``, ``dataset_tags``; the
        others, such as ``tasks`` and ``dataset_args``, are ignored), so that
        ``Trainer.push_to_hub(**kwargs)`` keeps working.

        Parameters
        ----------
        model_name : str, optional
            Name of the model; defaults to the repository name or the output directory's name.
        dataset_name : str, optional
            Extra dataset id for the metadata.
        tags : str or list of str, optional
            Tags added to the trainer's own.
        language, license : optional
            Card metadata.
        finetuned_from : str, optional
            Base model id, overriding the one read from the model's config.
        dataset, dataset_tags : str or list of str, optional
            Extra dataset ids for the metadata.

        Returns
        -------
        huggingface_hub.ModelCard or None
            The card written, ``None`` on processes other than the main one.
        """
        if kwargs:
            logger.debug("create_model_card ignores arguments %s.", sorted(kwargs))
        is_main = getattr(self, "is_world_process_zero", None)
        if callable(is_main) and not is_main():
            return None
        args = self.args
        model = self.model
        accelerator = getattr(self, "accelerator", None)
        if accelerator is not None:
            model = accelerator.unwrap_model(model)

        hub_model_id = getattr(self, "hub_model_id", None) or getattr(args, "hub_model_id", None)
        if model_name is None:
            model_name = hub_model_id.split("/")[-1] if hub_model_id else Path(args.output_dir).absolute().name

        base_model = finetuned_from
        if base_model is None:
            config = getattr(model, "config", None)
            model_id = getattr(config, "_name_or_path", "") if config is not None else ""
            base_model = model_id if _is_hub_id(model_id) else None

        hyperparameters = getattr(args, "method_hyperparameters", None)
        hyperparameters = hyperparameters() if callable(hyperparameters) else {}
        state = getattr(self, "state", None)
        eval_results = eval_results_from_records(getattr(self, "eval_results", None))

        card = render_model_card(
            model_name=model_name,
            method_name=getattr(self, "_name", None) or type(self).__name__.removesuffix("Trainer") or "Unlearning",
            base_model=base_model,
            hub_model_id=hub_model_id or model_name,
            paper=getattr(self, "_paper", None),
            method_hyperparameters=hyperparameters,
            training=training_settings(args, getattr(state, "global_step", None)),
            dataset_info=getattr(self, "dataset_info", None),
            eval_results=eval_results,
            tags=[*_as_list(getattr(self, "_tag_names", None)), *_as_list(tags)],
            datasets=[*_as_list(dataset_name), *_as_list(dataset), *_as_list(dataset_tags)],
            license=license,
            language=language,
            is_peft=_is_peft_model(model),
        )
        card.save(os.path.join(args.output_dir, "README.md"))
        return card


def _is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)
