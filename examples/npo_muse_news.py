"""NPO on MUSE-News raw text (chunked to 2048 tokens), then the MUSE evaluation.

    python examples/npo_muse_news.py --model muse-bench/MUSE-news_target
    # offline: --data_dir path/with/raw/forget.json,raw/retain1.json,... (MUSE layout)
"""

import argparse

from trl_unlearn import NPOConfig, NPOTrainer
from trl_unlearn.evaluation.muse import MUSEEvaluator
from trl_unlearn.evaluation.muse_data import load_muse_split

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="muse-bench/MUSE-news_target")
parser.add_argument("--data_dir", default=None)
parser.add_argument("--retrain_reference", default=None, help="retrain model's MUSE_EVAL.json (for privleak)")
parser.add_argument("--output_dir", default="MUSE-News-NPO")
parser.add_argument("--max_steps", type=int, default=-1)
a = parser.parse_args()

trainer = NPOTrainer(
    model=a.model,
    args=NPOConfig(output_dir=a.output_dir, max_length=2048, lr_scheduler_type="constant", warmup_epochs=0,
                   per_device_train_batch_size=4, gradient_accumulation_steps=8, max_steps=a.max_steps),
    forget_dataset=load_muse_split("news", "raw", "forget", data_dir=a.data_dir),
    retain_dataset=load_muse_split("news", "raw", "retain1", data_dir=a.data_dir),
)
trainer.train()
evaluator = MUSEEvaluator("news", data_dir=a.data_dir, reference=a.retrain_reference)
results = evaluator.evaluate(trainer.model, trainer.processing_class)
summary = evaluator.summarize(results)
evaluator.save(results, a.output_dir, summary)
trainer.eval_results.append({"benchmark": "MUSE", "dataset_id": "muse-bench/MUSE-News", "dataset_config": "raw",
                             "summary": summary})
trainer.save_model()
print(summary)
