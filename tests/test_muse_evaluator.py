"""MUSEEvaluator: data loading, OU tokenisation, layout, batch invariance, chunked scoring, stop
strings, a hand-computed Min-k%, references and the training callback."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests._tofu_fixture import ForwardCounter, single_thread
from trl_unlearn.evaluation import muse
from trl_unlearn.evaluation.engine import score_examples, split_causal_lm
from trl_unlearn.evaluation.metrics import mia_auc, privleak
from trl_unlearn.evaluation.muse_data import check_corpus, load_muse_rows, load_muse_split, muse_dataset_id
from trl_unlearn.evaluation.muse_evaluator import MUSEEvaluator, completion_ground_truth, encode_completion
from trl_unlearn.evaluation.spec import MUSE
from trl_unlearn.ops import IGNORE_INDEX
from trl_unlearn.testing import make_model, make_tokenizer

MUSE_TINY = Path(__file__).parent / "fixtures" / "muse_tiny"
MAX_LENGTH = 40  # privleak texts are ~75 tokens: truncation is exercised
N = 4  # rows per evaluated split in the fixture


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


def fixture_texts() -> list[str]:
    texts = ["Question: Answer:"]
    for path in sorted(MUSE_TINY.rglob("*.json")):
        for line in path.read_text().splitlines():
            texts.extend(json.loads(line).values())
    return texts


def bos_tokenizer():
    """The word-level test tokenizer, adding a BOS like Llama-2's."""
    from tokenizers import processors

    tok = make_tokenizer(fixture_texts())
    bos = tok.bos_token_id
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", bos)]
    )
    return tok


@pytest.fixture(scope="module")
def tok():
    return bos_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return make_model(tok).eval()


def make_evaluator(**kwargs):
    kwargs.setdefault("max_length", MAX_LENGTH)
    kwargs.setdefault("verbmem_max_new_tokens", 6)
    kwargs.setdefault("knowmem_max_new_tokens", 5)
    return MUSEEvaluator("news", data_dir=MUSE_TINY, **kwargs)


@pytest.fixture(scope="module")
def full_results(model, tok):
    evaluator = make_evaluator(batch_size=4)
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
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def test_corpus_names_and_local_layout(tmp_path):
    assert check_corpus("MUSE-Books") == check_corpus("books") == "books"
    assert muse_dataset_id("News") == "muse-bench/MUSE-News"
    with pytest.raises(ValueError, match="news' or 'books"):
        check_corpus("tofu")
    rows = load_muse_rows("news", "verbmem", "forget", MUSE_TINY)
    assert len(rows) == N and set(rows[0]) == {"prompt", "gt"}
    assert len(load_muse_rows("news", "knowmem", "retain_qa", MUSE_TINY, limit=2)) == 2
    with pytest.raises(FileNotFoundError, match=r"<data_dir>/<subset>/<split>\.json"):
        load_muse_split("news", "raw", "forget", tmp_path)
    with pytest.raises(ValueError, match="unknown MUSE subset"):
        load_muse_split("news", "scal", "forget", MUSE_TINY)


def test_older_books_split_names_and_json_arrays(tmp_path):
    data = tmp_path / "books"
    shutil.copytree(MUSE_TINY, data)
    (data / "knowmem" / "retain_qa.json").rename(data / "knowmem" / "retain2_qa.json")
    (data / "privleak" / "retain.json").rename(data / "privleak" / "retain2.json")
    icl = data / "knowmem" / "retain_qa_icl.json"  # the MUSE repository stores JSON arrays
    rows = [json.loads(line) for line in icl.read_text().splitlines()]
    icl.unlink()
    (data / "knowmem" / "retain2_qa_icl.json").write_text(json.dumps(rows))
    for subset, split in (("knowmem", "retain_qa"), ("knowmem", "retain_qa_icl"), ("privleak", "retain")):
        assert load_muse_rows("books", subset, split, data) == load_muse_rows("news", subset, split, MUSE_TINY)


def test_hub_loading_falls_back_to_older_split_names(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        if split == "retain_qa":
            raise ValueError(f'Unknown split "{split}". Should be one of [\'forget_qa\', \'retain2_qa\'].')
        return datasets.Dataset.from_list([{"question": "q", "answer": "a"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = load_muse_rows("books", "knowmem", "retain_qa", revision="v1")
    assert rows == [{"question": "q", "answer": "a"}]
    assert calls == [
        ("muse-bench/MUSE-Books", "knowmem", "retain_qa", "v1"),
        ("muse-bench/MUSE-Books", "knowmem", "retain2_qa", "v1"),
    ]


# --------------------------------------------------------------------------------------------
# tokenisation
# --------------------------------------------------------------------------------------------
def test_completion_encoding_follows_open_unlearning(tok):
    text = "The Tollford choir won first prize at the regional singing contest"
    words = tok(text, add_special_tokens=False)["input_ids"]
    raw = encode_completion(tok, "", text, max_length=5)  # raw text: BOS + 5 tokens, all labelled
    assert raw.input_ids == (tok.bos_token_id, *words[:5])
    assert raw.labels == (IGNORE_INDEX, *words[:5])
    assert raw.prompt_ids == (tok.bos_token_id,)
    verb = encode_completion(tok, "The Tollford choir", "won first prize", max_length=2048, insert_space=True)
    assert verb.prompt_ids == (tok.bos_token_id, *words[:3])
    assert verb.labels == (IGNORE_INDEX,) * 4 + tuple(words[3:6])  # no EOS appended
    assert completion_ground_truth(tok, verb) == "won first prize"
    plain = make_tokenizer(fixture_texts())  # no BOS: the first token is still never scored
    raw = encode_completion(plain, "", text, max_length=5)
    assert raw.input_ids == tuple(words[:5]) and raw.labels == (IGNORE_INDEX, *words[1:5])


def test_contract_names():
    from trl_unlearn.evaluation.muse import MUSEEvaluator as FromMuse
    from trl_unlearn.evaluation.muse import load_open_unlearning_log, summarize  # noqa: F401

    assert FromMuse is MUSEEvaluator
    evaluator = MUSEEvaluator("books")
    assert evaluator.benchmark == "MUSE" and evaluator.dataset_id == "muse-bench/MUSE-Books"


def test_metric_selection():
    assert MUSE.expand_metrics(["privleak"]) == {"privleak", "mia_min_k"}
    assert MUSE.expand_metrics(["knowmem"]) == {"forget_knowmem_ROUGE", "retain_knowmem_ROUGE"}
    with pytest.raises(ValueError, match="unknown MUSE metric"):
        MUSE.expand_metrics(["forget_quality"])
    with pytest.raises(ValueError, match="reference_model"):
        make_evaluator(metrics=["mia_reference"]).metrics_to_compute()


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
def test_results_have_open_unlearning_layout(full_results, reference_logs):
    _, results = full_results
    ou = muse.load_open_unlearning_log(reference_logs / "muse_Llama-2-7b-hf_News_target")
    assert set(results) == set(ou) - {"mia_reference"}
    for key, entry in results.items():
        ou_entry = ou[key]
        assert set(entry) == set(ou_entry), key
        if "value_by_index" in entry:
            assert list(entry["value_by_index"]) == [str(i) for i in range(N)]
            assert set(entry["value_by_index"]["0"]) == set(ou_entry["value_by_index"]["0"]), key
        if "forget" in entry:
            for side in ("forget", "holdout"):
                assert list(entry[side]["value_by_index"]) == [str(i) for i in range(N)]
                assert entry[side]["agg_value"] == pytest.approx(
                    np.mean([v["score"] for v in entry[side]["value_by_index"].values()])
                )
    rouge = results["forget_knowmem_ROUGE"]
    assert rouge["agg_value"] == pytest.approx(np.mean([v["rougeL_f1"] for v in rouge["value_by_index"].values()]))
    first = rouge["value_by_index"]["0"]
    assert first["ground_truth"] == "the old ferry pier"
    assert first["input"].startswith("question : who is the mayor of maravel?")  # the ICL pairs first
    verb = results["forget_verbmem_ROUGE"]["value_by_index"]["0"]
    assert verb["ground_truth"].startswith("supports. mayor ilse brandt")
    assert verb["input"].endswith("found deep cracks in its timber")


def test_batch_size_and_chunk_size_invariance(model, tok, full_results):
    _, reference = full_results
    one = make_evaluator(batch_size=1, generation_batch_size=1, position_chunk_size=7, vocab_chunk_size=3).evaluate(
        model, tok
    )
    assert_close_tree(one, reference)


def test_min_k_and_loss_by_hand(model, tok, full_results):
    _, results = full_results
    text = json.loads((MUSE_TINY / "privleak" / "holdout.json").read_text().splitlines()[2])["text"]
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"][:MAX_LENGTH]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    log_probs = torch.log_softmax(logits, -1)
    token_lp = np.array([float(log_probs[t - 1, ids[t]]) for t in range(1, len(ids))])  # every text token
    assert token_lp.size == MAX_LENGTH
    kept = np.sort(token_lp[:-1])  # the last labelled position is dropped
    num = max(1, int(kept.size * 0.4))
    expected_min_k = -kept[:num].mean()
    got = results["mia_min_k"]["holdout"]["value_by_index"]["2"]["score"]
    assert got == pytest.approx(expected_min_k, abs=1e-5)
    assert results["mia_loss"]["holdout"]["value_by_index"]["2"]["score"] == pytest.approx(-token_lp.mean(), abs=1e-5)
    forget = [v["score"] for v in results["mia_min_k"]["forget"]["value_by_index"].values()]
    holdout = [v["score"] for v in results["mia_min_k"]["holdout"]["value_by_index"].values()]
    assert results["mia_min_k"]["auc"] == mia_auc(forget, holdout)
    assert results["privleak"]["agg_value"] == pytest.approx(privleak(results["mia_min_k"]["auc"], 0.5))


def test_chunked_scoring_matches_full_logits_and_bounds_lm_head(tok):
    evaluator = make_evaluator()
    examples = evaluator.examples(tok, "privleak_forget") + evaluator.examples(tok, "verbmem")
    model = make_model(tok).eval()  # a new object: the split is probed once, on 16 tokens
    full = score_examples(model, examples, batch_size=3, vocab_stats=True)
    widths = []
    handle = model.get_output_embeddings().register_forward_hook(lambda m, a, o: widths.append(tuple(a[0].shape[:-1])))
    try:
        chunked = score_examples(
            model, examples, batch_size=3, vocab_stats=True, position_chunk_size=8, share_prompts=False
        )
    finally:
        handle.remove()
    assert widths[:2] == [(1, 16), (1, 16)]  # the probe: full forward and split, compared
    assert len(widths) > 2 + len(examples) and all(len(w) == 1 and w[0] <= 8 for w in widths[2:])
    for a, b in zip(full, chunked):
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-5)
        np.testing.assert_array_equal(a.predictions, b.predictions)
        np.testing.assert_array_equal(a.targets, b.targets)
        np.testing.assert_allclose(a.vocab_mean, b.vocab_mean, atol=1e-5)
        np.testing.assert_allclose(a.vocab_var, b.vocab_var, atol=1e-5)
    # a model whose logits are transformed after the LM head is scored with its full logits
    capped = make_model(tok)
    capped.config.final_logit_softcapping = 30.0
    assert split_causal_lm(capped) is None
    fallback = score_examples(capped.eval(), examples[:2], batch_size=2, position_chunk_size=512, share_prompts=False)
    for a, b in zip(score_examples(capped, examples[:2], batch_size=2), fallback):
        np.testing.assert_allclose(a.log_probs, b.log_probs, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# knowmem prompts and stop strings (a character-level tokenizer, so decoded text is exact)
# --------------------------------------------------------------------------------------------
def char_tokenizer(texts):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set("".join(texts)))
    vocab = {t: i for i, t in enumerate(["<pad>", "<unk>", "<s>", "</s>", *chars])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


def successor_hook(model, tok, script: str):
    """Forward hook: after character ``script[i]`` the model says ``script[i + 1]`` (greedy)."""
    successor = torch.arange(len(tok))
    for a, b in zip(script, script[1:]):
        successor[tok.convert_tokens_to_ids(a)] = tok.convert_tokens_to_ids(b)

    def hook(module, args, kwargs, output):
        ids = kwargs["input_ids"][:, -output.logits.shape[1] :]
        output.logits = output.logits + 1e4 * torch.nn.functional.one_hot(successor[ids], len(tok))
        return output

    return model.register_forward_hook(hook, with_kwargs=True)


def test_knowmem_prompt_format_and_stop_strings(tmp_path):
    icl = [{"question": "Who won?", "answer": "TED"}, {"question": "Where?", "answer": "DOVER"}]
    rows = [{"question": "Which bar?", "answer": "BAR"}]
    for split, data in (("forget_qa", rows), ("forget_qa_icl", icl), ("retain_qa", rows), ("retain_qa_icl", icl)):
        (tmp_path / "knowmem").mkdir(exist_ok=True)
        (tmp_path / "knowmem" / f"{split}.json").write_text("\n".join(json.dumps(r) for r in data))
    tok = char_tokenizer(["Question: Answer:\n Who won? TED Where? DOVER Which bar? BAR Question:"])
    model = make_model(tok).eval()
    expected_prompt = "Question: Who won?\nAnswer: TED\n\nQuestion: Where?\nAnswer: DOVER\n\nQuestion: Which bar?\nAnswer: "
    for continuation in ("BAR\n\n", "BAR\nQuestion", "BARQuestion:"):
        evaluator = MUSEEvaluator("news", data_dir=tmp_path, metrics=["forget_knowmem_ROUGE"], knowmem_max_new_tokens=32)
        handle = successor_hook(model, tok, " " + continuation + continuation[-1])
        counter = ForwardCounter(model)
        try:
            entry = evaluator.evaluate(model, tok)["forget_knowmem_ROUGE"]["value_by_index"]["0"]
        finally:
            counter.close()
            handle.remove()
        assert entry["input"] == expected_prompt
        assert entry["ground_truth"] == "BAR"
        assert entry["generation"] == "BAR", continuation
        assert entry["rougeL_f1"] == 1.0
        assert counter.other_calls <= len(continuation) + 2  # stopped at the stop string, not at 32 tokens
    # without stop strings the row runs to the budget and the text is not cut
    evaluator = MUSEEvaluator("news", data_dir=tmp_path, metrics=["forget_knowmem_ROUGE"], knowmem_stop_strings=())
    handle = successor_hook(model, tok, " BARQuestion::")
    try:
        entry = evaluator.evaluate(model, tok)["forget_knowmem_ROUGE"]["value_by_index"]["0"]
    finally:
        handle.remove()
    assert entry["generation"] == "BARQuestion" + ":" * (32 - len("BARQuestion"))


# --------------------------------------------------------------------------------------------
# references, round trip, mia_reference, callback
# --------------------------------------------------------------------------------------------
def test_round_trip_and_retrain_reference_as_path_dict_or_model(model, tok, full_results, tmp_path):
    _, results = full_results
    path = muse.save_results(results, tmp_path)
    assert path.name == "MUSE_EVAL.json"
    loaded = muse.load_open_unlearning_log(tmp_path)
    assert_close_tree(loaded, json.loads(json.dumps(results)))
    assert muse.summarize(loaded) == muse.summarize(results)

    retrain = make_model(tok, seed=3).eval()
    reference = make_evaluator(metrics=["mia_min_k"]).evaluate(retrain, tok)
    ref_dir = tmp_path / "retrain"
    ref_dir.mkdir()
    muse.save_results(reference, ref_dir)
    expected = privleak(results["mia_min_k"]["auc"], reference["mia_min_k"]["auc"])
    assert reference["mia_min_k"]["auc"] != 0.5
    for spec in (ref_dir, ref_dir / "MUSE_EVAL.json", reference, (retrain, tok), retrain):
        evaluator = make_evaluator(metrics=["privleak"], reference=spec)
        evaluated = evaluator.evaluate(model, tok)
        assert evaluated["privleak"]["agg_value"] == pytest.approx(expected, abs=1e-9)
        summary = evaluator.summarize(evaluated)
        assert summary["privleak"] == pytest.approx(expected, abs=1e-9)
        assert muse.summarize(evaluated, retrain_reference=reference)["privleak"] == pytest.approx(expected, abs=1e-9)
    assert muse.summarize(results, retrain_reference=str(ref_dir))["privleak"] == pytest.approx(expected, abs=1e-9)
    evaluator.save(results, tmp_path / "out", evaluator.summarize(results))
    assert json.loads((tmp_path / "out" / "MUSE_SUMMARY.json").read_text())["privleak"] == pytest.approx(expected)


def test_mia_reference_with_the_model_itself_is_uninformative(model, tok):
    evaluator = make_evaluator(metrics=["mia_reference", "mia_loss"], reference_model=model)
    results = evaluator.evaluate(model, tok)
    scores = [v["score"] for side in ("forget", "holdout") for v in results["mia_reference"][side]["value_by_index"].values()]
    assert scores == [0.0] * (2 * N)
    assert results["mia_reference"]["auc"] == 0.5
    assert set(results) == {"mia_reference", "mia_loss"}


def test_callback_runs_muse_during_training(tmp_path, tok):
    import tempfile

    from datasets import Dataset

    from trl_unlearn import NPOConfig, NPOTrainer
    from trl_unlearn.evaluation.callback import UnlearningEvalCallback

    model = make_model(tok).train()
    forget = Dataset.from_list(load_muse_rows("news", "raw", "forget", MUSE_TINY))
    retain = Dataset.from_list(load_muse_rows("news", "raw", "retain2", MUSE_TINY))
    args = NPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-unlearn-muse-cb-"),
        per_device_train_batch_size=2,
        max_steps=2,
        max_length=32,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        learning_rate=5e-2,
        disable_tqdm=True,
        use_cpu=True,
        dataloader_pin_memory=False,
    )
    trainer = NPOTrainer(model, args, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    evaluator = make_evaluator(metrics=["forget_knowmem_ROUGE", "privleak"])
    callback = UnlearningEvalCallback(evaluator, eval_steps=2, on_epoch_end=False, trainer=trainer, save_dir=tmp_path)
    trainer.add_callback(callback)
    trainer.train()
    logged = [h for h in trainer.state.log_history if any(k.endswith("_privleak") for k in h)]
    assert len(logged) == 1
    assert {"eval_muse_forget_knowmem_ROUGE", "eval_muse_mia_min_k", "eval_muse_privleak"} <= set(logged[0])
    assert (tmp_path / "step-2" / "MUSE_EVAL.json").is_file() and (tmp_path / "step-2" / "MUSE_SUMMARY.json").is_file()
    record = trainer.eval_results[-1]
    assert record["benchmark"] == "MUSE" and record["dataset_id"] == "muse-bench/MUSE-News"
    assert math.isfinite(logged[0]["eval_muse_privleak"])
