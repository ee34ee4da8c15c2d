"""Train an unlearning method from the command line (``trl-unlearn <method> ...``).

Arguments are TRL-style: the method's config (every `TrainingArguments` field too), TRL's
`ModelConfig` (`--model_name_or_path`, `--use_peft`, `--lora_r`, `--load_in_4bit`, ...) and the
script arguments below; `--config file.yaml` reads any of them from YAML.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class UnlearnScriptArguments:
    """Data and evaluation options of ``trl-unlearn <method>``."""

    dataset: str = field(
        default="locuslab/TOFU",
        metadata={"help": "Dataset id: locuslab/TOFU, muse-bench/MUSE-News, muse-bench/MUSE-Books or any Hub id."},
    )
    forget_split: str = field(default="forget10", metadata={"help": "Forget split (TOFU config / MUSE raw split)."})
    retain_split: str | None = field(default="retain90", metadata={"help": "Retain split; 'none' for no retain set."})
    dataset_subset: str | None = field(default=None, metadata={"help": "Dataset config/subset (MUSE: 'raw')."})
    data_dir: str | None = field(default=None, metadata={"help": "Read the splits from local files in this folder."})
    eval_benchmark: str = field(
        default="none", metadata={"help": "Evaluate with 'tofu', 'muse' or 'none'.", "choices": ["tofu", "muse", "none"]}
    )
    eval_every_steps: int | None = field(
        default=None, metadata={"help": "Also evaluate every N steps during training (slow)."}
    )
    retain_reference: str | None = field(
        default=None,
        metadata={"help": "Retain/retrain reference for forget quality/privleak: an evaluation log (TOFU_EVAL.json / MUSE_EVAL.json) or its folder; evaluate a reference model first with `trl-unlearn eval`."},
    )
    eval_batch_size: int = field(default=16, metadata={"help": "Batch size of the benchmark evaluation."})
    eval_limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N examples per split."})


def make_evaluator(script_args: UnlearnScriptArguments, training_args=None):
    """The TOFU/MUSE evaluator the script arguments ask for (or None).

    It evaluates the benchmark the forget data comes from (TOFU's ``forget01/05/10``, MUSE's
    corpus); other forget data is refused rather than labelled with a benchmark split it is not.

    TOFU prompts are rendered like the training data (the config's `system_prompt` and
    `chat_template_kwargs`), so the model is evaluated on the prompts it was unlearned on; pass
    `--system_prompt "You are a helpful assistant." --chat_template_kwargs '{"date_string": "10 Apr 2025"}'`
    for open-unlearning's Llama-3 setup.
    """
    from ..evaluation.prompts import PromptFormat
    from .datasets_loading import check_benchmark_data, muse_corpus

    if script_args.eval_benchmark != "none":
        check_benchmark_data(script_args.eval_benchmark, script_args.dataset, script_args.forget_split)
    if script_args.eval_benchmark == "tofu":
        from ..evaluation.tofu_evaluator import TOFUEvaluator

        fmt = None
        if training_args is not None:
            fmt = PromptFormat(use_chat_template=True, system_prompt=training_args.system_prompt,
                               chat_template_kwargs=dict(training_args.chat_template_kwargs or {}))
        return TOFUEvaluator(script_args.forget_split, data_dir=script_args.data_dir, batch_size=script_args.eval_batch_size,
                             limit=script_args.eval_limit, reference=script_args.retain_reference,
                             prompt_format=fmt)
    if script_args.eval_benchmark == "muse":
        from ..evaluation.muse_evaluator import MUSEEvaluator

        return MUSEEvaluator(muse_corpus(script_args.dataset), data_dir=script_args.data_dir,
                             batch_size=script_args.eval_batch_size, limit=script_args.eval_limit,
                             reference=script_args.retain_reference)
    return None


def model_init_kwargs(model_args) -> dict:
    """`from_pretrained` kwargs from TRL's ModelConfig (dtype, revision, attention, quantization)."""
    import torch
    from trl import get_quantization_config

    kwargs = {"revision": model_args.model_revision, "attn_implementation": model_args.attn_implementation}
    if model_args.dtype not in (None, "auto"):
        kwargs["dtype"] = getattr(torch, model_args.dtype)
    elif model_args.dtype == "auto":
        kwargs["dtype"] = "auto"
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        from accelerate import PartialState

        # k-bit weights cannot be moved after loading: each process loads onto its own GPU
        device_map = {"": PartialState().local_process_index} if torch.cuda.is_available() else None
        kwargs.update(quantization_config=quantization, device_map=device_map)
    return {k: v for k, v in kwargs.items() if v is not None}


def run(method: str, script_args, training_args, model_args):
    """Check everything the run needs, load data and model, unlearn, save, evaluate (and push).

    The model is saved before the evaluation, so a failing evaluation loses no training; what the
    evaluation needs (its data, the reference log and its size, a writable output folder) and the
    Hub access of ``--push_to_hub`` are checked before training starts.
    """
    from trl import get_peft_config

    from ..checks import check_hub_push, check_model_path, check_output_dir, check_positive
    from ..evaluation.callback import evaluation_records
    from ..trainer import METHODS
    from .datasets_loading import load_split

    trainer_cls, _ = METHODS[method]
    if model_args.model_name_or_path is None:
        raise SystemExit("--model_name_or_path is required (a Hub id or a local checkpoint folder).")
    check_model_path(model_args.model_name_or_path)
    check_positive("eval_every_steps", script_args.eval_every_steps, allow_none=True)
    if script_args.eval_every_steps and script_args.eval_benchmark == "none":
        raise ValueError("--eval_every_steps needs a benchmark to evaluate: add --eval_benchmark tofu or muse.")
    check_output_dir(training_args.output_dir)
    if training_args.push_to_hub:
        check_hub_push(training_args.hub_token)
    evaluator = make_evaluator(script_args, training_args)
    if evaluator is not None:
        evaluator.check_reference()
    forget = load_split(script_args.dataset, script_args.forget_split, script_args.data_dir, script_args.dataset_subset)
    retain = None
    if script_args.retain_split and script_args.retain_split.lower() != "none":
        retain = load_split(script_args.dataset, script_args.retain_split, script_args.data_dir,
                            script_args.dataset_subset)
    training_args.model_init_kwargs = {**model_init_kwargs(model_args), **(training_args.model_init_kwargs or {})}

    callbacks = []
    if evaluator is not None and script_args.eval_every_steps:
        from ..evaluation.callback import UnlearningEvalCallback

        callbacks.append(UnlearningEvalCallback(evaluator, eval_steps=script_args.eval_every_steps,
                                                on_epoch_end=False))
    trainer = trainer_cls(model=model_args.model_name_or_path, args=training_args, forget_dataset=forget,
                          retain_dataset=retain, peft_config=get_peft_config(model_args), callbacks=callbacks)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    if evaluator is not None:
        try:
            results = evaluator.evaluate(trainer.accelerator.unwrap_model(trainer.model), trainer.processing_class)
            summary = evaluator.summarize(results)
            if trainer.accelerator.is_main_process:
                evaluator.save(results, training_args.output_dir, summary)
        except Exception as err:
            raise RuntimeError(
                f"The {evaluator.benchmark} evaluation failed after training ({type(err).__name__}: {err}). The "
                f"unlearned model is saved in {training_args.output_dir}; evaluate it again with `trl-unlearn eval "
                f"{evaluator.benchmark.lower()} --model_name_or_path {training_args.output_dir}`."
            ) from err
        logger.info("%s summary: %s", evaluator.benchmark, summary)
        trainer.eval_results.extend(evaluation_records(evaluator, summary))
        trainer.log({f"final_{evaluator.benchmark.lower()}_{k}": v for k, v in summary.items()})
        trainer.create_model_card()
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return trainer


def make_parser(method: str):
    from trl import ModelConfig, TrlParser

    from ..trainer import METHODS

    _, config_cls = METHODS[method]
    return TrlParser((UnlearnScriptArguments, config_cls, ModelConfig), prog=f"trl-unlearn {method}")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit("usage: python -m trl_unlearn.scripts.unlearn <method> [arguments]")
    method, rest = argv[0], argv[1:]
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    script_args, training_args, model_args = make_parser(method).parse_args_and_config(rest)
    run(method, script_args, training_args, model_args)


if __name__ == "__main__":
    main()
