"""MUSE summaries reproduce open-unlearning's MUSE_SUMMARY.json from the per-example logs."""

import copy
import json
import math
from functools import lru_cache

import pytest

from trl_unlearn.evaluation import metrics as M
from trl_unlearn.evaluation import muse

TARGET = "muse_Llama-2-7b-hf_News_target"
RETRAIN = "muse_Llama-2-7b-hf_News_retrain"


@lru_cache(maxsize=None)
def _cached(path):
    return muse.load_open_unlearning_log(path)


def load(reference_logs, name):
    return copy.deepcopy(_cached(str(reference_logs / name)))


def expected_summary(reference_logs, name):
    with open(reference_logs / name / "MUSE_SUMMARY.json") as fh:
        return json.load(fh)


def assert_matches(summary, expected):
    assert sorted(summary) == sorted(expected)
    for key, value in expected.items():
        assert math.isclose(summary[key], value, rel_tol=1e-9, abs_tol=0.0), (key, summary[key], value)


def test_target_summary_against_retrain_reference(reference_logs):
    summary = muse.summarize(load(reference_logs, TARGET), retrain_reference=load(reference_logs, RETRAIN))
    assert_matches(summary, expected_summary(reference_logs, TARGET))
    assert summary["privleak"] == pytest.approx(-99.81108310247458, rel=1e-12)


def test_retrain_summary_without_reference(reference_logs):
    summary = muse.summarize(reference_logs / RETRAIN / "MUSE_EVAL.json")
    assert_matches(summary, expected_summary(reference_logs, RETRAIN))
    # privleak against the default 0.5: ((1 - 0.5236) - 0.5) / (0.5 + 1e-10) * 100
    assert summary["privleak"] == pytest.approx(-4.7199999990560135, rel=1e-12)


def test_rouge_is_f1_and_recomputed(reference_logs):
    log = load(reference_logs, TARGET)
    for entry in log.values():
        entry["agg_value"] = -1.0
    summary = muse.summarize(log)
    values = [e["rougeL_f1"] for e in log["forget_verbmem_ROUGE"]["value_by_index"].values()]
    assert summary["forget_verbmem_ROUGE"] == M.mean_score(values)
    recall = M.mean_score(e["rougeL_recall"] for e in log["forget_verbmem_ROUGE"]["value_by_index"].values())
    assert summary["forget_verbmem_ROUGE"] != recall
    assert summary["mia_min_k"] == pytest.approx(0.9991, rel=1e-12)


def test_reference_without_min_k_warns(reference_logs):
    reference = load(reference_logs, RETRAIN)
    del reference["mia_min_k"]
    with pytest.warns(UserWarning, match="retrain_reference log has no per-example mia_min_k"):
        summary = muse.summarize(load(reference_logs, TARGET), reference)
    assert summary["privleak"] == M.privleak(summary["mia_min_k"], 0.5)


def test_errors_and_round_trip(tmp_path, reference_logs):
    with pytest.raises(ValueError, match="no MUSE metric"):
        muse.summarize({"unknown_metric": {"agg_value": 0.5}})
    with pytest.raises(ValueError, match="is a TOFU log"):
        muse.summarize({"model_utility": {"agg_value": 0.5}})
    with pytest.raises(FileNotFoundError, match="MUSE_EVAL.json"):
        muse.load_open_unlearning_log(tmp_path)
    log = load(reference_logs, RETRAIN)
    path = muse.save_results(log, tmp_path)
    assert path.name == "MUSE_EVAL.json"
    assert muse.summarize(tmp_path) == muse.summarize(log)
    assert muse.save_summary(muse.summarize(log), tmp_path).name == "MUSE_SUMMARY.json"


def test_lazy_evaluator_export():
    with pytest.raises(AttributeError):
        muse.NotAThing  # noqa: B018
    import importlib.util

    if importlib.util.find_spec("trl_unlearn.evaluation.muse_evaluator") is None:
        pytest.skip("MUSEEvaluator not implemented yet")
    from trl_unlearn.evaluation.muse import MUSEEvaluator
    from trl_unlearn.evaluation.muse_evaluator import MUSEEvaluator as direct

    assert MUSEEvaluator is direct
