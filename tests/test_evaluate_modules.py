"""Bundled `evaluate` modules load offline from their paths and match the pure functions."""

import json

import pytest

evaluate = pytest.importorskip("evaluate")

from trl_unlearn.evaluation import list_metric_modules, metric_module_path  # noqa: E402
from trl_unlearn.evaluation import metrics as M  # noqa: E402

EXPECTED_MODULES = [
    "privleak",
    "tofu_forget_quality",
    "tofu_model_utility",
    "tofu_truth_ratio",
    "unlearning_memorization",
    "unlearning_rouge",
]


def load_module(name):
    return evaluate.load(metric_module_path(name))


def read_log(path):
    with open(path) as fh:
        return json.load(fh)


def test_module_discovery():
    assert list_metric_modules() == EXPECTED_MODULES
    for name in EXPECTED_MODULES:
        assert metric_module_path(name).endswith(name)
    with pytest.raises(ValueError, match="available: \\['privleak'"):
        metric_module_path("rouge")


def test_module_scripts_use_absolute_imports_only():
    # evaluate copies the script alone into its cache; relative imports would break there.
    from pathlib import Path

    for name in EXPECTED_MODULES:
        source = (Path(metric_module_path(name)) / f"{name}.py").read_text()
        assert "from ." not in source and "import ." not in source, name


def test_tofu_forget_quality_and_truth_ratio_modules(reference_logs):
    full = read_log(reference_logs / "tofu_Llama-3.2-1B-Instruct_full" / "evals_forget10" / "TOFU_EVAL.json")
    retain = read_log(reference_logs / "tofu_Llama-3.2-1B-Instruct_retain90" / "TOFU_EVAL.json")

    def losses(log):
        para = log["forget_Q_A_PARA_Prob"]["value_by_index"]
        pert = log["forget_Q_A_PERT_Prob"]["value_by_index"]
        return [para[i]["avg_loss"] for i in para], [pert[i]["avg_loss"] for i in para]

    tr = load_module("tofu_truth_ratio")
    correct, wrong = losses(full)
    got = tr.compute(correct_avg_losses=correct, perturbed_avg_losses=wrong)
    assert got["truth_ratio"] == pytest.approx(full["forget_truth_ratio"]["agg_value"], rel=1e-12)
    got = tr.compute(correct_avg_losses=correct, perturbed_avg_losses=wrong, aggregator="true_better")
    assert got["truth_ratio"] == M.true_better(M.truth_ratios(correct, wrong))

    fq = load_module("tofu_forget_quality")
    model_tr = M.truth_ratios(*losses(full))
    retain_tr = M.truth_ratios(*losses(retain))
    result = fq.compute(predictions=model_tr, references=retain_tr)
    assert result["forget_quality"] == pytest.approx(3.9054713571083378e-22, rel=1e-9, abs=0)
    # Incremental add_batch gives the same answer as one compute call.
    for start in range(0, len(model_tr), 100):
        fq.add_batch(predictions=model_tr[start : start + 100], references=retain_tr[start : start + 100])
    assert fq.compute() == result


def test_tofu_model_utility_module(reference_logs):
    log = read_log(reference_logs / "tofu_Llama-3.2-1B-Instruct_full" / "evals_forget10" / "TOFU_EVAL.json")
    from trl_unlearn.evaluation.tofu import model_utility_components

    values = list(model_utility_components(log).values())
    result = load_module("tofu_model_utility").compute(values=values)
    assert result == {"model_utility": pytest.approx(0.5991534707368931, rel=1e-12)}


def test_unlearning_rouge_module(reference_logs):
    log = read_log(reference_logs / "muse_Llama-2-7b-hf_News_target" / "MUSE_EVAL.json")
    examples = list(log["forget_knowmem_ROUGE"]["value_by_index"].values())
    result = load_module("unlearning_rouge").compute(
        predictions=[e["generation"] for e in examples], references=[e["ground_truth"] for e in examples]
    )
    assert result["rougeL_f1"] == pytest.approx(0.6443370108563606, rel=1e-12)  # MUSE summary value
    expected_recall = M.mean_score(e["rougeL_recall"] for e in examples)
    assert result["rougeL_recall"] == pytest.approx(expected_recall, rel=1e-12)


def test_privleak_module(reference_logs):
    log = read_log(reference_logs / "muse_Llama-2-7b-hf_News_target" / "MUSE_EVAL.json")
    forget = [e["score"] for e in log["mia_min_k"]["forget"]["value_by_index"].values()]
    holdout = [e["score"] for e in log["mia_min_k"]["holdout"]["value_by_index"].values()]
    module = load_module("privleak")
    labels = [0] * len(forget) + [1] * len(holdout)
    result = module.compute(predictions=forget + holdout, references=labels, reference_auc=0.5236000000000001)
    assert result["auc"] == pytest.approx(0.9991, rel=1e-12)
    assert result["privleak"] == pytest.approx(-99.81108310247458, rel=1e-12)
    with pytest.raises(ValueError, match="forget examples 0 and holdout examples 1"):
        module.compute(predictions=[0.1, 0.2], references=[0, 0])


def test_unlearning_memorization_module():
    preds = [[1, 9, 3, 4], [5, 6], [7, 8, 0]]
    labels = [[1, 2, 3, 4], [5, 6], [7, 8, 9]]
    result = load_module("unlearning_memorization").compute(predictions=preds, references=labels)
    assert result["exact_memorization"] == pytest.approx((0.75 + 1.0 + 2 / 3) / 3)
    assert result["extraction_strength"] == pytest.approx((0.5 + 1.0 + 1 / 3) / 3)
