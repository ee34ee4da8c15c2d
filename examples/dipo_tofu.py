"""DiPO on TOFU forget10, evaluated with the TOFU suite every epoch (forget quality vs retain90).

    python examples/dipo_tofu.py --model open-unlearning/tofu_Llama-3.2-1B-Instruct_full \
        --retain_reference path/to/retain90/TOFU_EVAL.json
    # offline: add --data_dir ../shared/data/tofu
"""

import argparse

from trl_unlearn import DiPOConfig, DiPOTrainer
from trl_unlearn.evaluation.callback import UnlearningEvalCallback
from trl_unlearn.evaluation.data import load_tofu_config
from trl_unlearn.evaluation.tofu import TOFUEvaluator

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="open-unlearning/tofu_Llama-3.2-1B-Instruct_full")
parser.add_argument("--data_dir", default=None)
parser.add_argument("--retain_reference", default=None, help="retain model's TOFU_EVAL.json (for forget quality)")
parser.add_argument("--output_dir", default="Llama-3.2-1B-DiPO-forget10")
parser.add_argument("--max_steps", type=int, default=-1)
a = parser.parse_args()

evaluator = TOFUEvaluator("forget10", data_dir=a.data_dir, reference=a.retain_reference)
trainer = DiPOTrainer(
    model=a.model,
    args=DiPOConfig(output_dir=a.output_dir, per_device_train_batch_size=4, gradient_accumulation_steps=8,
                    max_steps=a.max_steps, system_prompt="You are a helpful assistant.",
                    chat_template_kwargs={"date_string": "10 Apr 2025"}),
    forget_dataset=load_tofu_config("forget10", a.data_dir),
    retain_dataset=load_tofu_config("retain90", a.data_dir),
    callbacks=[UnlearningEvalCallback(evaluator, on_epoch_end=True)],
)
trainer.train()
trainer.save_model()
