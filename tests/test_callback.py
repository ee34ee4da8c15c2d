"""UnlearningEvalCallback: TOFU evaluation during a short training run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from datasets import Dataset

from tests._helpers import run_distributed
from tests._tofu_fixture import HOLDOUT, TOFU_TINY, read_rows, single_thread, tiny_model, tiny_tokenizer
from trl_unlearn.evaluation.callback import UnlearningEvalCallback
from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator

METRICS = ["forget_Q_A_Prob", "forget_truth_ratio", "exact_memorization", "mia_min_k"]


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def training_args(**overrides):
    kwargs = dict(
        output_dir=tempfile.mkdtemp(prefix="trl-unlearn-cb-"),
        per_device_train_batch_size=2,
        num_train_epochs=1,
        max_steps=4,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        learning_rate=5e-2,
        lr_scheduler_type="constant",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_pin_memory=False,
    )
    kwargs.update(overrides)
    return kwargs


def evaluator(**kwargs):
    return TOFUEvaluator("forget10", data_dir=TOFU_TINY, holdout=HOLDOUT, metrics=METRICS, **kwargs)


def test_callback_logs_tofu_metrics_during_npo_training(tmp_path):
    from trl_unlearn import NPOConfig, NPOTrainer

    tok = tiny_tokenizer()
    model = tiny_model(tok).train()
    forget = Dataset.from_list(read_rows("forget10"))
    retain = Dataset.from_list(read_rows("retain90"))
    args = NPOConfig(**training_args(per_device_train_batch_size=3))  # 6 forget rows: 2 steps per epoch
    trainer = NPOTrainer(model, args, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    retain_reference = evaluator().evaluate(tiny_model(tok, seed=1), tok)
    callback = UnlearningEvalCallback(
        evaluator(), eval_steps=2, reference=retain_reference, trainer=trainer, eval_on_start=True, save_dir=tmp_path
    )
    trainer.add_callback(callback)
    trainer.train()

    assert [h["step"] for h in callback.history] == [0, 2, 4]  # start, then every 2 steps = each epoch end, once
    logged = [h for h in trainer.state.log_history if "eval_tofu_forget_Q_A_Prob" in h]
    assert [h["step"] for h in logged] == [0, 2, 4]
    assert all("forget_loss" not in h for h in logged)  # training metrics stay in the training logs
    assert sum("loss" in h and "forget_loss" in h for h in trainer.state.log_history) == 4
    assert set(logged[-1]) >= {
        "eval_tofu_forget_Q_A_Prob", "eval_tofu_forget_quality", "eval_tofu_exact_memorization",
        "eval_tofu_mia_min_k", "eval_tofu_privleak", "epoch", "step",
    }  # fmt: skip
    # training changed the model, and the logged numbers are those of the model at that step
    assert logged[0]["eval_tofu_forget_Q_A_Prob"] != pytest.approx(logged[-1]["eval_tofu_forget_Q_A_Prob"])
    assert model.training  # restored after each evaluation
    final = evaluator().evaluate(trainer.model, tok)
    summary = TOFUEvaluator.summarize(evaluator(), final, retain_reference)
    for key, value in summary.items():
        assert logged[-1][f"eval_tofu_{key}"] == pytest.approx(value, abs=1e-5)
    assert trainer.eval_results[-1] == {
        "benchmark": "TOFU",
        "dataset_id": "locuslab/TOFU",
        "dataset_config": "forget10",
        "summary": callback.history[-1]["summary"],
    }
    saved = json.loads((tmp_path / "step-4" / "TOFU_SUMMARY.json").read_text())
    assert saved == pytest.approx(callback.history[-1]["summary"])
    assert (tmp_path / "step-4" / "TOFU_EVAL.json").is_file()


def test_callback_without_trainer_reference_uses_log_history():
    from transformers import Trainer, TrainingArguments

    tok = tiny_tokenizer()
    model = tiny_model(tok).train()
    rows = read_rows("retain90")
    texts = [r["question"] + " " + r["answer"] for r in rows]
    data = Dataset.from_list([{"input_ids": ids, "labels": ids} for ids in tok(texts)["input_ids"]])
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**training_args(max_steps=3, per_device_train_batch_size=1)),
        train_dataset=data,
        processing_class=tok,
    )
    callback = UnlearningEvalCallback(evaluator(limit=2), eval_steps=None, on_epoch_end=True)
    trainer.add_callback(callback)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "eval_tofu_mia_min_k" in h]
    assert [h["step"] for h in logged] == [3]
    assert logged[0]["eval_tofu_forget_Q_A_Prob"] == pytest.approx(callback.history[0]["summary"]["forget_Q_A_Prob"])
    assert 0.0 <= logged[0]["eval_tofu_mia_min_k"] <= 1.0


def test_callback_argument_errors():
    with pytest.raises(ValueError, match="positive number of steps"):
        UnlearningEvalCallback(evaluator(), eval_steps=0)
    with pytest.raises(ValueError, match="nothing to do"):
        UnlearningEvalCallback(evaluator(), eval_steps=None, on_epoch_end=False)


DIST_SCRIPT = Path(__file__).with_name("_distributed_tofu_eval.py")


@pytest.mark.slow
def test_two_processes_give_the_single_process_results(tmp_path):
    double = tmp_path / "double.json"
    run_distributed(DIST_SCRIPT, double)
    b = json.loads(double.read_text())
    tok = tiny_tokenizer()
    single = TOFUEvaluator("forget10", data_dir=TOFU_TINY, holdout=HOLDOUT, max_new_tokens=4)
    expected = single.summarize(single.evaluate(tiny_model(tok), tok))
    assert b["world_size"] == 2
    for mode in ("shard", "main"):
        assert b[mode].keys() == expected.keys()
        for key, value in expected.items():
            assert b[mode][key] == pytest.approx(value, abs=1e-5), (mode, key)
    assert b["callback_steps"] == [2, 4]  # every rank evaluated at steps 2 and 4 without hanging
