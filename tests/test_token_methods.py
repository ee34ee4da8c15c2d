"""WGA, SatImp, UNDIAL, CE-U, PDU's forget loss: hand computations of the papers' formulas, defaults
equal to open-unlearning's, and forgetting on the tiny memorisation task (for every new method)."""

import copy
import math

import pytest
import torch

from trl_unlearn import (
    AltPOConfig,
    AltPOTrainer,
    CEUConfig,
    CEUTrainer,
    IdkDPOConfig,
    IdkDPOTrainer,
    IdkNLLConfig,
    IdkNLLTrainer,
    PDUConfig,
    PDUTrainer,
    RMUConfig,
    RMUTrainer,
    SatImpConfig,
    SatImpTrainer,
    UNDIALConfig,
    UNDIALTrainer,
    WGAConfig,
    WGATrainer,
)
from trl_unlearn.data import prepare_dataset
from trl_unlearn.testing import make_model, mean_token_log_prob, memorisation_task

from ._helpers import config_kwargs, make_setup


def _positions(model, prompt, completion):
    """(logits predicting each completion token, that token) from one unpadded forward pass."""
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    return [(logits[t - 1], int(ids[0, t])) for t in range(len(prompt), ids.shape[1])]


def _loss_and_items(trainer, n=4):
    items = [trainer.train_dataset[i] for i in range(n)]
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, trainer.data_collator(items)).item()
    return loss, items, trainer._metrics["eval"]


def _retain_nll(model, items):
    total, n = 0.0, 0
    for it in items:
        for logits, y in _positions(model, it["retain_prompt_ids"], it["retain_completion_ids"]):
            total -= torch.log_softmax(logits, -1)[y].item()
            n += 1
    return total / n


@pytest.mark.parametrize("method", ["wga", "satimp"])
def test_token_weighted_ascent_equals_hand_computation(method):
    tok, model, forget, retain = make_setup()
    if method == "wga":
        cfg = WGAConfig(**config_kwargs(beta=0.7))
        trainer = WGATrainer(model, cfg, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
        weight = lambda p: p ** 0.7  # noqa: E731
        gamma = 1.0
    else:
        cfg = SatImpConfig(**config_kwargs(beta1=2.0, beta2=1.5))
        trainer = SatImpTrainer(model, cfg, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
        weight = lambda p: p ** 2.0 * (1 - p) ** 1.5  # noqa: E731
        gamma = 0.1  # open-unlearning's SatImp default
    assert trainer.ref_model is None
    loss, items, logged = _loss_and_items(trainer)
    total, n = 0.0, 0
    for it in items:
        for logits, y in _positions(model, it["forget_prompt_ids"], it["forget_completion_ids"]):
            logp = torch.log_softmax(logits, -1)[y].item()
            total += weight(math.exp(logp)) * logp
            n += 1
    assert logged["forget_loss"][0] == pytest.approx(total / n, rel=1e-5)
    assert loss == pytest.approx(gamma * total / n + 1.0 * _retain_nll(model, items), rel=1e-5)


def test_undial_equals_paper_formula_on_completion_positions_with_distinct_reference():
    tok, model, forget, retain = make_setup()
    ref = make_model(tok, seed=5)
    beta = 3.0
    trainer = UNDIALTrainer(model, UNDIALConfig(**config_kwargs(beta=beta)), forget_dataset=forget, ref_model=ref,
                            processing_class=tok)
    assert trainer.retain_data is None  # α = 0 by default: no retain term
    loss, items, _ = _loss_and_items(trainer)
    total, n = 0.0, 0
    for it in items:
        pol = _positions(model, it["forget_prompt_ids"], it["forget_completion_ids"])
        rf = _positions(ref, it["forget_prompt_ids"], it["forget_completion_ids"])
        for (pl, y), (rl, _) in zip(pol, rf):
            adjusted = rl.clone()
            adjusted[y] -= beta
            total += -(torch.softmax(adjusted, -1) * torch.log_softmax(pl, -1)).sum().item()
            n += 1
    assert loss == pytest.approx(total / n, rel=1e-5)
    # a reference equal to the policy would give another number: the reference really is used
    same = UNDIALTrainer(copy.deepcopy(model), UNDIALConfig(**config_kwargs(beta=beta)), forget_dataset=forget,
                         processing_class=tok)
    assert _loss_and_items(same)[0] != pytest.approx(loss, rel=1e-3)
    with pytest.raises(ValueError, match="precompute_ref_log_probs"):
        UNDIALTrainer(model, UNDIALConfig(**config_kwargs(precompute_ref_log_probs=True)), forget_dataset=forget,
                      processing_class=tok)


@pytest.mark.parametrize("skip", [1, 2])
def test_ceu_equals_hand_computation_skipping_first_answer_tokens(skip):
    tok, model, forget, retain = make_setup()
    trainer = CEUTrainer(model, CEUConfig(**config_kwargs(ignore_first_n_answer_tokens=skip)), forget_dataset=forget,
                         processing_class=tok)
    loss, items, _ = _loss_and_items(trainer)
    total, n = 0.0, 0
    for it in items:
        for logits, y in _positions(model, it["forget_prompt_ids"], it["forget_completion_ids"])[skip:]:
            target = logits.clone()
            target[y] = -math.inf
            total += -(torch.softmax(target, -1) * torch.log_softmax(logits, -1)).sum().item()
            n += 1
    assert loss == pytest.approx(total / n, rel=1e-5)


def test_pdu_forget_loss_is_logit_margin_flattening_plus_shifted_retain():
    tok, model, forget, retain = make_setup()
    cfg = PDUConfig(**config_kwargs(retain_loss_eps=0.3, retain_loss_weight=2.0, forget_loss_weight=0.5))
    trainer = PDUTrainer(model, cfg, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    loss, items, logged = _loss_and_items(trainer)
    total, n = 0.0, 0
    for it in items:
        for logits, _ in _positions(model, it["forget_prompt_ids"], it["forget_completion_ids"]):
            total += (logits.max() - logits.mean()).item() ** 2
            n += 1
    assert logged["forget_loss"][0] == pytest.approx(total / n, rel=1e-5)
    assert loss == pytest.approx(0.5 * total / n + 2.0 * (_retain_nll(model, items) - 0.3), rel=1e-5)
    assert logged["pdu/dual_variable"][0] == 2.0


def test_defaults_equal_open_unlearning():
    out = "/tmp/trl-unlearn-defaults"
    wga, satimp, undial, ceu = WGAConfig(out), SatImpConfig(out), UNDIALConfig(out), CEUConfig(out)
    assert (wga.beta, wga.forget_loss_weight, wga.retain_loss_weight, wga.retain_loss_type) == (1.0, 1.0, 1.0, "nll")
    assert (satimp.beta1, satimp.beta2, satimp.forget_loss_weight, satimp.retain_loss_weight) == (5.0, 1.0, 0.1, 1.0)
    assert (wga.learning_rate, wga.num_train_epochs, satimp.num_train_epochs) == (1e-5, 5.0, 5.0)
    assert (undial.beta, undial.forget_loss_weight, undial.retain_loss_weight) == (10.0, 1.0, 0.0)
    assert (undial.learning_rate, undial.num_train_epochs) == (1e-4, 10.0)
    assert ceu.ignore_first_n_answer_tokens == 1 and not ceu.uses_retain
    idk, alt, nll = IdkDPOConfig(out), AltPOConfig(out), IdkNLLConfig(out)
    assert (idk.beta, idk.forget_loss_weight, idk.retain_loss_weight, idk.retain_loss_type) == (0.1, 1.0, 1.0, "nll")
    assert (alt.beta, alt.num_train_epochs, alt.learning_rate) == (0.1, 2.0, 1e-5)
    assert (nll.retain_loss_weight, nll.retain_loss_type, nll.alternate_column) == (1.0, "nll", "alternate")
    rmu = RMUConfig(out)
    assert (rmu.module_regex, rmu.steering_coeff, rmu.trainable_params_regex) == (r"model\.layers\.7", 2.0, [".*"])
    assert (rmu.retain_loss_type, rmu.forget_loss_weight, rmu.retain_loss_weight) == ("embed_diff", 1.0, 1.0)
    pdu = PDUConfig(out, retain_loss_eps=0.3)
    assert (pdu.dual_step_size, pdu.dual_update_upon, pdu.dual_warmup_epochs, pdu.primal_dual) == (1.0, "step", 5, True)
    assert (pdu.forget_loss_weight, pdu.retain_loss_weight, pdu.retain_loss_type) == (1.0, 1.0, "nll")
    with pytest.raises(ValueError, match="retain_loss_eps"):
        PDUConfig(out)


# --------------------------------------------------------------------------------------------
# Forgetting on the memorisation task, every new method
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def memorised():
    return memorisation_task()


FORGETTING = [
    (WGATrainer, WGAConfig, dict(num_train_epochs=4)),
    (SatImpTrainer, SatImpConfig, dict(num_train_epochs=4, forget_loss_weight=1.0, learning_rate=5e-3)),
    (UNDIALTrainer, UNDIALConfig, dict(num_train_epochs=4)),
    (CEUTrainer, CEUConfig, dict(num_train_epochs=4)),
    (IdkNLLTrainer, IdkNLLConfig, dict(num_train_epochs=4)),
    (IdkDPOTrainer, IdkDPOConfig, dict(num_train_epochs=4)),
    (AltPOTrainer, AltPOConfig, dict(num_train_epochs=4)),
    (RMUTrainer, RMUConfig, dict(num_train_epochs=4, module_regex=r"model\.layers\.0", steering_coeff=20.0)),
    (PDUTrainer, PDUConfig, dict(num_train_epochs=4, retain_loss_eps=0.5, dual_warmup_epochs=1)),
]


@pytest.mark.parametrize("trainer_cls, config_cls, overrides", FORGETTING, ids=[c[0].__name__ for c in FORGETTING])
def test_short_training_lowers_forget_likelihood(memorised, trainer_cls, config_cls, overrides):
    tok, model, forget, retain = memorised
    model = copy.deepcopy(model)
    if trainer_cls is AltPOTrainer:  # plausible alternates: another city
        forget = forget.map(lambda row: {"alternate": row["answer"].replace(" born in ", " born in lima near ")})
    trainer = trainer_cls(model, config_cls(**config_kwargs(**overrides)), forget_dataset=forget,
                          retain_dataset=retain, processing_class=tok)
    forget_data = prepare_dataset(forget, tok, name="forget", max_length=64)
    before = mean_token_log_prob(trainer.model, forget_data)
    trainer.train()
    after = mean_token_log_prob(trainer.model, forget_data)
    assert after < before - 0.5, (before, after)
