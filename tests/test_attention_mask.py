"""open-unlearning's attention mask (pad-id tokens hidden as keys everywhere) vs the plain one.

The tokenizer here has no pad token of its own (pad = EOS, as SmolLM2 and open-unlearning's
Llama models) and a chat template that closes every turn with the EOS, so the two masks differ
inside every sequence. Scoring, generation and training are checked against hand computations
with an explicit mask, in both modes.
"""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from tests._tofu_fixture import single_thread

from trl_unlearn import NPOConfig, NPOTrainer
from trl_unlearn.evaluation.engine import score_examples
from trl_unlearn.evaluation.generation import generate_greedy
from trl_unlearn.evaluation.prompts import PromptFormat, encode_example
from trl_unlearn.ops import IGNORE_INDEX, attention_mask_for, key_masked_token_id
from trl_unlearn.testing import forget_qa_rows, make_model, make_tokenizer, retain_qa_rows

from ._helpers import config_kwargs

EOS_TURNS_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
NO_SYSTEM = PromptFormat.chat(system_prompt=None, date_string=None)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def rows():
    return forget_qa_rows(6) + retain_qa_rows(4)


@pytest.fixture(scope="module")
def tok(rows):
    tokenizer = make_tokenizer([r["question"] + " " + r["answer"] for r in rows], chat_template=EOS_TURNS_TEMPLATE)
    tokenizer.pad_token = tokenizer.eos_token  # as open-unlearning does for tokenizers without one
    return tokenizer


@pytest.fixture(scope="module")
def model(tok):
    return make_model(tok, seed=3).eval()


@pytest.fixture(scope="module")
def examples(tok, rows):
    return [encode_example(tok, r["question"], r["answer"], NO_SYSTEM) for r in rows]


def _hand_log_probs(model, example, masked_id):
    """Log-probs of the labelled tokens from one unpadded forward with an explicit mask, positions 0..L-1."""
    ids = torch.tensor([example.input_ids])
    mask = torch.ones_like(ids) if masked_id is None else (ids != masked_id).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[0].double()
    return [
        torch.log_softmax(logits[t - 1], -1)[example.input_ids[t]].item()
        for t in range(1, len(example.input_ids))
        if example.labels[t] != IGNORE_INDEX
    ]


def test_mask_helpers(tok):
    ids = torch.tensor([[5, 2, 7, 2, 0], [5, 6, 2, 0, 0]])
    padding = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    assert attention_mask_for(ids, padding, None) is padding
    assert attention_mask_for(ids, padding, 2).tolist() == [[1, 0, 1, 0, 0], [1, 1, 0, 0, 0]]
    assert key_masked_token_id(tok, "padding") is None
    assert key_masked_token_id(tok, "open_unlearning") == tok.eos_token_id == tok.pad_token_id
    with pytest.raises(ValueError, match="attention_mask_mode must be one of"):
        key_masked_token_id(tok, "ou")


def test_examples_have_eos_inside(tok, examples):
    eos = tok.eos_token_id
    assert all(eos in e.prompt_ids and e.input_ids[-1] == eos for e in examples)


@pytest.mark.parametrize("mode", ["open_unlearning", "padding"])
@pytest.mark.parametrize("share_prompts", [True, False])
@pytest.mark.parametrize("batch_size", [1, 8])
def test_scoring_matches_hand_computation(model, tok, examples, mode, share_prompts, batch_size):
    masked = key_masked_token_id(tok, mode)
    scores = score_examples(
        model, examples, batch_size=batch_size, pad_token_id=tok.pad_token_id, masked_token_id=masked,
        share_prompts=share_prompts,
    )  # fmt: skip
    for example, s in zip(examples, scores):
        assert s.log_probs.tolist() == pytest.approx(_hand_log_probs(model, example, masked), abs=2e-5)


def test_the_two_masks_give_different_numbers(model, tok, examples):
    ou = score_examples(model, examples, pad_token_id=tok.pad_token_id, masked_token_id=tok.eos_token_id)
    plain = score_examples(model, examples, pad_token_id=tok.pad_token_id)
    assert max(abs(a.avg_loss - b.avg_loss) for a, b in zip(ou, plain)) > 1e-3


def _hand_greedy(model, prompt, masked_id, max_new_tokens, eos):
    """Token-by-token greedy decoding without a cache: hidden prompt tokens, positions cumsum - 1."""
    ids = list(prompt)
    visible = [int(t != masked_id) for t in prompt]
    out = []
    for _ in range(max_new_tokens):
        mask = torch.tensor([visible])
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), attention_mask=mask, position_ids=positions).logits
        token = int(logits[0, -1].argmax())
        out.append(token)
        if token == eos:
            break
        ids.append(token)
        visible.append(1)
    return out


@pytest.mark.parametrize("compact", [True, False])
def test_generation_matches_hand_decoding_with_hidden_turn_ends(model, tok, examples, compact):
    prompts = [e.prompt_ids for e in examples]
    eos = tok.eos_token_id
    gens = generate_greedy(model, tok, prompts, max_new_tokens=6, batch_size=4, masked_token_id=eos, compact=compact)
    for prompt, gen in zip(prompts, gens):
        assert list(gen.token_ids) == _hand_greedy(model, prompt, eos, 6, eos)


@pytest.mark.parametrize("mode", ["open_unlearning", "padding"])
def test_trainer_sequence_log_probs_equal_the_evaluators(tok, rows, mode):
    forget, retain = Dataset.from_list(rows[:6]), Dataset.from_list(rows[6:])
    model = make_model(tok, seed=3)
    trainer = NPOTrainer(
        model,
        NPOConfig(**config_kwargs(attention_mask_mode=mode, precompute_ref_log_probs=True)),
        forget_dataset=forget,
        retain_dataset=retain,
        processing_class=tok,
    )
    assert trainer.masked_token_id == key_masked_token_id(tok, mode)
    order = list(range(6))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in order])
    trainer.model.eval()
    with torch.no_grad():
        _, log_probs, mask = trainer.policy_forward(trainer.model, batch, "forget")
    trained = (log_probs * mask).sum(-1).tolist()
    encoded = [encode_example(tok, r["question"], r["answer"], NO_SYSTEM) for r in rows[:6]]
    evaluated = score_examples(trainer.model, encoded, pad_token_id=tok.pad_token_id, masked_token_id=trainer.masked_token_id)
    assert trained == pytest.approx([float(s.log_probs.sum()) for s in evaluated], abs=1e-4)
    # the precomputed reference (the model before training) is computed with the same mask
    assert trainer.forget_data["ref_logps"] == pytest.approx(trained, abs=1e-4)
