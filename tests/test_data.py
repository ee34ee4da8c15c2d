import numpy as np
import pytest
import torch
from datasets import Dataset

from trl_unlearn.data import (
    EpochSeededSampler,
    ForgetRetainCollator,
    ForgetRetainDataset,
    detect_format,
    prepare_dataset,
    retain_pairing,
)
from trl_unlearn.ops import IGNORE_INDEX
from trl_unlearn.testing import make_tokenizer


@pytest.fixture
def tok():
    return make_tokenizer(["where was author1 born ? author1 was born in paris . hello world"])


def test_question_answer_uses_chat_template_and_appends_eos(tok):
    ds = prepare_dataset(Dataset.from_list([{"question": "Where was author1 born?", "answer": "In paris."}]), tok,
                         name="forget", max_length=64)
    row = ds[0]
    messages = [{"role": "user", "content": "Where was author1 born?"}]
    expected_prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert row["prompt_ids"] == list(expected_prompt)
    # the completion is what the template adds after the prompt (answer + end-of-turn tag), then EOS
    answer = tok("In paris.", add_special_tokens=False)["input_ids"]
    assert row["completion_ids"] == answer + [tok.convert_tokens_to_ids("<|end|>"), tok.eos_token_id]


def test_trainer_and_evaluator_tokenize_question_answer_identically(tok):
    from trl_unlearn.evaluation.prompts import PromptFormat, encode_example

    ds = prepare_dataset(Dataset.from_list([{"question": "Where was author1 born?", "answer": "In paris."}]), tok,
                         name="forget", max_length=64, system_prompt="hello world")
    encoded = encode_example(tok, "Where was author1 born?", "In paris.",
                             PromptFormat(system_prompt="hello world", chat_template_kwargs={}))
    assert ds[0]["prompt_ids"] + ds[0]["completion_ids"] == list(encoded.input_ids)
    assert ds[0]["prompt_ids"] == list(encoded.prompt_ids)


def test_system_prompt_and_conversational_match(tok):
    kw = dict(name="forget", max_length=64, system_prompt="hello world")
    qa = prepare_dataset(Dataset.from_list([{"question": "where?", "answer": "paris"}]), tok, **kw)
    conv = prepare_dataset(Dataset.from_list([{"prompt": [{"role": "user", "content": "where?"}],
                                               "completion": [{"role": "assistant", "content": "paris"}]}]), tok, **kw)
    assert qa[0] == conv[0]
    assert tok.decode(qa[0]["prompt_ids"]).startswith("<|system|> hello world")


def test_standard_prompt_completion(tok):
    ds = prepare_dataset(Dataset.from_list([{"prompt": "where was", "completion": "author1 born"}]), tok,
                         name="forget", max_length=64)
    assert ds[0]["prompt_ids"] == tok("where was")["input_ids"]
    assert ds[0]["completion_ids"][-1] == tok.eos_token_id and len(ds[0]["completion_ids"]) == 3


def test_raw_text_is_chunked_and_scored_after_first_token(tok):
    text = " ".join(["hello world"] * 7)  # 14 tokens
    ds = prepare_dataset(Dataset.from_list([{"text": text}]), tok, name="forget", max_length=5)
    assert [len(p) + len(c) for p, c in zip(ds["prompt_ids"], ds["completion_ids"])] == [5, 5, 4]
    assert all(len(p) == 1 for p in ds["prompt_ids"])


@pytest.mark.parametrize(
    "rows, kwargs, match",
    [
        ([{"foo": "x"}], {}, "Unsupported dataset columns"),
        ([], {}, "forget dataset is empty"),
        ([{"prompt": "where was author1 born ? " * 10, "completion": "paris"}], {"max_length": 8}, "max_length"),
    ],
)
def test_bad_input_errors(tok, rows, kwargs, match):
    ds = Dataset.from_list(rows) if rows else Dataset.from_dict({"question": [], "answer": []})
    with pytest.raises(ValueError, match=match):
        prepare_dataset(ds, tok, name="forget", max_length=kwargs.get("max_length", 64))


def test_missing_chat_template_is_a_clear_error():
    tok = make_tokenizer([], chat_template=None)
    with pytest.raises(ValueError, match="no chat template"):
        prepare_dataset(Dataset.from_list([{"question": "where", "answer": "paris"}]), tok, name="forget", max_length=64)


def test_long_completion_truncated_with_warning(tok, caplog):
    ds = prepare_dataset(Dataset.from_list([{"prompt": "where", "completion": "hello world " * 10}]), tok,
                         name="forget", max_length=6)
    assert len(ds[0]["prompt_ids"]) + len(ds[0]["completion_ids"]) == 6
    assert "truncated" in caplog.text


def test_pairing_is_seeded_uniform_and_redrawn_each_epoch():
    a, b = retain_pairing(1000, 7, seed=3, epoch=0), retain_pairing(1000, 7, seed=3, epoch=0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, retain_pairing(1000, 7, seed=3, epoch=1))
    counts = np.bincount(a, minlength=7)
    assert counts.min() > 100 and counts.max() < 190  # uniform: expected 143 each


def test_dataset_and_sampler_follow_the_epoch():
    forget = Dataset.from_dict({"prompt_ids": [[1]] * 6, "completion_ids": [[i] for i in range(6)]})
    retain = Dataset.from_dict({"prompt_ids": [[2]] * 50, "completion_ids": [[100 + i] for i in range(50)]})
    ds = ForgetRetainDataset(forget, retain, seed=0)
    sampler = EpochSeededSampler(ds, seed=0)
    first = (list(sampler), [ds[i]["retain_completion_ids"] for i in range(6)])
    sampler.set_epoch(1)
    second = (list(sampler), [ds[i]["retain_completion_ids"] for i in range(6)])
    sampler.set_epoch(0)
    assert (list(sampler), [ds[i]["retain_completion_ids"] for i in range(6)]) == first
    assert first != second and sorted(first[0]) == list(range(6))


def test_collator_pads_parts_separately_and_masks_prompt():
    items = [
        {"forget_prompt_ids": [5, 6], "forget_completion_ids": [7, 3], "retain_prompt_ids": [8],
         "retain_completion_ids": [9, 10, 11, 3], "forget_ref_logps": -1.5},
        {"forget_prompt_ids": [5], "forget_completion_ids": [3], "retain_prompt_ids": [8],
         "retain_completion_ids": [3], "forget_ref_logps": -0.5},
    ]
    batch = ForgetRetainCollator(pad_token_id=0)(items)
    assert batch["forget_input_ids"].tolist() == [[5, 6, 7, 3], [5, 3, 0, 0]]
    assert batch["forget_attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    I = IGNORE_INDEX
    assert batch["forget_labels"].tolist() == [[I, I, 7, 3], [I, 3, I, I]]
    assert batch["retain_input_ids"].shape == (2, 5)
    assert batch["retain_labels"].tolist()[1] == [I, 3, I, I, I]
    torch.testing.assert_close(batch["forget_ref_logps"], torch.tensor([-1.5, -0.5]))
