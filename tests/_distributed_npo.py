"""Run a short NPO training and dump its losses; used single- and two-process by the tests."""

import json
import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp())

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests._helpers import config_kwargs, finish_distributed, make_setup  # noqa: E402
from trl_unlearn import NPOConfig, NPOTrainer  # noqa: E402

out, per_device = sys.argv[1], int(sys.argv[2])
tok, model, forget, retain = make_setup(n_forget=8, n_retain=12)
args = NPOConfig(**config_kwargs(per_device_train_batch_size=per_device, num_train_epochs=2, optim="sgd",
                                 learning_rate=0.2, ddp_backend="gloo" if per_device == 2 else None))
trainer = NPOTrainer(model, args, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
trainer.train()
if trainer.accelerator.is_main_process:
    hist = [h for h in trainer.state.log_history if "forget_loss" in h]
    checksum = sum(p.double().sum().item() for p in trainer.model.parameters())
    with open(out, "w") as f:
        json.dump({"world_size": trainer.accelerator.num_processes, "losses": [h["loss"] for h in hist],
                   "forget_losses": [h["forget_loss"] for h in hist], "param_checksum": checksum}, f)
finish_distributed()
