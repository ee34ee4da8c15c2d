"""RMU on WMDP (open-unlearning's recipe), then WMDP and MMLU through lm-evaluation-harness.

Zephyr-7B-beta; the output of layer 7 is steered on the forget corpus, only the ``mlp.down_proj``
weights of layers 5-7 train; forget / retain data are the raw-text WMDP corpora of one domain
(``cais/wmdp-corpora``: ``cyber-forget-corpus``, ``cyber-retain-corpus``, ``bio-retain-corpus``;
the bio forget corpus is gated, see docs/wmdp.md). Needs the ``wmdp`` extra.

    python examples/rmu_wmdp.py --split cyber
    # offline: --corpora_dir DIR (<split>-forget-corpus.jsonl, <split>-retain-corpus.jsonl, a "text" column)
    #          --eval_data_dir DIR (wmdp-<split>.jsonl, mmlu.jsonl)
"""

import argparse
from pathlib import Path

from datasets import load_dataset

from trl_unlearn import RMUConfig, RMUTrainer
from trl_unlearn.evaluation.wmdp import WMDPEvaluator

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="HuggingFaceH4/zephyr-7b-beta")
parser.add_argument("--split", default="cyber", choices=["bio", "cyber"], help="WMDP domain to unlearn")
parser.add_argument("--corpora_dir", default=None, help="local WMDP corpora (JSON lines with a 'text' column)")
parser.add_argument("--eval_data_dir", default=None, help="local WMDP / MMLU questions (see WMDPEvaluator)")
parser.add_argument("--layers", default="5,6,7", help="layers whose mlp.down_proj trains; the last is steered")
parser.add_argument("--output_dir", default="zephyr-7b-beta-RMU-wmdp")
parser.add_argument("--max_steps", type=int, default=80)
a = parser.parse_args()


def corpus(kind: str):
    name = f"{a.split}-{kind}-corpus"
    if a.corpora_dir is not None:
        return load_dataset("json", data_files=str(Path(a.corpora_dir) / f"{name}.jsonl"), split="train")
    if name == "bio-forget-corpus":  # gated: request access on the Hub first
        return load_dataset("cais/wmdp-bio-forget-corpus", split="train")
    return load_dataset("cais/wmdp-corpora", name, split="train")


layers = [int(i) for i in a.layers.split(",")]
trainer = RMUTrainer(
    model=a.model,
    args=RMUConfig(
        output_dir=a.output_dir,
        module_regex=rf"model\.layers\.{layers[-1]}",
        trainable_params_regex=[rf"model\.layers\.({'|'.join(map(str, layers))})\.mlp\.down_proj\.weight"],
        learning_rate=5e-5, lr_scheduler_type="constant", warmup_epochs=0, max_steps=a.max_steps,
        per_device_train_batch_size=4, gradient_accumulation_steps=4, max_length=512,
    ),  # fmt: skip
    forget_dataset=corpus("forget"),  # raw text: chunked to max_length tokens
    retain_dataset=corpus("retain"),
)
trainer.train()
evaluator = WMDPEvaluator(subsets=(a.split,), mmlu=True, data_dir=a.eval_data_dir)
results = evaluator.evaluate(trainer.model, trainer.processing_class)
summary = evaluator.summarize(results)
evaluator.save(results, a.output_dir, summary)
trainer.eval_results.extend(evaluator.evaluation_records(summary))
trainer.save_model()
print(summary)
