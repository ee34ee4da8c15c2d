"""Sweep DiPO's high-confidence set size (top_k) and strength (λ) on the tiny memorisation task.

For each setting: unlearn the forget set of a tiny Llama that memorised 8 forget + 12 retain
fictitious QA pairs, and report the change of the mean per-token log-probability of the forget
and the retain answers. Good settings forget a lot and keep the retain set.

    python benchmarks/dipo_sweep.py [--epochs 6] [--lr 1e-3]
"""

import argparse
import copy
import itertools
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from trl_unlearn import DiPOConfig, DiPOTrainer  # noqa: E402
from trl_unlearn.testing import mean_token_log_prob, memorisation_task  # noqa: E402


def run(tok, model, forget, retain, **overrides):
    args = DiPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=4, report_to=[], save_strategy="no",
                      gradient_checkpointing=False, lr_scheduler_type="constant", warmup_epochs=0, disable_tqdm=True,
                      use_cpu=True, dataloader_pin_memory=False, logging_steps=1000, **overrides)
    trainer = DiPOTrainer(copy.deepcopy(model), args, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    before = mean_token_log_prob(trainer.model, trainer.forget_data), mean_token_log_prob(trainer.model, trainer.retain_data)
    trainer.train()
    after = mean_token_log_prob(trainer.model, trainer.forget_data), mean_token_log_prob(trainer.model, trainer.retain_data)
    return before, after


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--top_k", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--strength", type=float, nargs="+", default=[1.0, 3.0, 5.0, 10.0])
    parser.add_argument("--retain_weight", type=float, default=1.0)
    a = parser.parse_args()
    tok, model, forget, retain = memorisation_task()
    print(f"{'top_k':>5} {'λ':>5} | {'forget logp/tok':>22} | {'retain logp/tok':>22} | forget drop  retain change")
    for top_k, strength in itertools.product(a.top_k, a.strength):
        (fb, rb), (fa, ra) = run(tok, model, forget, retain, top_k=top_k, strength=strength, learning_rate=a.lr,
                                 num_train_epochs=a.epochs, retain_loss_weight=a.retain_weight)
        print(f"{top_k:>5} {strength:>5g} | {fb:>9.3f} -> {fa:>9.3f} | {rb:>9.3f} -> {ra:>9.3f} | {fb - fa:>10.3f} {ra - rb:>+12.3f}",
              flush=True)


if __name__ == "__main__":
    main()
