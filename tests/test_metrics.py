"""Pure metric functions: hand-computed values, open-unlearning edge cases, per-example oracles."""

import json
import math
import zlib

import numpy as np
import pytest

from trl_unlearn.evaluation import metrics as M


def close(a, b, rel=1e-12):
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


# ------------------------------------------------------------------ ROUGE


def test_rouge_scores_hand_example():
    s = M.rouge_scores(ground_truth="the cat sat down", generation="the cat sat")
    assert s == {"rouge1_recall": 0.75, "rougeL_f1": pytest.approx(2 * 0.75 / 1.75), "rougeL_recall": 0.75}


def test_rouge_scores_argument_order_is_target_then_prediction():
    # Recall is relative to the ground truth: swapping the arguments changes it.
    assert M.rouge_scores("a b c d", "a b")["rougeL_recall"] == 0.5
    assert M.rouge_scores("a b", "a b c d")["rougeL_recall"] == 1.0


def test_rouge_scores_uses_stemming():
    assert M.rouge_scores("cats running", "cat run")["rouge1_recall"] == 1.0


def test_rouge_scores_rejects_non_strings():
    with pytest.raises(TypeError, match="two strings"):
        M.rouge_scores(["a"], "a")


# ------------------------------------------------------------------ probabilities / truth ratio


def test_probability_and_normalised_probability():
    assert close(M.probability(math.log(2.0)), 0.5)
    np.testing.assert_allclose(M.probability([0.0, math.log(4.0)]), [1.0, 0.25])
    assert close(M.normalised_probability(0.5, [0.25, 0.25]), 0.5 / (1.0 + 1e-10))


def test_truth_ratio_hand_example():
    # geometric mean over perturbed answers = exp(-mean loss); epsilon in the denominator.
    expected = math.exp(-2.5) / (math.exp(-1.0) + 1e-10)
    assert close(M.truth_ratio(1.0, [2.0, 3.0]), expected)
    # Several paraphrases are averaged in loss space.
    assert close(M.truth_ratio([0.5, 1.5], [2.0, 3.0]), expected)
    np.testing.assert_allclose(
        M.truth_ratios([1.0, 1.0], [[2.0, 3.0], [1.0]]), [expected, 1 / (1 + math.e * 1e-10)]
    )


def test_truth_ratio_errors():
    with pytest.raises(ValueError, match="2 correct-answer losses but 1"):
        M.truth_ratios([1.0, 2.0], [[1.0]])
    with pytest.raises(ValueError, match="at least one"):
        M.truth_ratio(1.0, [])


def test_truth_ratio_aggregators():
    r = [0.5, 2.0, 1.0]
    assert close(M.closer_to_1_better(r), (0.5 + 1 / (2.0 + 1e-10) + 1 / (1.0 + 1e-10)) / 3)
    assert close(M.true_better(r), 0.5 / 3)
    assert M.aggregate_truth_ratio(r, "true_better") == M.true_better(r)
    with pytest.raises(ValueError, match="closer_to_1_better"):
        M.aggregate_truth_ratio(r, "mean")


def test_mean_score_skips_none_and_averages_lists():
    assert M.mean_score([1.0, None, 0.0]) == 0.5
    assert M.mean_score([[1.0, 0.0], [1.0, 1.0]]) == 0.75
    with pytest.raises(ValueError, match="no"):
        M.mean_score([None])


# ------------------------------------------------------------------ forget quality / utility


def test_forget_quality_ks_pvalues():
    assert M.forget_quality([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == 1.0
    # Fully separated samples of 3 and 3: exact two-sided p = 2 / C(6, 3).
    assert close(M.forget_quality([1, 2, 3], [4, 5, 6]), 2 / 20)


def test_model_utility_is_harmonic_mean():
    assert close(M.model_utility([1.0, 2.0, 4.0]), 3 / (1 + 0.5 + 0.25))
    assert close(M.model_utility({"a": 1.0, "b": 2.0, "c": 4.0}), 12 / 7)
    assert M.model_utility([0.0, 0.5, 0.7]) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        M.model_utility([0.5, -0.1])


# ------------------------------------------------------------------ MIA


def test_min_k_score():
    assert M.min_k_score([-1.0, -2.0, -3.0, -4.0, -5.0], k=0.4) == 4.5  # 2 lowest
    assert M.min_k_score([-0.7], k=0.4) == 0.7  # n = 1 keeps one token
    assert M.min_k_score([-1.0, -3.0], k=0.4) == 3.0  # int(0.8) = 0 -> max(1, .) = 1
    assert M.min_k_score([], k=0.4) == 0.0  # OU's empty convention
    with pytest.raises(ValueError, match="fraction"):
        M.min_k_score([-1.0], k=0.0)


def test_min_k_plus_plus_score():
    # z = (lp - mu) / sigma = [1, -1]; k keeps the lowest one.
    assert M.min_k_plus_plus_score([-1.0, -2.0], mu=[-1.5, -1.5], sigma=[0.5, 0.5], k=0.4) == 1.0
    # sigma is floored at sqrt(1e-6) (OU clamps the variance at 1e-6).
    assert close(M.min_k_plus_plus_score([-1.0], mu=[-1.5], sigma=[0.0]), -0.5 / 1e-3)
    assert M.min_k_plus_plus_score([], [], []) == 0.0
    with pytest.raises(ValueError, match="one entry per scored token"):
        M.min_k_plus_plus_score([-1.0, -2.0], [0.0], [1.0])


def test_vocab_log_prob_moments():
    uniform = np.log(np.full((2, 4), 0.25))
    mu, sigma = M.vocab_log_prob_moments(uniform)
    np.testing.assert_allclose(mu, np.log(0.25))
    np.testing.assert_allclose(sigma, 1e-3)  # zero variance clamped
    p = np.array([[0.5, 0.5 * math.exp(-1)]])
    p = p / p.sum()
    lp = np.log(p)
    mu, sigma = M.vocab_log_prob_moments(lp)
    expected_mu = float((p * lp).sum())
    assert close(mu[0], expected_mu)
    assert close(sigma[0], math.sqrt(float((p * (lp - expected_mu) ** 2).sum())), rel=1e-9)


def test_loss_zlib_reference_gradnorm_scores():
    assert M.loss_score(1.25) == 1.25
    assert len(zlib.compress(b"")) == 8
    assert M.zlib_score(1.6, "") == 0.2
    assert M.zlib_score(1.0, "abc") == 1.0 / len(zlib.compress(b"abc"))
    assert M.reference_score(2.0, 0.5) == 1.5
    assert M.gradnorm_score([1.0, 2.0, 6.0]) == 3.0


def test_mia_auc_orientation():
    # Loss-like scores: forget (members, label 0) lower than holdout (label 1) -> AUC 1.
    assert M.mia_auc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert M.mia_auc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert M.mia_auc([0.1, 0.3], [0.2, 0.4]) == 0.75
    assert M.mia_auc([0.5, 0.5], [0.5, 0.5]) == 0.5


def test_privleak_formula_and_epsilon():
    assert M.privleak(0.5) == 0.0
    assert M.privleak(1.0) == (0.0 - 0.5) / (0.5 + 1e-10) * 100
    assert M.privleak(1.0) != -100.0  # the epsilon is what OU's logs show
    assert close(M.privleak(1.0), -99.99999998)
    # OU's retain99 summary: mia_min_k 0.470625 vs the default 0.5.
    assert close(M.privleak(0.470625), 5.8749999988250075)
    # OU's full-model forget01 summary: AUC 1 against retain99's 0.470625.
    assert close(M.privleak(1.0, 0.470625), -99.9999999811098)


# ------------------------------------------------------------------ memorisation


def test_exact_memorization():
    assert M.exact_memorization([1, 9, 3, 4], [1, 2, 3, 4]) == 0.75
    assert M.exact_memorization(np.array([5]), np.array([5])) == 1.0
    assert M.exact_memorization([], []) is None
    with pytest.raises(ValueError, match="aligned"):
        M.exact_memorization([1, 2], [1])


@pytest.mark.parametrize(
    "preds, labels, expected",
    [
        ([1, 2, 3, 4], [1, 2, 3, 4], 1.0),  # whole answer extracted
        ([1, 9, 3, 4], [1, 2, 3, 4], 0.5),  # suffix from k = 2
        ([9, 2, 3, 4], [1, 2, 3, 4], 0.75),
        ([1, 2, 3, 9], [1, 2, 3, 4], 0.25),  # OU quirk: loop ends at k = T - 1 -> 1/T, not 0
        ([9, 9, 9, 9], [1, 2, 3, 4], 0.25),
        ([7], [7], 1.0),
        ([8], [7], 1.0),  # T = 1: k = T - 1 = 0 whatever the prediction
        ([], [], 0.0),
    ],
)
def test_extraction_strength(preds, labels, expected):
    assert M.extraction_strength(preds, labels) == expected


# ------------------------------------------------------------------ per-example oracles (OU logs)


def _load(path):
    with open(path) as fh:
        return json.load(fh)


def test_rouge_scores_reproduce_logged_examples(reference_logs):
    log = _load(reference_logs / "tofu_Llama-3.2-1B-Instruct_full" / "evals_forget01" / "TOFU_EVAL.json")
    checked = 0
    for key in ("forget_Q_A_ROUGE", "ra_Q_A_ROUGE", "wf_Q_A_ROUGE"):
        for example in log[key]["value_by_index"].values():
            got = M.rouge_scores(example["ground_truth"], example["generation"])
            for field, value in got.items():
                assert value == pytest.approx(example[field], rel=1e-12, abs=1e-15), (key, field)
            checked += 1
    assert checked == 40 + 100 + 117


def test_rouge_f1_reproduces_muse_logged_examples(reference_logs):
    log = _load(reference_logs / "muse_Llama-2-7b-hf_News_target" / "MUSE_EVAL.json")
    for example in list(log["forget_knowmem_ROUGE"]["value_by_index"].values())[:50]:
        got = M.rouge_scores(example["ground_truth"], example["generation"])
        assert got["rougeL_f1"] == pytest.approx(example["rougeL_f1"], rel=1e-12, abs=1e-15)


def test_zlib_and_truth_ratio_reproduce_logged_examples(reference_logs):
    log = _load(reference_logs / "tofu_Llama-3.2-1B-Instruct_full" / "evals_forget01" / "TOFU_EVAL.json")
    loss = log["mia_loss"]["forget"]["value_by_index"]
    zlib_scores = log["mia_zlib"]["forget"]["value_by_index"]
    answers = log["forget_Q_A_ROUGE"]["value_by_index"]
    for idx, entry in zlib_scores.items():
        expected = M.zlib_score(loss[idx]["score"], answers[idx]["ground_truth"])
        assert close(entry["score"], expected, rel=1e-12)
    para = log["forget_Q_A_PARA_Prob"]["value_by_index"]
    pert = log["forget_Q_A_PERT_Prob"]["value_by_index"]
    for idx, entry in log["forget_truth_ratio"]["value_by_index"].items():
        assert close(M.truth_ratio(para[idx]["avg_loss"], pert[idx]["avg_loss"]), entry["score"], rel=1e-12)
