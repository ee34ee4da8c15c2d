"""``trl-unlearn eval tofu|muse|wmdp``: evaluate a model and write the summary and per-example results."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field


@dataclass
class EvalArguments:
    """Options of ``trl-unlearn eval``."""

    model_name_or_path: str = field(metadata={"help": "Model to evaluate: Hub id or local checkpoint folder."})
    output_dir: str = field(default="eval_results", metadata={"help": "Where to write *_EVAL.json and *_SUMMARY.json."})
    forget_split: str = field(default="forget10", metadata={"help": "TOFU forget split (forget01/05/10)."})
    corpus: str = field(default="news", metadata={"help": "MUSE corpus: news or books."})
    subsets: list[str] = field(
        default_factory=lambda: ["bio", "chem", "cyber"], metadata={"help": "WMDP subsets: bio, chem, cyber."}
    )
    mmlu: bool = field(default=True, metadata={"help": "WMDP: also evaluate MMLU (--no_mmlu to skip it)."})
    tasks: list[str] = field(
        default_factory=list, metadata={"help": "WMDP: other lm-evaluation-harness tasks by name (e.g. arc_easy)."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Read the benchmark from local files (WMDP: wmdp-bio.jsonl ... and mmlu.jsonl)."},
    )
    retain_reference: str | None = field(
        default=None, metadata={"help": "Retain (TOFU) / retrain (MUSE) reference: an evaluation log (TOFU_EVAL.json / MUSE_EVAL.json) or its folder; evaluate a reference model first with `trl-unlearn eval`."}
    )
    batch_size: int = field(default=16, metadata={"help": "Evaluation batch size."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N examples per split."})
    dtype: str = field(
        default="float32",
        metadata={"help": "Model dtype: float32, bfloat16 or float16.", "choices": ["float32", "bfloat16", "float16"]},
    )
    system_prompt: str | None = field(
        default="You are a helpful assistant.", metadata={"help": "Chat prompts: system message ('' for none)."}
    )
    date_string: str | None = field(default="10 Apr 2025", metadata={"help": "Chat prompts: template date_string."})
    tag_style: bool = field(
        default=False, metadata={"help": "Use Llama-2 style tags '[INST] q [/INST]' instead of the chat template."}
    )
    attention_mask_mode: str = field(
        default="open_unlearning",
        metadata={
            "help": "'open_unlearning': hide every pad-id token from attention as open-unlearning does (numbers "
            "comparable with its logs); 'padding': hide only padding (not comparable).",
            "choices": ["open_unlearning", "padding"],
        },
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow models that ship custom code."})


def prompt_format(args: EvalArguments):
    from ..evaluation.prompts import PromptFormat

    if args.tag_style:
        return PromptFormat(use_chat_template=False, user_start_tag="[INST] ", user_end_tag=" [/INST]")
    kwargs = {"date_string": args.date_string} if args.date_string else {}
    return PromptFormat(use_chat_template=True, system_prompt=args.system_prompt or None, chat_template_kwargs=kwargs)


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, HfArgumentParser

    from ..checks import check_model_path, check_output_dir

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("tofu", "muse", "wmdp"):
        print("usage: trl-unlearn eval tofu|muse|wmdp --model_name_or_path ID [--help]", file=sys.stderr)
        return 2
    benchmark = argv[0]
    (args,) = HfArgumentParser(EvalArguments).parse_args_into_dataclasses(argv[1:])
    check_model_path(args.model_name_or_path)
    check_output_dir(args.output_dir)
    if benchmark == "tofu":
        from ..evaluation.tofu_evaluator import TOFUEvaluator

        evaluator = TOFUEvaluator(args.forget_split, data_dir=args.data_dir, prompt_format=prompt_format(args),
                                  reference=args.retain_reference, batch_size=args.batch_size, limit=args.limit,
                                  attention_mask_mode=args.attention_mask_mode)
    elif benchmark == "wmdp":
        from ..evaluation.wmdp_evaluator import WMDPEvaluator

        if args.retain_reference is not None:
            raise SystemExit("WMDP has no reference model: drop --retain_reference.")
        evaluator = WMDPEvaluator(args.subsets, mmlu=args.mmlu, tasks=args.tasks, data_dir=args.data_dir,
                                  batch_size=args.batch_size, limit=args.limit)
    else:
        from ..evaluation.muse_evaluator import MUSEEvaluator

        evaluator = MUSEEvaluator(args.corpus, data_dir=args.data_dir, reference=args.retain_reference,
                                  batch_size=args.batch_size, limit=args.limit,
                                  attention_mask_mode=args.attention_mask_mode)
    evaluator.check_reference()  # a wrong reference fails now, not after the evaluation
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, dtype=getattr(torch, args.dtype),
                                                 trust_remote_code=args.trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    if torch.cuda.is_available():
        model = model.cuda()
    results = evaluator.evaluate(model, tokenizer)
    summary = evaluator.summarize(results)
    os.makedirs(args.output_dir, exist_ok=True)
    evaluator.save(results, args.output_dir, summary)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
