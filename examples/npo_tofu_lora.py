"""NPO on TOFU forget10 with LoRA (the reference is the base model with the adapter disabled).

    python examples/npo_tofu_lora.py --model open-unlearning/tofu_Llama-3.2-1B-Instruct_full
    python examples/npo_tofu_lora.py --model ./my-checkpoint --data_dir ../shared/data/tofu   # offline
"""

import argparse

from peft import LoraConfig

from trl_unlearn import NPOConfig, NPOTrainer
from trl_unlearn.evaluation.data import load_tofu_config

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="open-unlearning/tofu_Llama-3.2-1B-Instruct_full")
parser.add_argument("--data_dir", default=None, help="local TOFU files instead of the Hub")
parser.add_argument("--output_dir", default="Llama-3.2-1B-NPO-LoRA-forget10")
parser.add_argument("--max_steps", type=int, default=-1)
a = parser.parse_args()

trainer = NPOTrainer(
    model=a.model,
    args=NPOConfig(output_dir=a.output_dir, learning_rate=1e-4, per_device_train_batch_size=4,
                   gradient_accumulation_steps=8, max_steps=a.max_steps, system_prompt="You are a helpful assistant.",
                   chat_template_kwargs={"date_string": "10 Apr 2025"}),
    forget_dataset=load_tofu_config("forget10", a.data_dir),
    retain_dataset=load_tofu_config("retain90", a.data_dir),
    peft_config=LoraConfig(r=32, lora_alpha=64, target_modules="all-linear", task_type="CAUSAL_LM"),
)
trainer.train()
trainer.save_model()
