"""TOFU evaluation under ``torch.distributed.run``; used by tests/test_callback.py.

Evaluates a tiny model with ``distributed="shard"`` and ``"main"``, then trains NPO for 4 steps
with :class:`UnlearningEvalCallback` every 2 steps (every rank evaluates: no rank may hang), and
writes the summaries from the main process.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp())

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from accelerate import PartialState  # noqa: E402
from datasets import Dataset  # noqa: E402

from tests._helpers import finish_distributed  # noqa: E402
from tests._tofu_fixture import HOLDOUT, TOFU_TINY, read_rows, tiny_model, tiny_tokenizer  # noqa: E402
from trl_unlearn import NPOConfig, NPOTrainer  # noqa: E402
from trl_unlearn.evaluation.callback import UnlearningEvalCallback  # noqa: E402
from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator  # noqa: E402

torch.set_num_threads(1)
out = sys.argv[1]
state = PartialState(cpu=True)
tok = tiny_tokenizer()
model = tiny_model(tok)


def evaluator(mode):
    return TOFUEvaluator("forget10", data_dir=TOFU_TINY, holdout=HOLDOUT, max_new_tokens=4, distributed=mode)


record = {"world_size": state.num_processes}
for mode in ("shard", "main"):
    ev = evaluator(mode)
    record[mode] = ev.summarize(ev.evaluate(model, tok))

args = NPOConfig(
    output_dir=tempfile.mkdtemp(prefix="trl-unlearn-dist-"),
    per_device_train_batch_size=2,
    max_steps=4,
    logging_steps=1,
    report_to=[],
    save_strategy="no",
    learning_rate=1e-2,
    disable_tqdm=True,
    use_cpu=True,
    dataloader_pin_memory=False,
    ddp_backend="gloo" if state.num_processes > 1 else None,
)
trainer = NPOTrainer(
    model.train(),
    args,
    forget_dataset=Dataset.from_list(read_rows("forget10")),
    retain_dataset=Dataset.from_list(read_rows("retain90")),
    processing_class=tok,
)
callback = UnlearningEvalCallback(evaluator("shard"), eval_steps=2, on_epoch_end=False, trainer=trainer)
trainer.add_callback(callback)
trainer.train()
record["callback_steps"] = [h["step"] for h in callback.history]
if state.is_main_process:
    with open(out, "w") as fh:
        json.dump(record, fh)
finish_distributed()
