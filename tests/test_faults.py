"""The bad-input and fault table (issue 13): every row is an input a user can give and what it gets.

``RAISES`` rows must fail with the given exception and a message that names the problem (and,
for most, the fix); ``WARNS`` rows are accepted with a warning that counts what happened. The
faults that need a real run (resume, NaN weights at the last step, the token on disk, the CLI
keeping its model when the evaluation fails) have their own tests below.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import pytest
import torch
from datasets import Dataset, IterableDataset

from trl_unlearn import DiPOConfig, DiPOTrainer, GradAscentConfig, GradDiffConfig, NPOConfig, NPOTrainer, SimNPOConfig
from trl_unlearn.checks import HubAccessError, check_model_path, check_output_dir, resolve_resume_checkpoint
from trl_unlearn.data import prepare_dataset
from trl_unlearn.evaluation import muse, tofu
from trl_unlearn.evaluation.muse_evaluator import MUSEEvaluator
from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator
from trl_unlearn.testing import make_model, make_tokenizer

from ._helpers import config_kwargs, make_setup, qa_rows
from ._tofu_fixture import TOFU_TINY, tiny_model, tiny_tokenizer

MUSE_TINY = Path(__file__).parent / "fixtures" / "muse_tiny"
TOFU_LOG = {"forget_Q_A_Prob": {"agg_value": 0.5, "value_by_index": {"0": {"prob": 0.5, "avg_loss": 0.7}}}}
MUSE_LOG = {"forget_verbmem_ROUGE": {"agg_value": 0.5, "value_by_index": {"0": {"rougeL_f1": 0.5}}}}


@pytest.fixture(scope="module")
def setup():
    """Tiny tokenizer, model and QA datasets shared by the rows (nothing here is trained)."""
    tok, model, forget, retain = make_setup(4, 4)
    return {"tok": tok, "model": model, "forget": forget, "retain": retain}


def _cfg(cls=NPOConfig, **kw):
    return cls(**config_kwargs(**kw))


def _trainer(s, cls=NPOTrainer, args=None, **kw):
    kw.setdefault("processing_class", s["tok"])
    kw.setdefault("forget_dataset", s["forget"])
    kw.setdefault("retain_dataset", s["retain"])
    return cls(model=kw.pop("model", s["model"]), args=args or _cfg(), **kw)


def _bigger_tokenizer(s):
    return make_tokenizer([f"word{i}" for i in range(50)] + [r["question"] + " " + r["answer"] for r in qa_rows(4)])


def _write(tmp, name, text):
    path = Path(tmp) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _malformed_tofu(tmp):
    good = (TOFU_TINY / "forget01.json").read_text().splitlines()[0]
    _write(tmp, "forget01.json", good + "\n{\"question\": \"Who?\", \"answer\": \n")
    from trl_unlearn.evaluation.data import load_tofu_config

    load_tofu_config("forget01", tmp)


def _truncated_log(tmp):
    path = _write(tmp, "TOFU_EVAL.json", json.dumps(TOFU_LOG, indent=4)[:-20])
    tofu.summarize(path)


def _incomplete_checkpoint(tmp):
    folder = Path(tmp) / "checkpoint-2"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    resolve_resume_checkpoint(str(folder), tmp)


def _missing_optimizer(tmp):
    folder = Path(tmp) / "checkpoint-3"
    folder.mkdir()
    for name in ("model.safetensors", "trainer_state.json", "scheduler.pt"):
        (folder / name).write_bytes(b"")
    resolve_resume_checkpoint(str(folder), tmp)


def _no_complete_checkpoint(tmp):
    (Path(tmp) / "checkpoint-1").mkdir()
    resolve_resume_checkpoint("true", tmp)


def _offline_push(tmp):
    from trl_unlearn.hub import push_results_to_hub

    push_results_to_hub("me/model", {"forget_quality": 0.1}, benchmark="TOFU", dataset_config="forget10", token="x")


def _tokenless_push(tmp):
    from huggingface_hub import constants

    from trl_unlearn.hub import push_results_to_hub

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        push_results_to_hub("me/model", {"forget_quality": 0.1}, benchmark="TOFU", dataset_config="forget10", token=False)
    finally:
        constants.HF_HUB_OFFLINE = old


def _tofu_eval_with_reference(tmp, reference, **kw):
    TOFUEvaluator("forget10", data_dir=TOFU_TINY, reference=reference, holdout=None, **kw).check_reference()


def _custom_split_tofu_eval(tmp):
    from trl_unlearn.scripts.unlearn import UnlearnScriptArguments, make_evaluator

    make_evaluator(UnlearnScriptArguments(dataset="me/my-data", forget_split="my_forget", eval_benchmark="tofu"))


def _muse_eval_on_tofu_data(tmp):
    from trl_unlearn.scripts.unlearn import UnlearnScriptArguments, make_evaluator

    make_evaluator(UnlearnScriptArguments(dataset="locuslab/TOFU", forget_split="forget10", eval_benchmark="muse"))


def _train_cli(tmp, *args):
    from trl_unlearn import cli

    cli.main(["npo", "--model_name_or_path", "x/y", "--output_dir", str(tmp / "out"), *args])


def _eval_cli(*args):
    from trl_unlearn import cli

    return cli.main(["eval", "tofu", *args])


def _evaluate_with_foreign_tokenizer(s):
    TOFUEvaluator("forget01", data_dir=TOFU_TINY, holdout=None).evaluate(s["model"], _bigger_tokenizer(s))


# (id, action(setup, tmp_path), exception, message fragment)
RAISES = [
    # 11: non-finite and meaningless numbers, in every config
    ("npo-beta-nan", lambda s, t: _cfg(beta=float("nan")), ValueError, "`beta` must be a finite number"),
    ("dipo-strength-inf", lambda s, t: _cfg(DiPOConfig, strength=float("inf")), ValueError, "`strength` must be a finite"),
    ("simnpo-delta-nan", lambda s, t: _cfg(SimNPOConfig, delta=float("nan")), ValueError, "`delta` must be a finite"),
    ("lr-nan", lambda s, t: _cfg(GradAscentConfig, learning_rate=float("nan")), ValueError, "`learning_rate` must be a finite"),
    ("retain-weight-inf", lambda s, t: _cfg(retain_loss_weight=math.inf), ValueError, "`retain_loss_weight` must be a finite"),
    ("epochs-0", lambda s, t: _cfg(num_train_epochs=0), ValueError, "nothing to train"),
    ("train-batch-0", lambda s, t: _cfg(per_device_train_batch_size=0), ValueError, "`per_device_train_batch_size` must be a positive"),
    ("max-length-0", lambda s, t: _cfg(max_length=0), ValueError, "`max_length` must be a positive"),
    # 10: the config belongs to the trainer
    ("dipo-config-to-npo", lambda s, t: _trainer(s, args=_cfg(DiPOConfig)), TypeError, "`args` must be a NPOConfig, got DiPOConfig"),
    ("graddiff-config-to-npo", lambda s, t: _trainer(s, args=_cfg(GradDiffConfig)), TypeError, "must be a NPOConfig, got GradDiffConfig"),
    # 11: evaluator arguments
    ("tofu-limit-minus-1", lambda s, t: TOFUEvaluator(limit=-1), ValueError, "`limit` must be a positive integer"),
    ("tofu-limit-0", lambda s, t: TOFUEvaluator(limit=0), ValueError, "`limit` must be a positive integer"),
    ("tofu-metrics-empty", lambda s, t: TOFUEvaluator(metrics=[]), ValueError, "`metrics` is empty"),
    ("muse-metrics-empty", lambda s, t: MUSEEvaluator(metrics=()), ValueError, "`metrics` is empty"),
    ("tofu-max-new-tokens-0", lambda s, t: TOFUEvaluator(max_new_tokens=0), ValueError, "`max_new_tokens` must be a positive"),
    ("muse-knowmem-tokens-0", lambda s, t: MUSEEvaluator(knowmem_max_new_tokens=0), ValueError, "`knowmem_max_new_tokens`"),
    ("tofu-batch-size-0", lambda s, t: TOFUEvaluator(batch_size=0), ValueError, "`batch_size` must be a positive"),
    ("tofu-mia-k-0", lambda s, t: TOFUEvaluator(mia_k=0), ValueError, "`mia_k`"),
    # 8: a log of the other benchmark
    ("tofu-summarize-muse-log", lambda s, t: tofu.summarize(MUSE_LOG), ValueError, "is a MUSE log"),
    ("muse-summarize-tofu-log", lambda s, t: muse.summarize(TOFU_LOG), ValueError, "is a TOFU log"),
    ("tofu-reference-muse-log", lambda s, t: tofu.summarize(TOFU_LOG, MUSE_LOG), ValueError, "retain_reference is a MUSE log"),
    ("tofu-evaluator-muse-reference", lambda s, t: _tofu_eval_with_reference(t, MUSE_LOG), ValueError, "is a MUSE log"),
    # 1: the reference is checked before any scoring (and before training, in the CLI)
    ("reference-missing-file", lambda s, t: _tofu_eval_with_reference(t, str(t / "nope.json")), FileNotFoundError, "No evaluation log"),
    ("reference-full-size-with-limit", lambda s, t: _tofu_eval_with_reference(
        t, {"forget_truth_ratio": {"value_by_index": {str(i): {"score": 1.0} for i in range(5)}}}, limit=2),
     ValueError, "covers 5 forget questions but this evaluation has 2 (forget10 (limit=2))"),
    ("output-dir-is-a-file", lambda s, t: check_output_dir(_write(t, "file", "x")), ValueError, "is a file, not a folder"),
    # 6: never label results with a benchmark split they did not come from
    ("cli-tofu-eval-of-custom-split", lambda s, t: _custom_split_tofu_eval(t), ValueError, "split 'my_forget'"),
    ("cli-muse-eval-of-tofu-data", lambda s, t: _muse_eval_on_tofu_data(t), ValueError, "evaluates the MUSE corpus"),
    # 9: rows that cannot mean anything
    ("none-question", lambda s, t: prepare_dataset(Dataset.from_list([{"question": None, "answer": "a"}, {"question": "q", "answer": "b"}]),
                                                   s["tok"], name="forget", max_length=64), ValueError, "1 forget row(s) have a missing (None)"),
    ("none-completion", lambda s, t: prepare_dataset([{"prompt": "p", "completion": None}], s["tok"], name="forget", max_length=64),
     ValueError, "missing (None) prompt or completion"),
    ("all-answers-empty", lambda s, t: prepare_dataset([{"question": "q", "answer": " "}], s["tok"], name="retain", max_length=64),
     ValueError, "Every retain row has an empty answer"),
    # 12: containers
    ("iterable-dataset", lambda s, t: _trainer(s, forget_dataset=IterableDataset.from_generator(lambda: iter(qa_rows(2)))),
     TypeError, "IterableDataset (streamed)"),
    ("string-as-dataset", lambda s, t: prepare_dataset("forget.json", s["tok"], name="forget", max_length=64), TypeError,
     "must be a datasets.Dataset, a list of dicts"),
    # 13: vocabularies and the reference model
    ("tokenizer-bigger-than-model", lambda s, t: _trainer(s, processing_class=_bigger_tokenizer(s)), ValueError, "embedding rows"),
    ("ref-model-other-vocab", lambda s, t: _trainer(s, ref_model=make_model(_bigger_tokenizer(s))), ValueError,
     "do not share a vocabulary"),
    ("ref-model-is-model", lambda s, t: _trainer(s, ref_model=s["model"]), ValueError, "same object as `model`"),
    ("evaluated-model-other-tokenizer", lambda s, t: _evaluate_with_foreign_tokenizer(s), ValueError, "evaluated model has"),
    # 7: DiPO settings that make both preference distributions equal
    ("dipo-top-k-vocab", lambda s, t: _trainer(s, DiPOTrainer, args=_cfg(DiPOConfig, top_k=10_000)), ValueError,
     "at least the vocabulary size"),
    # 14: paths, files, the Hub
    ("local-model-missing", lambda s, t: check_model_path("./checkpoints/none/here"), FileNotFoundError, "is a local path"),
    ("trainer-local-model-missing", lambda s, t: _trainer(s, model=str(t / "no-model")), FileNotFoundError, "nothing exists there"),
    ("eval-cli-model-missing", lambda s, t: _eval_cli("--model_name_or_path", str(t / "no" / "model"), "--data_dir", str(TOFU_TINY)),
     FileNotFoundError, "is a local path"),
    ("cli-eval-every-0-steps", lambda s, t: _train_cli(t, "--eval_every_steps", "0", "--eval_benchmark", "tofu"),
     ValueError, "`eval_every_steps` must be a positive integer"),
    ("cli-eval-every-without-benchmark", lambda s, t: _train_cli(t, "--eval_every_steps", "5"), ValueError,
     "needs a benchmark to evaluate"),
    ("cli-eval-batch-size-0", lambda s, t: _train_cli(t, "--eval_batch_size", "0", "--eval_benchmark", "tofu",
                                                      "--data_dir", str(TOFU_TINY), "--forget_split", "forget01"),
     ValueError, "`batch_size` must be a positive integer"),
    ("cli-train-dtype", lambda s, t: _train_cli(t, "--dtype", "float33"), SystemExit, "2"),
    ("eval-cli-batch-size-0", lambda s, t: _eval_cli("--model_name_or_path", "x/y", "--batch_size", "0"), ValueError,
     "`batch_size` must be a positive integer"),
    ("eval-cli-dtype", lambda s, t: _eval_cli("--model_name_or_path", "x/y", "--dtype", "float33"), SystemExit, "2"),
    ("malformed-jsonl-line", lambda s, t: _malformed_tofu(t), ValueError, "forget01.json, line 2"),
    ("truncated-eval-log", lambda s, t: _truncated_log(t), ValueError, "TOFU_EVAL.json, line"),
    ("resume-incomplete-checkpoint", lambda s, t: _incomplete_checkpoint(t), ValueError, "incomplete (missing trainer_state.json"),
    ("resume-without-optimizer", lambda s, t: _missing_optimizer(t), ValueError, "missing optimizer.pt"),
    ("resume-nothing-complete", lambda s, t: _no_complete_checkpoint(t), ValueError, "found no complete checkpoint"),
    ("resume-not-a-folder", lambda s, t: resolve_resume_checkpoint(str(t / "checkpoint-9"), t), FileNotFoundError, "is not a folder"),
    ("push-offline", lambda s, t: _offline_push(t), HubAccessError, "offline mode (HF_HUB_OFFLINE=1)"),
    ("push-without-token", lambda s, t: _tokenless_push(t), HubAccessError, "No Hugging Face token found"),
]


@pytest.mark.parametrize("action,exception,fragment", [r[1:] for r in RAISES], ids=[r[0] for r in RAISES])
def test_bad_input_raises_a_clear_error(setup, tmp_path, action, exception, fragment):
    with pytest.raises(exception) as info:
        action(setup, tmp_path)
    assert fragment in str(info.value)


# ---------------------------------------------------------------------------------------------
# Accepted, with a warning that counts what happened (or accepted as a user expects)
# ---------------------------------------------------------------------------------------------
def test_empty_answers_are_dropped_with_a_count(setup, caplog):
    rows = qa_rows(4)
    rows[2]["answer"] = ""
    with caplog.at_level(logging.WARNING, logger="trl_unlearn.data"):
        data = prepare_dataset(rows, setup["tok"], name="forget", max_length=64)
    assert len(data) == 3
    assert "1 of 4 forget row(s) have an empty answer (first: row 2) and are dropped" in caplog.text


def test_empty_texts_are_dropped_with_a_count(setup, caplog):
    with caplog.at_level(logging.WARNING, logger="trl_unlearn.data"):
        data = prepare_dataset([{"text": "the red book was written in paris"}, {"text": ""}, {"text": "paris"}],
                               setup["tok"], name="forget", max_length=64)
    assert len(data) == 1
    assert "1 of 3 forget row(s) have an empty text" in caplog.text
    assert "1 forget text(s) are a single token long and are dropped" in caplog.text


def test_list_of_dicts_and_dataframe_are_accepted(setup):
    pandas = pytest.importorskip("pandas")
    rows = qa_rows(4)
    expected = prepare_dataset(Dataset.from_list(rows), setup["tok"], name="forget", max_length=64)
    for data in (rows, pandas.DataFrame(rows), {k: [r[k] for r in rows] for k in rows[0]}):
        got = prepare_dataset(data, setup["tok"], name="forget", max_length=64)
        assert got["completion_ids"] == expected["completion_ids"]
    trainer = _trainer(setup, forget_dataset=pandas.DataFrame(rows), retain_dataset=qa_rows(3, offset=50))
    assert trainer.dataset_info["forget"]["num_rows"] == 4 and trainer.dataset_info["retain"]["num_rows"] == 3


def test_a_metric_name_as_a_string_is_one_name():
    assert TOFUEvaluator(metrics="forget").requested_metrics == TOFUEvaluator(metrics=["forget"]).requested_metrics
    assert MUSEEvaluator(metrics="verbmem").requested_metrics == {"forget_verbmem_ROUGE"}


def test_nan_per_example_values_are_reported():
    log = {"forget_Q_A_Prob": {"value_by_index": {"0": {"prob": 0.5}, "1": {"prob": float("nan")}}}}
    with pytest.warns(UserWarning, match=r"'forget_Q_A_Prob': 1 of 2 per-example 'prob' values are NaN or infinite"):
        summary = tofu.summarize(log)
    assert math.isnan(summary["forget_Q_A_Prob"])


def test_dipo_warns_once_when_the_set_is_the_whole_vocabulary(setup, caplog):
    args = _cfg(DiPOConfig, probability_threshold=1e-30, max_steps=2, retain_loss_type="none")
    trainer = _trainer(setup, DiPOTrainer, args=args, retain_dataset=None)
    with caplog.at_level(logging.WARNING, logger="trl_unlearn.trainer.dipo_trainer"):
        trainer.train()
    messages = [r.getMessage() for r in caplog.records if "high-confidence set holds all" in r.getMessage()]
    assert len(messages) == 1
    assert f"all {len(setup['tok'])} tokens" in messages[0] and "probability_threshold=1e-30" in messages[0]


# ---------------------------------------------------------------------------------------------
# Faults of a real run
# ---------------------------------------------------------------------------------------------
def _poison_at(last_step):
    """A callback making one weight NaN at the end of ``last_step`` (after the loss check has passed)."""
    from transformers import TrainerCallback

    class Poison(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == last_step:
                with torch.no_grad():
                    next(model.parameters()).view(-1)[0] = float("nan")

    return Poison()


def test_nan_weights_on_the_last_step_are_never_saved(setup, tmp_path):
    args = _cfg(output_dir=str(tmp_path), max_steps=2, save_strategy="steps", save_steps=1)
    trainer = _trainer(setup, model=make_model(setup["tok"]), args=args, callbacks=[_poison_at(2)])
    with pytest.raises(FloatingPointError, match=r"not finite after step 2 \(first: model\.embed_tokens\.weight\)"):
        trainer.train()
    assert (tmp_path / "checkpoint-1" / "model.safetensors").is_file()
    assert not (tmp_path / "checkpoint-2").exists()
    with pytest.raises(FloatingPointError, match="it is not saved"):
        trainer.save_model()
    assert not (tmp_path / "model.safetensors").exists()


def test_hub_token_never_reaches_disk(setup, tmp_path):
    secret = "hf_issue13_secret_token_value"
    args = _cfg(output_dir=str(tmp_path), max_steps=1, save_strategy="steps", save_steps=1, hub_token=secret)
    trainer = _trainer(setup, model=make_model(setup["tok"]), args=args)
    trainer.train()
    trainer.save_model()
    assert trainer.args.hub_token == secret  # kept in memory, for the push
    saved = sorted(tmp_path.rglob("training_args.bin"))
    assert [p.relative_to(tmp_path).as_posix() for p in saved] == ["checkpoint-1/training_args.bin", "training_args.bin"]
    assert torch.load(saved[-1], weights_only=False).hub_token is None  # test-only load of our own file
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path


def test_resume_skips_a_half_written_checkpoint(setup, tmp_path, caplog):
    def trainer(max_steps):
        args = _cfg(output_dir=str(tmp_path), max_steps=max_steps, save_strategy="steps", save_steps=1)
        return _trainer(setup, model=make_model(setup["tok"]), args=args)

    trainer(2).train()
    (tmp_path / "checkpoint-2" / "trainer_state.json").unlink()  # the crash hit the save of step 2
    resumed = trainer(3)
    with caplog.at_level(logging.WARNING, logger="trl_unlearn.checks"):
        resumed.train(resume_from_checkpoint=True)
    assert f"Skipping the incomplete checkpoint {tmp_path / 'checkpoint-2'} (missing trainer_state.json)" in caplog.text
    assert resumed.state.global_step == 3
    assert [h["step"] for h in resumed.state.log_history if "loss" in h] == [1, 2, 3]  # step 1 restored, 2-3 new


def _cli_args(saved_model, out, *extra):
    return ["--model_name_or_path", str(saved_model), "--data_dir", str(TOFU_TINY), "--forget_split", "forget01",
            "--retain_split", "retain99", "--output_dir", str(out), "--per_device_train_batch_size", "2",
            "--report_to", "none", "--activation_checkpointing", "false", "--use_cpu", "true", "--learning_rate", "1e-3",
            *extra]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    tok = tiny_tokenizer()
    path = tmp_path_factory.mktemp("model") / "tiny"
    tiny_model(tok).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_cli_resume_from_checkpoint_is_honoured(saved_model, tmp_path):
    from trl_unlearn.scripts.unlearn import make_parser, run

    def cli_run(*extra):
        return run("npo", *make_parser("npo").parse_args_and_config(_cli_args(saved_model, tmp_path, *extra)))

    cli_run("--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1")
    first = (tmp_path / "checkpoint-1" / "model.safetensors").stat().st_mtime_ns
    trainer = cli_run("--max_steps", "3", "--save_strategy", "steps", "--save_steps", "1", "--resume_from_checkpoint", "true")
    assert trainer.state.global_step == 3
    assert (tmp_path / "checkpoint-1" / "model.safetensors").stat().st_mtime_ns == first  # not retrained from step 1
    assert (tmp_path / "checkpoint-3").is_dir()


def test_cli_checks_the_evaluation_before_training(saved_model, tmp_path):
    from trl_unlearn import cli

    reference = _write(tmp_path, "ref/TOFU_EVAL.json", json.dumps(
        {"forget_truth_ratio": {"value_by_index": {str(i): {"score": 1.0} for i in range(2)}}}))  # full-size: forget01_perturbed has 2 rows
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"covers 2 forget questions but this evaluation has 1 \(forget01 \(limit=1\)\)"):
        cli.main(["npo", *_cli_args(saved_model, out, "--max_steps", "1", "--save_strategy", "no", "--eval_limit", "1",
                                    "--eval_benchmark", "tofu", "--retain_reference", str(reference))])
    with pytest.raises(ValueError, match="is a file, not a folder"):
        cli.main(["npo", *_cli_args(saved_model, _write(tmp_path, "a-file", ""), "--max_steps", "1")])
    with pytest.raises(FileNotFoundError, match="No evaluation log"):
        cli.main(["npo", *_cli_args(saved_model, out, "--max_steps", "1", "--eval_benchmark", "tofu",
                                    "--retain_reference", str(tmp_path / "missing"))])
    assert not out.exists()  # nothing trained


def test_cli_evaluation_failure_keeps_the_saved_model(saved_model, tmp_path, monkeypatch):
    from trl_unlearn import cli

    def broken(self, model, tokenizer, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(TOFUEvaluator, "evaluate", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match=f"The TOFU evaluation failed after training \\(OSError: disk full\\). The "
                                           f"unlearned model is saved in {out}"):
        cli.main(["npo", *_cli_args(saved_model, out, "--max_steps", "1", "--save_strategy", "no",
                                    "--eval_benchmark", "tofu")])
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    assert os.path.getsize(out / "model.safetensors") > 0
