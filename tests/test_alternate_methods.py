"""IdkNLL, IdkDPO, AltPO: second answers from a column or the refusal list, DPO against a hand
computation with a distinct reference, precomputed reference log-probs, the alternate generator."""

import json
import math

import numpy as np
import pytest
import torch
from datasets import Dataset

from trl_unlearn import AltPOConfig, AltPOTrainer, IdkDPOConfig, IdkDPOTrainer, IdkNLLConfig, IdkNLLTrainer
from trl_unlearn.alternates import generate_alternates, load_refusals, prepare_with_alternates
from trl_unlearn.testing import make_model, make_tokenizer

from ._helpers import config_kwargs, make_setup, qa_rows


def _seq_logp(model, prompt, completion):
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    return sum(torch.log_softmax(logits[t - 1], -1)[ids[0, t]].item() for t in range(len(prompt), ids.shape[1]))


def _with_alternates(forget):
    return forget.map(lambda row, i: {"alternate": f"author{i} was born in oslo and wrote the blue book ."},
                      with_indices=True)


def test_packaged_refusals_and_user_replacements(tmp_path):
    packaged = load_refusals()
    assert len(packaged) == 20 and len(set(packaged)) == 20
    assert load_refusals(["I do not know."]) == ["I do not know."]
    (tmp_path / "r.json").write_text(json.dumps(["a", "b"]))
    (tmp_path / "r.txt").write_text("no idea\n\nnot sure\n")
    assert load_refusals(str(tmp_path / "r.json")) == ["a", "b"]
    assert load_refusals(str(tmp_path / "r.txt")) == ["no idea", "not sure"]
    with pytest.raises(ValueError):
        load_refusals([])


def test_refusals_are_drawn_seeded_per_row_and_tokenized_after_the_same_prompt():
    forget = qa_rows(6)
    refusals = ["i do not know .", "no idea at all .", "not sure ."]
    tok = make_tokenizer([r["question"] + " " + r["answer"] for r in forget] + refusals)
    data = prepare_with_alternates(Dataset.from_list(forget), tok, name="forget", refusals=refusals, seed=3,
                                   max_length=64)
    picks = np.random.default_rng(3).integers(0, 3, size=6)
    for row, pick in zip(data, picks):
        expected = prepare_with_alternates(
            Dataset.from_list([{**forget[0], "alternate": refusals[pick]}]), tok, name="x", max_length=64
        )[0]["alternate_completion_ids"]
        assert row["alternate_completion_ids"] == expected
    assert data["completion_ids"] != data["alternate_completion_ids"]
    # a list of alternates gives one row per alternate; AltPO refuses data without the column
    listed = Dataset.from_list([{**forget[0], "alternate": ["oslo .", "lima ."]}])
    assert len(prepare_with_alternates(listed, tok, name="forget", max_length=64)) == 2
    with pytest.raises(ValueError, match="generate_alternates"):
        prepare_with_alternates(Dataset.from_list(forget), tok, name="forget", draw_refusals=False, max_length=64)


def test_idknll_is_the_nll_of_the_idk_answers():
    tok, model, forget, retain = make_setup()
    forget = _with_alternates(forget)
    trainer = IdkNLLTrainer(model, IdkNLLConfig(**config_kwargs()), forget_dataset=forget, retain_dataset=retain,
                            processing_class=tok)
    assert trainer.ref_model is None
    items = [trainer.train_dataset[i] for i in range(4)]
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model.eval(), trainer.data_collator(items)).item()
    idk = -sum(_seq_logp(model, it["forget_prompt_ids"], it["forget_alternate_completion_ids"]) for it in items)
    idk_tokens = sum(len(it["forget_alternate_completion_ids"]) for it in items)
    retain_nll = -sum(_seq_logp(model, it["retain_prompt_ids"], it["retain_completion_ids"]) for it in items)
    retain_tokens = sum(len(it["retain_completion_ids"]) for it in items)
    assert idk_tokens != sum(len(it["forget_completion_ids"]) for it in items)  # normalised by the IDK tokens
    assert loss == pytest.approx(idk / idk_tokens + retain_nll / retain_tokens, rel=1e-5)


@pytest.mark.parametrize("trainer_cls, config_cls", [(IdkDPOTrainer, IdkDPOConfig), (AltPOTrainer, AltPOConfig)])
def test_dpo_loss_equals_hand_computation_with_distinct_reference(trainer_cls, config_cls):
    tok, model, forget, retain = make_setup()
    ref = make_model(tok, seed=7)
    beta = 0.5
    trainer = trainer_cls(model, config_cls(**config_kwargs(beta=beta, retain_loss_type="none")),
                          forget_dataset=_with_alternates(forget), ref_model=ref, processing_class=tok)
    items = [trainer.train_dataset[i] for i in range(4)]
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model.eval(), trainer.data_collator(items)).item()
    terms = []
    for it in items:
        p, a, y = it["forget_prompt_ids"], it["forget_alternate_completion_ids"], it["forget_completion_ids"]
        margin = (_seq_logp(model, p, a) - _seq_logp(ref, p, a)) - (_seq_logp(model, p, y) - _seq_logp(ref, p, y))
        assert abs(margin) > 1e-3
        terms.append(-(2 / beta) * -math.log1p(math.exp(-beta * margin)))
    assert loss == pytest.approx(sum(terms) / 4, rel=1e-5)


def test_idkdpo_with_precomputed_reference_matches_live_and_draws_refusals():
    tok, model, forget, retain = make_setup()
    ref = make_model(tok, seed=7)
    kw = config_kwargs(refusals=["i do not know .", "no idea ."])
    live = IdkDPOTrainer(model, IdkDPOConfig(**kw), forget_dataset=forget, retain_dataset=retain, ref_model=ref,
                         processing_class=tok)
    pre = IdkDPOTrainer(model, IdkDPOConfig(**{**kw, "precompute_ref_log_probs": True}), forget_dataset=forget,
                        retain_dataset=retain, ref_model=ref, processing_class=tok)
    assert pre.reference_mode == "precomputed" and pre.ref_model is None
    b_live = live.data_collator([live.train_dataset[i] for i in range(4)])
    b_pre = pre.data_collator([pre.train_dataset[i] for i in range(4)])
    assert {"forget_ref_logps", "forget_alternate_ref_logps"} <= set(b_pre)
    with torch.no_grad():
        torch.testing.assert_close(pre.compute_loss(pre.model.eval(), b_pre),
                                   live.compute_loss(live.model.eval(), b_live), rtol=1e-5, atol=1e-6)


def test_generate_alternates_samples_several_per_question_seeded():
    rows = qa_rows(3)
    tok = make_tokenizer([r["question"] + " " + r["answer"] for r in rows])
    model = make_model(tok)
    out = generate_alternates(model, tok, Dataset.from_list(rows), num_alternates=3, max_new_tokens=6, seed=1)
    again = generate_alternates(model, tok, Dataset.from_list(rows), num_alternates=3, max_new_tokens=6, seed=1)
    assert len(out) == 9 and out["question"] == [r["question"] for r in rows for _ in range(3)]
    assert out["alternate"] == again["alternate"] and all(isinstance(a, str) for a in out["alternate"])
    assert len(set(out["alternate"][:3])) > 1  # sampled, not greedy
    listed = generate_alternates(model, tok, rows, num_alternates=2, max_new_tokens=4, one_row_per_alternate=False)
    assert len(listed) == 3 and all(len(a) == 2 for a in listed["alternate"])
