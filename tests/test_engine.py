"""Engine: batched scoring with de-duplication, batched greedy generation, gradient norms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests._tofu_fixture import HOLDOUT, ForwardCounter, read_rows, single_thread, tiny_model, tiny_tokenizer

from trl_unlearn.evaluation.batching import distributed_map, length_batches, pad_batch, unique_in_order
from trl_unlearn.evaluation.engine import gradient_norms, score_examples, split_causal_lm
from trl_unlearn.evaluation.generation import cut_at_stops, generate_greedy
from trl_unlearn.evaluation.prompts import encode_example
from trl_unlearn.ops import IGNORE_INDEX


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


@pytest.fixture(scope="module")
def examples(tok):
    rows = read_rows("forget10_perturbed") + HOLDOUT
    return [encode_example(tok, r["question"], r["answer"]) for r in rows]


def test_pure_helpers():
    assert unique_in_order(["a", "b", "a", "c", "b"]) == ([0, 1, 3], [0, 1, 0, 2, 1])
    assert length_batches([3, 9, 5, 9, 1], 2) == [[1, 3], [2, 0], [4]]
    ids, mask = pad_batch([[5, 6, 7], [8]], 0, "left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = pad_batch([[5, 6, 7], [8]], 0, "right")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert cut_at_stops("  Paris.\n\nQuestion: next", ["\nQuestion", "\n\n"]) == "Paris."
    assert cut_at_stops(" no stop here ", ["\n\n", ""]) == "no stop here"
    assert distributed_map(lambda xs: [x * 2 for x in xs], [1, 2, 3]) == [2, 4, 6]


def test_scores_match_hand_computation(model, examples):
    example = examples[0]
    scored = score_examples(model, [example], vocab_stats=True)[0]
    with torch.no_grad():
        logits = model(torch.tensor([example.input_ids])).logits[0].double()
    log_probs = torch.log_softmax(logits, -1)
    labels = torch.tensor(example.labels)
    positions = [t for t in range(1, len(labels)) if labels[t] != IGNORE_INDEX]
    token_lp = torch.stack([log_probs[t - 1, labels[t]] for t in positions])
    expected_avg_loss = float(-token_lp.mean())
    assert scored.num_tokens == len(positions) == example.num_target_tokens
    assert scored.avg_loss == pytest.approx(expected_avg_loss, abs=1e-5)
    assert scored.prob == pytest.approx(np.exp(-expected_avg_loss), rel=1e-5)
    assert scored.targets.tolist() == [example.labels[t] for t in positions]
    assert scored.predictions.tolist() == [int(log_probs[t - 1].argmax()) for t in positions]
    rows = log_probs[[t - 1 for t in positions]]
    mean = (rows.exp() * rows).sum(-1)
    var = (rows.exp() * rows.square()).sum(-1) - mean.square()
    np.testing.assert_allclose(scored.vocab_mean, mean.numpy(), atol=1e-4)
    np.testing.assert_allclose(scored.vocab_var, var.numpy(), atol=1e-4)
    trimmed = scored.without_last()
    assert trimmed.num_tokens == scored.num_tokens - 1
    assert trimmed.targets[-1] == scored.targets[-2]


def assert_same_scores(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.targets, y.targets)
        np.testing.assert_allclose(x.log_probs, y.log_probs, atol=1e-5)
        np.testing.assert_array_equal(x.predictions, y.predictions)
        np.testing.assert_allclose(x.vocab_mean, y.vocab_mean, atol=1e-5)
        np.testing.assert_allclose(x.vocab_var, y.vocab_var, atol=1e-5)
        assert abs(x.avg_loss - y.avg_loss) < 1e-5


@pytest.fixture(scope="module")
def answer_sets(tok):
    """Every answer of every forget10 question (answer, paraphrase, perturbed): prompts repeat."""
    return [
        encode_example(tok, r["question"], a)
        for r in read_rows("forget10_perturbed")
        for a in [r["answer"], r["paraphrased_answer"], *r["perturbed_answer"]]
    ]


def test_scoring_is_batch_size_invariant_and_pads_to_batch_max(model, examples, answer_sets):
    requests = examples + answer_sets
    counter = ForwardCounter(model)
    try:
        plain_one = score_examples(model, requests, batch_size=1, vocab_stats=True, share_prompts=False)
        counter.reset()
        plain_many = score_examples(model, examples, batch_size=4, vocab_stats=True, share_prompts=False)
        widths = list(counter.widths)
    finally:
        counter.close()
    lengths = sorted((len(e.input_ids) for e in examples), reverse=True)
    assert widths == [lengths[i] for i in range(0, len(lengths), 4)]  # longest first, no fixed width
    assert_same_scores(plain_one[: len(examples)], plain_many)
    for batch_size in (1, 5, 16):  # prompts shared through the KV cache: same numbers
        assert_same_scores(plain_one, score_examples(model, requests, batch_size=batch_size, vocab_stats=True))


def test_each_distinct_example_is_scored_once(model, examples, answer_sets):
    distinct = examples[:5]
    requests = [distinct[i] for i in (3, 0, 1, 3, 4, 2, 0, 3, 1, 4, 2)]
    counter = ForwardCounter(model)
    try:
        plain = score_examples(model, requests, batch_size=2, share_prompts=False)
        assert counter.scored_rows == len(distinct) and counter.scoring_calls == 3
        counter.reset()
        shared = score_examples(model, requests + answer_sets[:5] + answer_sets[:5], batch_size=16)
    finally:
        counter.close()
    # answer_sets[:5] are five answers to the question of distinct[0] (its answer included):
    # each prompt runs once, each distinct (prompt, answer) once on the prompt's KV cache
    assert answer_sets[0] == distinct[0]
    assert counter.scored_rows == 0
    assert counter.prompt_rows == len({e.prompt_ids for e in distinct + answer_sets[:5]}) == 5
    assert counter.cached_rows == len({e.key for e in distinct + answer_sets[:5]}) == 9
    reference = score_examples(model, distinct, batch_size=1, share_prompts=False)
    for request, a, b in zip(requests, plain, shared):
        expected = reference[distinct.index(request)].avg_loss
        assert a.avg_loss == pytest.approx(expected, abs=1e-5) and b.avg_loss == pytest.approx(expected, abs=1e-5)


def test_generation_is_batch_size_invariant(model, tok, examples):
    prompts = [e.prompt_ids for e in examples]
    assert len({len(p) for p in prompts}) > 1  # left padding is exercised
    one = generate_greedy(model, tok, prompts, max_new_tokens=6, batch_size=1)
    many = generate_greedy(model, tok, prompts, max_new_tokens=6, batch_size=8)
    assert [g.token_ids for g in one] == [g.token_ids for g in many]
    assert [g.text for g in one] == [g.text for g in many]
    assert all(len(g.token_ids) == 6 for g in one)  # a random model never says EOS here


def _force_eos_after(model, triggers: list[int], eos: int):
    """Forward hook: once the input token is one of ``triggers``, the next token is forced to EOS."""
    triggers = torch.tensor(triggers)

    def hook(module, args, kwargs, output):
        ids = kwargs["input_ids"]
        logits = output.logits
        hit = torch.isin(ids[:, -logits.shape[1] :], triggers).unsqueeze(-1)
        boost = torch.zeros_like(logits)
        boost[..., eos] = 1e4
        output.logits = logits + boost * hit
        return output

    return model.register_forward_hook(hook, with_kwargs=True)


def test_generation_stops_at_eos_and_batch_ends_early(model, tok, examples):
    prompts = [e.prompt_ids for e in examples[:4]]
    budget = 12
    free = generate_greedy(model, tok, prompts, max_new_tokens=budget, batch_size=4)
    triggers = sorted({g.token_ids[2] for g in free})  # every row meets a trigger by its 3rd token
    handle = _force_eos_after(model, triggers, tok.eos_token_id)
    counter = ForwardCounter(model)
    try:
        forced = generate_greedy(model, tok, prompts, max_new_tokens=budget, batch_size=4)
    finally:
        handle.remove()
        counter.close()
    for before, after in zip(free, forced):
        ids = list(before.token_ids)
        cut = 1 + min(ids.index(t) for t in triggers if t in ids)
        assert cut <= 3
        assert list(after.token_ids) == ids[:cut] + [tok.eos_token_id]
        assert after.text == tok.decode(ids[:cut], skip_special_tokens=True).strip()
    assert counter.other_calls <= 4  # at most 3 tokens + EOS per row: the batch stopped once every row had ended


def test_finished_rows_leave_the_batch_with_the_same_tokens_as_generate(model, tok, examples):
    prompts = [e.prompt_ids for e in examples]
    free = generate_greedy(model, tok, prompts, max_new_tokens=10, batch_size=16)
    trigger = [free[0].token_ids[1]]  # ends some rows after 2 tokens, others later or never
    handle = _force_eos_after(model, trigger, tok.eos_token_id)
    compact_counter = ForwardCounter(model)
    try:
        compact = generate_greedy(model, tok, prompts, max_new_tokens=10, batch_size=16, compact=True)
        compact_counter.close()
        hf_counter = ForwardCounter(model)
        reference = generate_greedy(model, tok, prompts, max_new_tokens=10, batch_size=16, compact=False)
        hf_counter.close()
    finally:
        handle.remove()
    assert compact == reference
    lengths = [len(g.token_ids) for g in compact]
    assert min(lengths) < max(lengths)  # rows did end at different steps
    # decoding cost: the compact loop feeds only unfinished rows, generate feeds every row every step
    assert compact_counter.other_rows == len(prompts) + sum(n - 1 for n in lengths)
    assert hf_counter.other_rows == len(prompts) * max(lengths)


def test_generation_cuts_at_stop_strings(model, tok, examples):
    prompts = [e.prompt_ids for e in examples[:3]]
    free = generate_greedy(model, tok, prompts, max_new_tokens=10, batch_size=3)
    stop = tok.decode([free[0].token_ids[3]])
    stopped = generate_greedy(model, tok, prompts, max_new_tokens=10, batch_size=3, stop_strings=[stop])
    first = stopped[0]
    assert first.text == cut_at_stops(free[0].text, [stop])
    assert stop not in first.text
    assert len(first.token_ids) < 10  # the row ended at the stop string
    for before, after in zip(free[1:], stopped[1:]):
        assert after.text == cut_at_stops(before.text, [stop])


@pytest.mark.parametrize("position_chunk_size", [512, 2])  # one LM-head chunk; checkpointed chunks
def test_gradient_norms_match_manual_and_leave_grads_alone(model, examples, position_chunk_size):
    example = examples[1]
    assert split_causal_lm(model) is not None  # the LM-head path is the one under test
    assert sum(t != IGNORE_INDEX for t in example.labels) > 2 * position_chunk_size or position_chunk_size == 512
    sentinel = {n: torch.full_like(p, 0.5) for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.grad = sentinel[n].clone()
    norms = gradient_norms(model, [example, example], p=2, position_chunk_size=position_chunk_size)
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, sentinel[n])
        p.grad = None
    assert norms[0] == norms[1]
    ids = torch.tensor([example.input_ids])
    logits = model(ids).logits[0]
    labels = torch.tensor(example.labels)
    positions = [t for t in range(1, len(labels)) if labels[t] != IGNORE_INDEX][:-1]  # EOS dropped
    loss = -torch.stack([torch.log_softmax(logits[t - 1], -1)[labels[t]] for t in positions]).mean()
    loss.backward()
    manual = torch.stack([p.grad.norm(2) for p in model.parameters() if p.grad is not None]).mean()
    model.zero_grad(set_to_none=True)
    assert norms[0] == pytest.approx(float(manual), rel=1e-4)


def test_peft_model_takes_the_fast_paths_with_the_same_numbers(tok, examples, answer_sets):
    from peft import LoraConfig, get_peft_model

    from trl_unlearn.evaluation.engine import supports_compact_decoding

    peft_model = get_peft_model(tiny_model(tok, seed=2), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).eval()
    assert supports_compact_decoding(peft_model)
    requests = examples[:3] + answer_sets[:5]
    assert_same_scores(
        score_examples(peft_model, requests, vocab_stats=True, share_prompts=False),
        score_examples(peft_model, requests, vocab_stats=True),
    )
    prompts = [e.prompt_ids for e in examples[:4]]
    compact = generate_greedy(peft_model, tok, prompts, max_new_tokens=5, compact=True)
    assert compact == generate_greedy(peft_model, tok, prompts, max_new_tokens=5, compact=False)
