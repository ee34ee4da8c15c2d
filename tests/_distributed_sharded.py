"""Train every method with the model sharded (FSDP2 through accelerate) and evaluate it; used by tests/test_sharding.py.

``python _distributed_sharded.py OUT single`` runs everything on one process (global batch 4);
``torchrun --nproc_per_node 2 _distributed_sharded.py OUT fsdp`` runs it on two processes of
batch 2 each with the model sharded by FSDP2. For each case (method, reference mode) the main
process writes the per-step losses, the saved model (``OUT/<case>``, a ``save_pretrained``
folder) and, sharded, how far the saved weights are from the gathered shards; then a TOFU
evaluation of the sharded model, during training (``UnlearningEvalCallback``) and after it,
per example, and MUSE and WMDP evaluations of it after training. Results go to
``OUT/results.json``.

Accelerate only turns FSDP on for GPU-like devices; on CPU (gloo) its state is set to FSDP
(:func:`trl_unlearn.testing.enable_fsdp_on_cpu`), so that the trainer takes accelerate's own
FSDP2 code path (``fsdp2_prepare_model``, ``get_state_dict``) exactly as on GPUs.
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

from trl_unlearn.testing import enable_fsdp_on_cpu  # noqa: E402

out, mode = sys.argv[1], sys.argv[2]
sharded = mode == "fsdp"
torch.set_num_threads(1)
if sharded:
    enable_fsdp_on_cpu()

from datasets import Dataset  # noqa: E402
from peft import LoraConfig, get_peft_model_state_dict  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import trl_unlearn as tu  # noqa: E402
from tests._helpers import config_kwargs, finish_distributed, make_setup  # noqa: E402
from tests._tofu_fixture import HOLDOUT, TOFU_TINY, read_rows, tiny_model, tiny_tokenizer  # noqa: E402
from trl_unlearn.evaluation.batching import is_sharded_model  # noqa: E402
from trl_unlearn.evaluation.callback import UnlearningEvalCallback  # noqa: E402
from trl_unlearn.evaluation.muse_evaluator import MUSEEvaluator  # noqa: E402
from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator  # noqa: E402
from trl_unlearn.evaluation.wmdp import WMDPEvaluator  # noqa: E402

MUSE_TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "muse_tiny")
FSDP = {"fsdp": True, "fsdp_config": {"version": 2, "state_dict_type": "FULL_STATE_DICT", "reshard_after_forward": True},
        "ddp_backend": "gloo"}
NPO_MODES = ("copy", "peft", "precomputed", "precomputed_ref_model", "model")
DIPO_MODES = ("copy", "peft", "model")
OTHERS = ("GradAscent", "GradDiff", "SimNPO", "RMU", "PDU", "CEU", "UNDIAL", "WGA", "SatImp", "IdkNLL", "IdkDPO",
          "AltPO")
CASES = [("NPO", m) for m in NPO_MODES] + [("DiPO", m) for m in DIPO_MODES] + [(m, "default") for m in OTHERS]


#: settings a method needs on the tiny 2-layer model
METHOD_KWARGS = {"RMU": {"module_regex": r"model\.layers\.1"}, "PDU": {"retain_loss_eps": 4.0}}
#: methods trained on a second answer per forget question
ALTERNATES = ("IdkNLL", "IdkDPO", "AltPO")


def config(method: str, **overrides):
    kwargs = config_kwargs(per_device_train_batch_size=2 if sharded else 4, num_train_epochs=2, optim="sgd",
                           learning_rate=0.05, **METHOD_KWARGS.get(method, {}), **(FSDP if sharded else {}))
    kwargs.update(overrides)
    return getattr(tu, f"{method}Config")(**kwargs)


def train(method: str, ref_mode: str, folder: str):
    tok, model, forget, retain = make_setup(n_forget=8, n_retain=12)
    if method in ALTERNATES:
        forget = forget.map(lambda row, i: {"alternate": f"author{i} was born in oslo and wrote the blue book ."},
                            with_indices=True)
    # 3 rows a batch: 3 batches, 2 on one rank and 1 on the other (padded to equal shares)
    extra = {"precompute_ref_log_probs": True, "precompute_ref_batch_size": 3} if ref_mode.startswith("precomputed") else {}
    kwargs = {}
    if ref_mode == "peft":
        kwargs["peft_config"] = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    if ref_mode in ("model", "precomputed_ref_model"):
        kwargs["ref_model"] = make_setup(n_forget=8, n_retain=12, seed=1)[1]
    trainer = getattr(tu, f"{method}Trainer")(model, config(method, **extra), forget_dataset=forget,
                                              retain_dataset=retain, processing_class=tok, **kwargs)
    expected_mode = {"precomputed_ref_model": "precomputed", "default": trainer.reference_mode}.get(ref_mode, ref_mode)
    assert trainer.reference_mode == expected_mode, (method, ref_mode, trainer.reference_mode)
    trainer.train()
    if sharded:
        assert is_sharded_model(trainer.model)
        if trainer.ref_model is not None:
            assert is_sharded_model(trainer.ref_model)
    gathered = {name: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
                for name, p in trainer.model.named_parameters()}
    trainer.save_model(folder)
    record = {"losses": [h["loss"] for h in trainer.state.log_history if "forget_loss" in h],
              "reference_mode": trainer.reference_mode, "ref_model_sharded": is_sharded_model(trainer.ref_model),
              # after its forward passes, no reference parameter may be held whole (FSDP2 keeps the root group
              # gathered after a forward pass unless told to reshard it)
              "ref_whole_params": sorted(name for name, p in (trainer.ref_model.named_parameters() if sharded and
                                                              trainer.ref_model is not None else ())
                                         if not hasattr(p, "to_local"))}
    if trainer.accelerator.is_main_process:
        if ref_mode == "peft":
            saved = load_file(os.path.join(folder, "adapter_model.safetensors"))
            gathered = get_peft_model_state_dict(trainer.accelerator.unwrap_model(trainer.model), state_dict=gathered)
        else:
            saved = load_file(os.path.join(folder, "model.safetensors"))
        assert set(saved) <= set(gathered), sorted(set(saved) - set(gathered))
        record["saved_vs_gathered"] = max((saved[k] - gathered[k]).abs().max().item() for k in saved)
    trainer.accelerator.wait_for_everyone()
    return record


def tofu_evaluator():
    return TOFUEvaluator("forget10", data_dir=TOFU_TINY, holdout=HOLDOUT, max_new_tokens=4, distributed="shard",
                         progress=False)


def evaluate_sharded():
    tok = tiny_tokenizer()
    args = config("NPO", max_steps=1)  # one step: the fixture's 5 rows make uneven later batches
    trainer = tu.NPOTrainer(tiny_model(tok).train(), args, forget_dataset=Dataset.from_list(read_rows("forget10")),
                            retain_dataset=Dataset.from_list(read_rows("retain90")), processing_class=tok)
    callback = UnlearningEvalCallback(tofu_evaluator(), eval_steps=1, on_epoch_end=False, eval_on_start=True,
                                      trainer=trainer)
    trainer.add_callback(callback)
    trainer.train()
    results = tofu_evaluator().evaluate(trainer.model, tok)  # after training, on the (sharded) trained model
    # MUSE and WMDP on the same sharded model: every rank in every forward pass
    muse = MUSEEvaluator("news", data_dir=MUSE_TINY, max_length=40, verbmem_max_new_tokens=6, knowmem_max_new_tokens=5,
                         distributed="shard", progress=False).evaluate(trainer.model, tok)
    wmdp = WMDPEvaluator(subsets=("bio",), mmlu=False, data_dir=write_wmdp_fixture(), batch_size=2,
                         progress=False).evaluate(trainer.model, tok)
    return {"callback": [h["summary"] for h in callback.history], "after": results, "muse": muse, "wmdp": wmdp,
            "sharded": is_sharded_model(trainer.model)}


def write_wmdp_fixture() -> str:
    """Six multiple-choice rows in the WMDP layout, in words the TOFU fixture's tokenizer knows."""
    folder = tempfile.mkdtemp(prefix="wmdp-")
    words = [r["answer"].split()[0] for r in read_rows("retain90")] + ["yes", "no", "the", "a"]
    with open(os.path.join(folder, "wmdp-bio.jsonl"), "w") as fh:
        for i in range(6):
            row = {"question": f"{words[i % len(words)]} ?", "choices": [words[(i + k) % len(words)] for k in range(4)],
                   "answer": i % 4}
            fh.write(json.dumps(row) + "\n")
    return folder


record = {"world_size": int(os.environ.get("WORLD_SIZE", "1")), "cases": {}}
for method, ref_mode in CASES:
    name = f"{method}-{ref_mode}"
    record["cases"][name] = train(method, ref_mode, os.path.join(out, name))
record["tofu"] = evaluate_sharded()
if int(os.environ.get("RANK", "0")) == 0:
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(record, fh)
finish_distributed()
