"""RMU (activations, steering vector, frozen parameters, LoRA, resume) and PDU (dual variable)."""

import copy
import os

import pytest
import torch

from trl_unlearn import PDUConfig, PDUTrainer, RMUConfig, RMUTrainer
from trl_unlearn.testing import make_model
from trl_unlearn.trainer.unlearning_trainer import METHOD_STATE_NAME

from ._helpers import config_kwargs, make_setup


def _layer_output(model, prompt, completion, layer):
    """Output of decoder layer ``layer`` at the completion positions, from one unpadded forward pass."""
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
    # hidden_states[i + 1] is layer i's output, except the last one, which has the final norm applied
    if layer + 1 < len(hidden) - 1:
        out = hidden[layer + 1][0]
    else:
        captured = []
        handle = model.model.layers[layer].register_forward_hook(lambda m, i, o: captured.append(o[0] if isinstance(o, tuple) else o))
        with torch.no_grad():
            model(input_ids=ids)
        handle.remove()
        out = captured[0][0]
    return out[len(prompt):].double()


def test_rmu_loss_equals_hand_computation_with_distinct_reference():
    tok, model, forget, retain = make_setup()
    ref = make_model(tok, seed=5)
    cfg = RMUConfig(**config_kwargs(module_regex=r"model\.layers\.0", steering_coeff=3.0, retain_loss_weight=0.7))
    trainer = RMUTrainer(model, cfg, forget_dataset=forget, retain_dataset=retain, ref_model=ref, processing_class=tok)
    vector = trainer.steering_vector.double()
    assert vector.shape == (model.config.hidden_size,)
    assert vector.norm().item() == pytest.approx(3.0) and (vector >= 0).all()
    items = [trainer.train_dataset[i] for i in range(4)]
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model.eval(), trainer.data_collator(items)).item()
    forget_term = sum(((_layer_output(model, it["forget_prompt_ids"], it["forget_completion_ids"], 0) - vector) ** 2)
                      .mean(-1).mean().item() for it in items) / 4
    retain_term = sum(((_layer_output(model, it["retain_prompt_ids"], it["retain_completion_ids"], 0)
                        - _layer_output(ref, it["retain_prompt_ids"], it["retain_completion_ids"], 0)) ** 2)
                      .mean(-1).mean().item() for it in items) / 4
    assert retain_term > 1e-4
    assert loss == pytest.approx(forget_term + 0.7 * retain_term, rel=1e-5)
    # same seed, same vector; another seed, another one
    again = RMUTrainer(make_model(tok), cfg, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    other = RMUTrainer(make_model(tok), RMUConfig(**config_kwargs(module_regex=r"model\.layers\.0", seed=1)),
                       forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    torch.testing.assert_close(again.steering_vector, trainer.steering_vector)
    assert not torch.allclose(other.steering_vector / 2.0, trainer.steering_vector / 3.0)


def test_rmu_trains_only_the_selected_parameters():
    tok, model, forget, retain = make_setup()
    selected = r"model\.layers\.0\.mlp\.down_proj\.weight"
    cfg = RMUConfig(**config_kwargs(module_regex=r"model\.layers\.1", trainable_params_regex=[selected], max_steps=2))
    trainer = RMUTrainer(model, cfg, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"model.layers.0.mlp.down_proj.weight"}
    with pytest.raises(ValueError, match="matches no module"):
        RMUTrainer(make_model(tok), RMUConfig(**config_kwargs()), forget_dataset=forget, retain_dataset=retain,
                   processing_class=tok)  # default layer 7 does not exist in a 2-layer model
    with pytest.raises(ValueError, match="activations"):
        RMUTrainer(make_model(tok), RMUConfig(**config_kwargs(precompute_ref_log_probs=True)), forget_dataset=forget,
                   retain_dataset=retain, processing_class=tok)


def test_rmu_with_lora_uses_the_adapter_disabled_model_as_frozen_reference():
    from peft import LoraConfig

    tok, model, forget, retain = make_setup()
    base = copy.deepcopy(model)
    cfg = RMUConfig(**config_kwargs(module_regex=r"model\.layers\.1", max_steps=3, learning_rate=1e-2))
    trainer = RMUTrainer(model, cfg, forget_dataset=forget, retain_dataset=retain, processing_class=tok,
                         peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    assert trainer.reference_mode == "peft" and trainer.ref_model is None
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    with torch.no_grad():
        trainer.compute_loss(trainer.model.eval(), batch)
    assert trainer._metrics["eval"]["retain_loss"][0] == pytest.approx(0.0, abs=1e-10)  # LoRA starts as identity
    trainer.train()
    with torch.no_grad():
        trainer.compute_loss(trainer.model.eval(), batch)
        frozen = trainer.module_activations(base, batch, "retain")
        with trainer.model.disable_adapter():
            disabled = trainer.module_activations(trainer.model, batch, "retain")
    assert trainer._metrics["eval"]["retain_loss"][-1] > 1e-6
    torch.testing.assert_close(disabled, frozen)


def test_rmu_steering_vector_survives_resume(tmp_path):
    tok, model, forget, retain = make_setup()
    kw = config_kwargs(output_dir=str(tmp_path), module_regex=r"model\.layers\.1", max_steps=2, save_strategy="steps",
                       save_steps=2)
    first = RMUTrainer(copy.deepcopy(model), RMUConfig(**kw), forget_dataset=forget, retain_dataset=retain,
                       processing_class=tok)
    first.train()
    saved = first.steering_vector.clone()
    assert os.path.isfile(tmp_path / "checkpoint-2" / METHOD_STATE_NAME)
    resumed = RMUTrainer(copy.deepcopy(model), RMUConfig(**{**kw, "seed": 123, "max_steps": 3}), forget_dataset=forget,
                         retain_dataset=retain, processing_class=tok)
    assert not torch.allclose(resumed.steering_vector, saved)
    resumed.train(resume_from_checkpoint=True)
    torch.testing.assert_close(resumed.steering_vector, saved)
    assert resumed.state.global_step == 3


def _pdu_steps(trainer):
    logs = [h for h in trainer.state.log_history if "pdu/dual_variable" in h]
    return [h["pdu/dual_variable"] for h in logs], [h["retain_loss"] for h in logs]


def test_pdu_dual_variable_follows_projected_ascent_step_by_step():
    tok, model, forget, retain = make_setup()
    eta, eps = 0.3, 4.6
    cfg = PDUConfig(**config_kwargs(retain_loss_eps=eps, dual_step_size=eta, dual_warmup_epochs=1,
                                    retain_loss_weight=0.2, num_train_epochs=4, learning_rate=3e-3))
    trainer = PDUTrainer(model, cfg, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    trainer.train()
    lam, retain_losses = _pdu_steps(trainer)
    assert len(lam) == 8  # logged every step
    # warm-up epoch (steps 1-2) and the first step after it use the initial value
    assert lam[:3] == pytest.approx([0.2, 0.2, 0.2])
    for s in range(2, 7):
        assert lam[s + 1] == pytest.approx(max(0.0, lam[s] + eta * (retain_losses[s] - eps)), rel=1e-5, abs=1e-6)
    assert len({round(v, 4) for v in lam}) > 3 and lam[3] > 0.2  # it moved
    assert trainer.dual_variable == pytest.approx(max(0.0, lam[7] + eta * (retain_losses[7] - eps)), rel=1e-5, abs=1e-6)


def test_pdu_epoch_updates_and_resume(tmp_path):
    tok, model, forget, retain = make_setup()
    base = dict(retain_loss_eps=4.0, dual_step_size=0.5, dual_warmup_epochs=0, num_train_epochs=2, learning_rate=3e-3)
    per_epoch = PDUTrainer(copy.deepcopy(model), PDUConfig(**config_kwargs(dual_update_upon="epoch", **base)),
                           forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    per_epoch.train()
    lam, _ = _pdu_steps(per_epoch)
    assert lam[0] == lam[1] == 1.0 and lam[2] == lam[3] and abs(lam[2] - 1.0) > 1e-3  # only at epoch ends
    assert per_epoch.dual_variable == pytest.approx(max(0.0, lam[3] + 0.5 * (per_epoch.epoch_retain_loss() - 4.0)),
                                                    rel=1e-5)

    kw = config_kwargs(output_dir=str(tmp_path), save_strategy="steps", save_steps=2, **base)
    straight = PDUTrainer(copy.deepcopy(model), PDUConfig(**{**kw, "output_dir": str(tmp_path / "a")}),
                          forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    straight.train()
    interrupted = PDUTrainer(copy.deepcopy(model), PDUConfig(**{**kw, "output_dir": str(tmp_path / "b"), "max_steps": 2}),
                             forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    interrupted.train()
    resumed = PDUTrainer(copy.deepcopy(model), PDUConfig(**{**kw, "output_dir": str(tmp_path / "b")}),
                         forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    assert resumed.dual_variable == 1.0
    resumed.train(resume_from_checkpoint=True)
    assert interrupted.dual_variable != 1.0
    assert resumed.dual_variable == pytest.approx(straight.dual_variable, rel=1e-4)
