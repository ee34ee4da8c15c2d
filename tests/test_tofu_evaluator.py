"""TOFUEvaluator: OU layout, batch-size invariance, shared scoring, references, prompts, data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tests._tofu_fixture import HOLDOUT, TOFU_TINY, ForwardCounter, read_rows, single_thread, tiny_model, tiny_tokenizer
from trl_unlearn.evaluation.data import load_tofu_config
from trl_unlearn.evaluation.metrics import privleak
from trl_unlearn.evaluation.prompts import PromptFormat, clean_up_tokenization, encode_example, format_prompt
from trl_unlearn.evaluation.tofu import load_open_unlearning_log, save_results, summarize
from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator
from trl_unlearn.ops import IGNORE_INDEX

# Keys of OU's TOFU_EVAL.json (reference logs) that the evaluator produces without mia_reference.
OU_KEYS = {
    "exact_memorization", "extraction_strength", "forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob",
    "forget_Q_A_Prob", "forget_Q_A_ROUGE", "forget_quality", "forget_truth_ratio", "mia_gradnorm",
    "mia_loss", "mia_min_k", "mia_min_k_plus_plus", "mia_zlib", "model_utility", "privleak",
    "ra_Q_A_PERT_Prob", "ra_Q_A_Prob", "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE", "ra_Truth_Ratio",
    "retain_Q_A_PARA_Prob", "retain_Q_A_PERT_Prob", "retain_Q_A_Prob", "retain_Q_A_ROUGE",
    "retain_Truth_Ratio", "wf_Q_A_PERT_Prob", "wf_Q_A_Prob", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE",
    "wf_Truth_Ratio",
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok)


def make_evaluator(**kwargs):
    kwargs.setdefault("holdout", HOLDOUT)
    kwargs.setdefault("max_new_tokens", 5)
    return TOFUEvaluator("forget10", data_dir=TOFU_TINY, **kwargs)


@pytest.fixture(scope="module")
def full_results(model, tok):
    evaluator = make_evaluator(batch_size=16)
    return evaluator, evaluator.evaluate(model, tok)


def assert_close_tree(a, b, path="results"):
    """Every number within 1e-5, every string and structure identical."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_close_tree(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close_tree(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, path
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_results_have_open_unlearning_layout(full_results):
    evaluator, results = full_results
    assert set(results) == OU_KEYS
    n_forget, n_retain = len(read_rows("forget10_perturbed")), len(read_rows("retain_perturbed"))
    prob = results["forget_Q_A_Prob"]["value_by_index"]
    assert list(prob) == [str(i) for i in range(n_forget)]
    assert set(prob["0"]) == {"prob", "avg_loss"}
    assert prob["0"]["prob"] == pytest.approx(math.exp(-prob["0"]["avg_loss"]))
    pert = results["forget_Q_A_PERT_Prob"]["value_by_index"]["0"]
    assert len(pert["prob"]) == len(pert["avg_loss"]) == 3
    assert len(results["retain_Q_A_Prob"]["value_by_index"]) == n_retain
    rouge = results["forget_Q_A_ROUGE"]["value_by_index"]["0"]
    assert set(rouge) == {"rouge1_recall", "rougeL_f1", "rougeL_recall", "input", "ground_truth", "generation"}
    assert rouge["ground_truth"] == "the author born in oslo in 1975 is ingrid berg."  # lower-cased word tokenizer
    assert rouge["input"].startswith("you are a helpful assistant.") and rouge["input"].endswith("1975?")
    mia = results["mia_min_k"]
    assert set(mia) == {"forget", "holdout", "auc", "agg_value"}
    assert len(mia["holdout"]["value_by_index"]) == len(HOLDOUT)
    assert results["forget_quality"] == {"agg_value": None}  # no retain reference
    # truth ratio of example 0 from its own PARA / PERT losses
    para = results["forget_Q_A_PARA_Prob"]["value_by_index"]["0"]["avg_loss"]
    expected = math.exp(-np.mean(pert["avg_loss"])) / (math.exp(-para) + 1e-10)
    assert results["forget_truth_ratio"]["value_by_index"]["0"]["score"] == pytest.approx(expected)
    summary = evaluator.summarize(results)
    assert set(summary) == {
        "exact_memorization", "extraction_strength", "forget_Q_A_Prob", "forget_Q_A_ROUGE", "forget_truth_ratio",
        "mia_gradnorm", "mia_loss", "mia_min_k", "mia_min_k_plus_plus", "mia_zlib", "model_utility", "privleak",
    }  # fmt: skip  (OU's current suite reports forget_truth_ratio)
    assert summary["forget_truth_ratio"] == pytest.approx(results["forget_truth_ratio"]["agg_value"])
    assert summary["model_utility"] == pytest.approx(results["model_utility"]["agg_value"])
    assert summary["privleak"] == pytest.approx(results["privleak"]["agg_value"])


def test_per_example_values_do_not_depend_on_batch_size(model, tok):
    one = make_evaluator(batch_size=1, limit=3).evaluate(model, tok)
    many = make_evaluator(batch_size=16, limit=3).evaluate(model, tok)
    assert_close_tree(one, many)


def test_avg_loss_equals_hand_computation(full_results, model, tok):
    _, results = full_results
    row = read_rows("forget10_perturbed")[1]
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": row["question"]},
        {"role": "assistant", "content": row["answer"]},
    ]
    full = list(tok.apply_chat_template(messages, tokenize=True, return_dict=False)) + [tok.eos_token_id]
    prompt = tok.apply_chat_template(messages[:2], tokenize=True, add_generation_prompt=True, return_dict=False)
    with torch.no_grad():
        log_probs = torch.log_softmax(model(torch.tensor([full])).logits[0].double(), -1)
    nll = [-float(log_probs[t - 1, full[t]]) for t in range(len(prompt), len(full))]
    got = results["forget_Q_A_Prob"]["value_by_index"]["1"]["avg_loss"]
    assert got == pytest.approx(sum(nll) / len(nll), abs=1e-5)


def test_each_distinct_answer_is_scored_once(model, tok):
    scoring_only = ["forget_Q_A_Prob", "forget_truth_ratio", "retain_Q_A_Prob", "retain_Truth_Ratio",
                    "ra_Q_A_Prob_normalised", "ra_Truth_Ratio", "wf_Q_A_Prob_normalised", "wf_Truth_Ratio",
                    "memorization"]  # fmt: skip
    counter = ForwardCounter(model)
    try:
        make_evaluator(metrics=scoring_only).evaluate(model, tok)
        suite = (counter.prompt_rows, counter.cached_rows, counter.scored_rows)
        counter.reset()
        # Prob, exact memorisation and extraction strength share ONE pass per answer
        make_evaluator(metrics=["forget_Q_A_Prob", "exact_memorization", "extraction_strength"]).evaluate(model, tok)
        shared = (counter.prompt_rows, counter.cached_rows, counter.scored_rows)
    finally:
        counter.close()
    questions, pairs = set(), set()
    for config, columns in (
        ("forget10_perturbed", ("answer", "paraphrased_answer", "perturbed_answer")),
        ("retain_perturbed", ("answer", "paraphrased_answer", "perturbed_answer")),
        ("real_authors_perturbed", ("answer", "perturbed_answer")),
        ("world_facts_perturbed", ("answer", "perturbed_answer")),
    ):
        for row in read_rows(config):
            questions.add(row["question"])
            for column in columns:
                for answer in row[column] if isinstance(row[column], list) else [row[column]]:
                    pairs.add((row["question"], answer))
    # each question's prompt runs once; each distinct (question, answer) is scored once on it
    assert suite == (len(questions), len(pairs), 0)
    n_forget = len(read_rows("forget10_perturbed"))
    assert shared == (n_forget, n_forget, 0)


def test_saved_results_reload_and_retain_reference_forms(full_results, model, tok, tmp_path):
    evaluator, results = full_results
    path = save_results(results, tmp_path)
    assert path.name == "TOFU_EVAL.json"
    reloaded = load_open_unlearning_log(tmp_path)
    assert summarize(reloaded) == pytest.approx(summarize(results))

    retain_model = tiny_model(tok, seed=1)
    reference = make_evaluator(metrics=["forget", "mia_min_k"]).evaluate(retain_model, tok)
    ref_path = save_results(reference, tmp_path / "retain")
    by_path = evaluator.summarize(results, reference=ref_path)
    by_dict = evaluator.summarize(results, reference=reference)
    assert by_path == pytest.approx(by_dict)
    assert 0.0 <= by_dict["forget_quality"] <= 1.0
    expected_privleak = privleak(results["mia_min_k"]["auc"], reference["mia_min_k"]["auc"])
    assert by_dict["privleak"] == pytest.approx(expected_privleak)  # calibrated by the reference AUC

    with_model = make_evaluator(reference=(retain_model, tok))
    results_m = with_model.evaluate(model, tok)
    assert results_m["forget_quality"]["agg_value"] == pytest.approx(by_dict["forget_quality"])
    assert with_model.summarize(results_m)["forget_quality"] == pytest.approx(by_dict["forget_quality"])
    assert with_model.summarize(results_m)["privleak"] == pytest.approx(by_dict["privleak"])


def test_open_unlearning_reference_log_is_accepted(reference_logs, tmp_path):
    ou = load_open_unlearning_log(reference_logs / "tofu_Llama-3.2-1B-Instruct_full" / "evals_forget10")
    retain_path = reference_logs / "tofu_Llama-3.2-1B-Instruct_retain90" / "TOFU_EVAL.json"
    evaluator = TOFUEvaluator("forget10", data_dir=TOFU_TINY, reference=retain_path)
    summary = evaluator.summarize(ou)
    assert summary["forget_quality"] == pytest.approx(3.9054713571083378e-22, rel=1e-6)
    assert summary["model_utility"] == pytest.approx(0.5991534707368931, rel=1e-9)


def test_mia_metrics_need_holdout_data(model, tok):
    evaluator = TOFUEvaluator("forget10", data_dir=TOFU_TINY, metrics=["forget_Q_A_Prob"], max_new_tokens=2)
    assert not any(k.startswith("mia_") for k in TOFUEvaluator("forget10", data_dir=TOFU_TINY).metrics_to_compute())
    assert set(evaluator.evaluate(model, tok)) == {"forget_Q_A_Prob"}
    with pytest.raises(ValueError, match="need holdout data"):
        TOFUEvaluator("forget10", data_dir=TOFU_TINY, metrics=["mia"]).metrics_to_compute()
    with pytest.raises(ValueError, match="unknown TOFU metric"):
        TOFUEvaluator("forget10", metrics=["forget_Q_A_Probability"])
    with pytest.raises(ValueError, match="unknown TOFU forget split"):
        TOFUEvaluator("forget20")


def test_prompt_formats(tok):
    dated = tiny_tokenizer(
        chat_template=(
            "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}"
            "{% if m['role'] == 'system' %} today date : {{ date_string }}{% endif %} <|end|> {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|> {% endif %}"
        )
    )
    fmt = PromptFormat.chat(date_string="10 Apr 2025")
    text = format_prompt(dated, "Where was Kenji Sato born?", fmt)
    assert text.startswith("<|system|> You are a helpful assistant. today date : 10 Apr 2025 <|end|>")
    assert text.endswith("<|user|> Where was Kenji Sato born? <|end|> <|assistant|> ")
    encoded = encode_example(dated, "Where was Kenji Sato born?", "Kenji Sato was born in Tokyo.", fmt)
    n_prompt = len(encoded.prompt_ids)
    assert encoded.input_ids[:n_prompt] == encoded.prompt_ids
    assert encoded.labels[:n_prompt] == (IGNORE_INDEX,) * n_prompt
    assert encoded.input_ids[-1] == dated.eos_token_id and encoded.labels[-1] == dated.eos_token_id

    tags = PromptFormat.tags()  # Llama-2 chat: "[INST] " + q + " [/INST]"
    assert format_prompt(tok, "Where was Kenji Sato born?", tags) == "[INST] Where was Kenji Sato born? [/INST]"
    encoded = encode_example(tok, "Where was Kenji Sato born?", "Kenji Sato was born in Tokyo.", tags)
    target = [t for t in encoded.labels if t != IGNORE_INDEX]
    assert tok.decode(target, skip_special_tokens=True) == "kenji sato was born in tokyo."

    # OU's logs were decoded with transformers' classic clean-up (" ," -> ","), which transformers 5
    # skips for BPE tokenizers; the evaluator applies it itself
    assert clean_up_tokenization("by Elvin Mammadov , is it ? yes . don 't") == "by Elvin Mammadov, is it? yes. don 't"

    no_template = tiny_tokenizer(chat_template=None)
    with pytest.raises(ValueError, match="no chat template"):
        encode_example(no_template, "q", "a", PromptFormat.chat())


def test_data_loading_errors_and_hub_call(monkeypatch, tmp_path):
    (tmp_path / "forget10_perturbed.json").write_text(json.dumps({"question": "q", "answer": "a"}))
    evaluator = TOFUEvaluator("forget10", data_dir=tmp_path, metrics=["forget"])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['paraphrased_answer', 'perturbed_answer'\]"):
        evaluator.rows()
    with pytest.raises(FileNotFoundError, match="holdout configs are not in the local copy"):
        load_tofu_config("holdout10", TOFU_TINY)
    with pytest.raises(ValueError, match="unknown TOFU config"):
        load_tofu_config("forget11")
    calls = []
    monkeypatch.setattr("datasets.load_dataset", lambda *args, **kwargs: calls.append((args, kwargs)) or [])
    load_tofu_config("retain_perturbed")
    assert calls == [(("locuslab/TOFU", "retain_perturbed"), {"split": "train"})]


def test_mia_reference_uses_the_reference_model_losses(model, tok):
    reference_model = tiny_model(tok, seed=1)
    evaluator = make_evaluator(metrics=["mia_reference", "forget_Q_A_Prob"], reference_model=reference_model)
    results = evaluator.evaluate(model, tok)
    on_reference = make_evaluator(metrics=["forget_Q_A_Prob"]).evaluate(reference_model, tok)
    forget = results["mia_reference"]["forget"]["value_by_index"]
    for i, value in forget.items():
        target = results["forget_Q_A_Prob"]["value_by_index"][i]["avg_loss"]
        ref = on_reference["forget_Q_A_Prob"]["value_by_index"][i]["avg_loss"]
        assert value["score"] == pytest.approx(target - ref, abs=1e-5)
    assert len(results["mia_reference"]["holdout"]["value_by_index"]) == len(HOLDOUT)
    assert 0.0 <= results["mia_reference"]["auc"] <= 1.0
    with pytest.raises(ValueError, match="needs `reference_model=`"):
        make_evaluator(metrics=["mia_reference"]).metrics_to_compute()


def test_frozen_model_skips_gradnorm_unless_asked_for_by_name(model, tok, caplog):
    frozen = tiny_model(tok)
    frozen.requires_grad_(False)
    with caplog.at_level("WARNING"):
        results = make_evaluator(metrics=None).evaluate(frozen, tok)
    assert "mia_gradnorm" not in results and "mia_min_k" in results
    assert "mia_gradnorm skipped" in caplog.text
    with pytest.raises(ValueError, match="requires_grad=True"):
        make_evaluator(metrics=["mia_gradnorm"]).evaluate(frozen, tok)


def test_reference_models_are_scored_in_eval_mode_and_restored(model, tok):
    reference_model = tiny_model(tok, seed=1).train()
    seen = []
    hook = reference_model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    try:
        make_evaluator(metrics=["mia_reference"], reference_model=reference_model).evaluate(model, tok)
    finally:
        hook.remove()
    assert seen and not any(seen)
    assert reference_model.training
