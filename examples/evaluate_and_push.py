"""Evaluate a model on TOFU and add the results to its Hub model card (weights untouched).

    python examples/evaluate_and_push.py --model my-user/my-unlearned-model --retain_reference retain90/TOFU_EVAL.json
    # offline check (no push): --data_dir ../shared/data/tofu --no_push
"""

import argparse

from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_unlearn.evaluation.tofu import TOFUEvaluator
from trl_unlearn.hub import push_results_to_hub

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--forget_split", default="forget10")
parser.add_argument("--data_dir", default=None)
parser.add_argument("--retain_reference", default=None)
parser.add_argument("--no_push", action="store_true")
a = parser.parse_args()

model = AutoModelForCausalLM.from_pretrained(a.model)
tokenizer = AutoTokenizer.from_pretrained(a.model)
evaluator = TOFUEvaluator(a.forget_split, data_dir=a.data_dir, reference=a.retain_reference)
summary = evaluator.summarize(evaluator.evaluate(model, tokenizer))
print(summary)
if not a.no_push:
    push_results_to_hub(a.model, summary, benchmark="TOFU", dataset_config=a.forget_split)
