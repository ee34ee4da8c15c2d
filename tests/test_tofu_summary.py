"""TOFU summaries reproduce open-unlearning's TOFU_SUMMARY.json from the per-example logs."""

import copy
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from trl_unlearn.evaluation import metrics as M
from trl_unlearn.evaluation import tofu

FULL = "tofu_Llama-3.2-1B-Instruct_full"
PAIRS = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}


@lru_cache(maxsize=None)
def _cached(path: str):
    return tofu.load_open_unlearning_log(path)


def load(path: Path):
    """A private deep copy (tests mutate logs)."""
    return copy.deepcopy(_cached(str(path)))


def full_dir(reference_logs, split):
    return reference_logs / FULL / f"evals_{split}"


def retain_dir(reference_logs, split):
    return reference_logs / f"tofu_Llama-3.2-1B-Instruct_{PAIRS[split]}"


def read_summary(folder):
    with open(folder / "TOFU_SUMMARY.json") as fh:
        return json.load(fh)


def assert_matches(summary, expected):
    assert sorted(summary) == sorted(expected)
    for key, value in expected.items():
        assert math.isclose(summary[key], value, rel_tol=1e-9, abs_tol=0.0), (key, summary[key], value)


@pytest.mark.parametrize("split", sorted(PAIRS))
def test_full_model_summary_matches_open_unlearning(reference_logs, split):
    folder = full_dir(reference_logs, split)
    reference = load(retain_dir(reference_logs, split))
    summary = tofu.summarize(load(folder / "TOFU_EVAL.json"), retain_reference=reference, summary_format="legacy")
    assert_matches(summary, read_summary(folder))


@pytest.mark.parametrize("split", sorted(PAIRS))
def test_retain_model_summary_matches_open_unlearning(reference_logs, split):
    folder = retain_dir(reference_logs, split)
    summary = tofu.summarize(load(folder / "TOFU_EVAL.json"), summary_format="legacy")
    # No reference: no forget_quality (OU logs None and leaves it out), privleak against 0.5.
    assert "forget_quality" not in summary
    assert_matches(summary, read_summary(folder))


def test_current_format_summary_matches_open_unlearning_smollm2_log(reference_logs):
    # OU's current TOFU suite reports forget_truth_ratio: its SmolLM2 log reproduces key for key.
    folder = reference_logs / "ou_smollm2-135m_tofu_forget05"
    assert_matches(tofu.summarize(load(folder / "TOFU_EVAL.json")), read_summary(folder))


def test_current_format_adds_forget_truth_ratio_to_legacy_logs(reference_logs):
    folder = full_dir(reference_logs, "forget10")
    log, reference = load(folder / "TOFU_EVAL.json"), load(retain_dir(reference_logs, "forget10"))
    current, legacy = tofu.summarize(log, reference), tofu.summarize(log, reference, summary_format="legacy")
    assert set(current) - set(legacy) == {"forget_truth_ratio"}
    assert current["forget_truth_ratio"] == pytest.approx(log["forget_truth_ratio"]["agg_value"], rel=1e-12)
    with pytest.raises(ValueError, match="summary_format must be one of"):
        tofu.summarize(log, summary_format="2024")


def test_known_forget10_values_and_path_inputs(reference_logs):
    # Paths (file or folder) are accepted for both arguments.
    summary = tofu.summarize(
        full_dir(reference_logs, "forget10"),
        retain_reference=retain_dir(reference_logs, "forget10") / "TOFU_EVAL.json",
    )
    assert summary["forget_quality"] == pytest.approx(3.9054713571083378e-22, rel=1e-9, abs=0)
    assert summary["model_utility"] == pytest.approx(0.5991534707368931, rel=1e-12, abs=0)


def test_summary_is_recomputed_not_copied(reference_logs):
    log = load(full_dir(reference_logs, "forget10") / "TOFU_EVAL.json")
    reference = load(retain_dir(reference_logs, "forget10"))
    baseline = tofu.summarize(log, reference)
    # Corrupting every stored aggregate changes nothing ...
    for entry in log.values():
        entry["agg_value"] = 12345.0
        if "auc" in entry:
            entry["auc"] = 12345.0
    assert tofu.summarize(log, reference) == baseline
    # ... while per-example values drive the numbers.
    log["forget_Q_A_Prob"]["value_by_index"]["0"]["prob"] += 4.0
    log["mia_min_k"]["forget"]["value_by_index"]["0"]["score"] = 1e6
    changed = tofu.summarize(log, reference)
    assert changed["forget_Q_A_Prob"] == pytest.approx(baseline["forget_Q_A_Prob"] + 4.0 / 400)
    assert changed["mia_min_k"] < baseline["mia_min_k"]
    assert changed["privleak"] != baseline["privleak"]


def test_without_reference_privleak_uses_half(reference_logs):
    log = load(full_dir(reference_logs, "forget10") / "TOFU_EVAL.json")
    summary = tofu.summarize(log)
    assert "forget_quality" not in summary
    assert summary["privleak"] == M.privleak(summary["mia_min_k"], 0.5)


def test_include_components_recovers_logged_aggregates(reference_logs):
    log = load(full_dir(reference_logs, "forget05") / "TOFU_EVAL.json")
    summary = tofu.summarize(log, include_components=True)
    expected_tr = log["forget_truth_ratio"]["agg_value"]
    assert summary["forget_truth_ratio"] == pytest.approx(expected_tr, rel=1e-12)
    for name in tofu.MODEL_UTILITY_COMPONENTS:
        assert summary[name] == pytest.approx(log[name]["agg_value"], rel=1e-12), name
    assert summary["model_utility"] == M.model_utility([summary[n] for n in tofu.MODEL_UTILITY_COMPONENTS])


def test_stored_truth_ratios_are_a_fallback(reference_logs):
    log = load(full_dir(reference_logs, "forget01") / "TOFU_EVAL.json")
    reference = load(retain_dir(reference_logs, "forget01"))
    expected = tofu.summarize(log, reference)
    for source in (log, reference):
        for key in [k for k in source if k.endswith(("_PARA_Prob", "_PERT_Prob"))]:
            del source[key]
    # Truth ratios and ra/wf option-normalised probabilities now come from the stored values.
    summary = tofu.summarize(log, reference)
    assert summary["forget_quality"] == pytest.approx(expected["forget_quality"], rel=1e-9, abs=0)
    assert summary["model_utility"] == pytest.approx(expected["model_utility"], rel=1e-12)


def test_truth_ratio_values_order_and_errors(reference_logs):
    log = load(full_dir(reference_logs, "forget01") / "TOFU_EVAL.json")
    ratios = tofu.truth_ratio_values(log, "forget")
    stored = [e["score"] for e in log["forget_truth_ratio"]["value_by_index"].values()]
    np.testing.assert_allclose(ratios, stored, rtol=1e-12)
    with pytest.raises(ValueError, match="Unknown TOFU split"):
        tofu.truth_ratio_values(log, "holdout")
    with pytest.raises(KeyError, match="no retain truth ratios"):
        tofu.truth_ratio_values({}, "retain")


def test_reference_without_forget_truth_ratio_is_an_error(reference_logs):
    log = load(full_dir(reference_logs, "forget01") / "TOFU_EVAL.json")
    reference = load(retain_dir(reference_logs, "forget01"))
    for key in ("forget_truth_ratio", "forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob"):
        del reference[key]
    with pytest.raises(ValueError, match="retain_reference has no per-example forget truth ratios"):
        tofu.summarize(log, reference)


def test_reference_on_another_forget_split_is_an_error(reference_logs):
    log = load(full_dir(reference_logs, "forget01") / "TOFU_EVAL.json")
    with pytest.raises(ValueError, match="same forget split"):
        tofu.summarize(log, load(retain_dir(reference_logs, "forget10")))


def test_reference_without_min_k_warns_and_uses_half(reference_logs):
    log = load(full_dir(reference_logs, "forget01") / "TOFU_EVAL.json")
    reference = load(retain_dir(reference_logs, "forget01"))
    del reference["mia_min_k"]
    with pytest.warns(UserWarning, match="mia_min_k"):
        summary = tofu.summarize(log, reference)
    assert summary["privleak"] == M.privleak(summary["mia_min_k"], 0.5)
    assert "forget_quality" in summary


def test_partial_model_utility_inputs_name_what_is_missing(reference_logs):
    log = load(full_dir(reference_logs, "forget01") / "TOFU_EVAL.json")
    del log["wf_Q_A_ROUGE"]
    with pytest.warns(UserWarning, match="missing inputs: .*'wf_Q_A_ROUGE'"):
        summary = tofu.summarize(log, include_components=True)
    assert "model_utility" not in summary
    assert "wf_Q_A_ROUGE" not in summary
    assert summary["wf_Truth_Ratio"] == pytest.approx(log["wf_Truth_Ratio"]["agg_value"], rel=1e-12)
    assert summary["forget_Q_A_Prob"] == pytest.approx(0.9011520192027092, rel=1e-12)
    with pytest.raises(KeyError, match="wf_Q_A_ROUGE"):
        tofu.model_utility_components(log)


def test_subset_of_metrics_and_empty_results():
    # Forget-only results (e.g. a quick in-training eval): only what can be computed appears.
    results = {
        "forget_Q_A_Prob": {
            "value_by_index": {"0": {"prob": 0.2, "avg_loss": 1.6}, "1": {"prob": 0.4, "avg_loss": 0.9}}
        },
        "exact_memorization": {"value_by_index": {"0": {"score": 1.0}, "1": {"score": None}}},
    }
    assert tofu.summarize(results) == {"exact_memorization": 1.0, "forget_Q_A_Prob": pytest.approx(0.3)}
    with pytest.raises(ValueError, match="no TOFU metric"):
        tofu.summarize({})
    with pytest.raises(TypeError, match="TOFU_EVAL.json"):
        tofu.summarize(42)


def test_save_and_load_round_trip(tmp_path):
    results = {
        "mia_min_k": {
            "forget": {"agg_value": np.float32(0.5), "value_by_index": {"0": {"score": np.float64(0.1)}}},
            "holdout": {"agg_value": 0.9, "value_by_index": {"0": {"score": 0.9}}},
            "auc": np.float64(1.0),
            "agg_value": 1.0,
        },
        "forget_Q_A_PERT_Prob": {
            "value_by_index": {"0": {"prob": np.array([0.1, 0.2]), "avg_loss": [2.3, 1.6]}}
        },
    }
    written = tofu.save_results(results, tmp_path)
    assert written == tmp_path / "TOFU_EVAL.json"
    loaded = tofu.load_open_unlearning_log(tmp_path)
    assert list(loaded) == ["forget_Q_A_PERT_Prob", "mia_min_k"]  # sorted like OU
    assert loaded["forget_Q_A_PERT_Prob"]["value_by_index"]["0"]["prob"] == pytest.approx([0.1, 0.2])
    assert tofu.summarize(loaded) == {"mia_min_k": 1.0, "privleak": M.privleak(1.0)}
    summary_file = tofu.save_summary(tofu.summarize(loaded), tmp_path)
    assert json.loads(summary_file.read_text()) == {"mia_min_k": 1.0, "privleak": M.privleak(1.0)}
    with pytest.raises(FileNotFoundError, match="TOFU_EVAL.json"):
        tofu.load_open_unlearning_log(tmp_path / "missing")


def test_lazy_evaluator_export():
    with pytest.raises(AttributeError, match="no attribute 'NotAThing'"):
        tofu.NotAThing  # noqa: B018
    import importlib.util

    if importlib.util.find_spec("trl_unlearn.evaluation.tofu_evaluator") is None:
        pytest.skip("TOFUEvaluator not implemented yet")
    from trl_unlearn.evaluation.tofu import TOFUEvaluator
    from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator as direct

    assert TOFUEvaluator is direct
