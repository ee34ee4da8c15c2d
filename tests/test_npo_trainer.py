import math
from pathlib import Path

import pytest
import torch

from trl_unlearn import NPOConfig, NPOTrainer
from trl_unlearn.testing import make_model, mean_token_log_prob

from ._helpers import config_kwargs, make_setup, run_distributed


def _hand_seq_logp(model, prompt_ids, completion_ids):
    """Σ log π(completion | prompt) from one unpadded forward pass, position by position."""
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    total = 0.0
    for t in range(len(prompt_ids), ids.shape[1]):
        total += torch.log_softmax(logits[t - 1].double(), -1)[ids[0, t]].item()
    return total


def _first_batch(trainer, n=4):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(n)])


def test_npo_loss_equals_hand_computation_with_distinct_reference():
    tok, model, forget, retain = make_setup()
    ref = make_model(tok, seed=7)
    beta, alpha, gamma = 0.1, 0.7, 1.3
    trainer = NPOTrainer(model, NPOConfig(**config_kwargs(beta=beta, retain_loss_weight=alpha, forget_loss_weight=gamma)),
                         forget_dataset=forget, retain_dataset=retain, ref_model=ref, processing_class=tok)
    assert trainer.reference_mode == "model"
    items = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(items)
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch).item()

    forget_terms, retain_nll, retain_tokens = [], 0.0, 0
    for it in items:
        pol = _hand_seq_logp(model, it["forget_prompt_ids"], it["forget_completion_ids"])
        rf = _hand_seq_logp(ref, it["forget_prompt_ids"], it["forget_completion_ids"])
        x = -beta * (pol - rf)
        forget_terms.append(-(2 / beta) * -math.log1p(math.exp(-x)))
        retain_nll -= _hand_seq_logp(model, it["retain_prompt_ids"], it["retain_completion_ids"])
        retain_tokens += len(it["retain_completion_ids"])
    expected = gamma * sum(forget_terms) / 4 + alpha * retain_nll / retain_tokens
    assert pol != pytest.approx(rf)  # the reference really differs
    assert loss == pytest.approx(expected, rel=1e-5)


def test_precomputed_reference_matches_live_copy_and_holds_no_model():
    tok, model, forget, retain = make_setup()
    live = NPOTrainer(model, NPOConfig(**config_kwargs()), forget_dataset=forget, retain_dataset=retain,
                      processing_class=tok)
    assert live.reference_mode == "copy" and live.ref_model is not None
    pre = NPOTrainer(make_model(tok), NPOConfig(**config_kwargs(precompute_ref_log_probs=True)),
                     forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    assert pre.ref_model is None and pre.reference_mode == "precomputed"
    # make the policy differ from its reference so the log-ratio is not trivially 0
    for trainer in (live, pre):
        with torch.no_grad():
            trainer.model.lm_head.weight.mul_(1.5)
    b_live, b_pre = _first_batch(live), _first_batch(pre)
    assert "forget_ref_logps" in b_pre and "forget_ref_logps" not in b_live
    live.model.eval(), pre.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(live.compute_loss(live.model, b_live), pre.compute_loss(pre.model, b_pre))
        torch.testing.assert_close(live.reference_sequence_logps(live.model, b_live), b_pre["forget_ref_logps"],
                                   rtol=1e-5, atol=1e-4)


def test_explicit_reference_precomputed_equals_live_and_stays_where_it_was():
    tok, model, forget, retain = make_setup()
    ref = make_model(tok, seed=7)
    live = NPOTrainer(model, NPOConfig(**config_kwargs()), forget_dataset=forget, retain_dataset=retain,
                      ref_model=ref, processing_class=tok)  # fmt: skip
    pre = NPOTrainer(make_model(tok), NPOConfig(**config_kwargs(precompute_ref_log_probs=True, precompute_ref_batch_size=3)),
                     forget_dataset=forget, retain_dataset=retain, ref_model=ref, processing_class=tok)  # fmt: skip
    assert pre.reference_mode == "precomputed" and pre.ref_model is None
    assert next(ref.parameters()).device.type == "cpu" and not ref.training
    b_live, b_pre = _first_batch(live), _first_batch(pre)
    with torch.no_grad():
        torch.testing.assert_close(live.reference_sequence_logps(live.model, b_live), b_pre["forget_ref_logps"],
                                   rtol=1e-5, atol=1e-4)


def test_precomputed_reference_is_cached_by_dataset_fingerprint(tmp_path, monkeypatch):
    """A dataset backed by cache files gets its reference column from the cache on a second run with the same
    reference; other reference weights miss the cache."""
    import datasets

    from trl_unlearn.trainer import reference as reference_module

    tok, _, forget, retain = make_setup()
    forget.to_json(tmp_path / "forget.jsonl")
    on_disk = datasets.load_dataset("json", data_files=str(tmp_path / "forget.jsonl"), split="train",
                                    cache_dir=str(tmp_path / "cache"))
    assert on_disk.cache_files
    calls = []
    original = reference_module.sequence_log_probs
    monkeypatch.setattr(reference_module, "sequence_log_probs", lambda *a, **k: calls.append(1) or original(*a, **k))

    def build(seed):
        args = NPOConfig(**config_kwargs(precompute_ref_log_probs=True, precompute_ref_batch_size=4))
        return NPOTrainer(make_model(tok, seed=seed), args, forget_dataset=on_disk, retain_dataset=retain,
                          processing_class=tok)

    first = build(0)
    computed = len(calls)
    assert computed == -(-len(on_disk) // 4)
    second = build(0)
    assert len(calls) == computed  # read from the cache file, no forward pass
    assert second.forget_data["ref_logps"] == first.forget_data["ref_logps"]
    other = build(3)
    assert len(calls) == 2 * computed  # other weights, other fingerprint: computed again
    assert other.forget_data["ref_logps"] != first.forget_data["ref_logps"]

    # an in-memory forget set cannot be cached: the reference weights are not hashed (minutes on a 7B model)
    from trl_unlearn.trainer import unlearning_trainer

    hashed = []
    monkeypatch.setattr(unlearning_trainer, "hash_module", lambda module: hashed.append(1) or "hash")
    build_in_memory = NPOTrainer(make_model(tok), NPOConfig(**config_kwargs(precompute_ref_log_probs=True)),
                                 forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    assert not forget.cache_files and hashed == []
    assert len(build_in_memory.forget_data["ref_logps"]) == len(forget)
    build(0)
    assert hashed == [1]


def test_peft_reference_is_the_base_model_without_a_second_copy():
    from peft import LoraConfig

    tok, model, forget, retain = make_setup()
    base = make_model(tok)  # identical weights (same seed) kept outside the trainer
    peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    trainer = NPOTrainer(model, NPOConfig(**config_kwargs()), forget_dataset=forget, retain_dataset=retain,
                         processing_class=tok, peft_config=peft_config)
    assert trainer.reference_mode == "peft" and trainer.ref_model is None
    with torch.no_grad():  # perturb the adapter so that adapter-on differs from the base
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    batch = _first_batch(trainer)
    ref_logps = trainer.reference_sequence_logps(trainer.model, batch)
    for i, it in enumerate([trainer.train_dataset[j] for j in range(4)]):
        expected = _hand_seq_logp(base, it["forget_prompt_ids"], it["forget_completion_ids"])
        assert ref_logps[i].item() == pytest.approx(expected, rel=1e-5)
        with torch.no_grad():
            policy = trainer.policy_forward(trainer.model, batch, "forget")[1].sum(-1)[i].item()
        assert abs(policy - expected) > 1e-3  # the adapter is really active in the policy


def _train_params(**overrides):
    tok, model, forget, retain = make_setup()
    trainer = NPOTrainer(model, NPOConfig(**config_kwargs(optim="sgd", learning_rate=0.5, max_steps=1, **overrides)),
                         forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    trainer.train()
    return {k: v.detach().clone() for k, v in trainer.model.named_parameters()}, trainer


def test_gradient_accumulation_equals_big_batch():
    big, t_big = _train_params(per_device_train_batch_size=4)
    acc, t_acc = _train_params(per_device_train_batch_size=2, gradient_accumulation_steps=2)
    init = {k: v for k, v in make_setup()[1].named_parameters()}
    moved = max((big[k] - init[k]).abs().max().item() for k in big)
    assert moved > 1e-3
    for k in big:
        torch.testing.assert_close(acc[k], big[k], rtol=1e-5, atol=1e-6)
    assert t_acc.state.log_history[0]["loss"] == pytest.approx(t_big.state.log_history[0]["loss"], rel=1e-5)


def test_training_forgets_forget_set_and_keeps_retain_set(memorised):
    tok, model, forget, retain = memorised
    trainer = NPOTrainer(model, NPOConfig(**config_kwargs(num_train_epochs=6, learning_rate=1e-3, beta=0.5)),
                         forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    before = (mean_token_log_prob(trainer.model, trainer.forget_data), mean_token_log_prob(trainer.model, trainer.retain_data))
    trainer.train()
    after = (mean_token_log_prob(trainer.model, trainer.forget_data), mean_token_log_prob(trainer.model, trainer.retain_data))
    # measured: forget -0.10 -> -2.10 nats/token, retain -0.125 -> -0.135
    assert after[0] < before[0] - 1.0, (before, after)  # forget log-likelihood per token falls a lot
    assert abs(after[1] - before[1]) < 0.1, (before, after)  # retain stays close
    logged = trainer.state.log_history[0]
    for key in ("loss", "forget_loss", "retain_loss", "logps/forget_policy", "logps/forget_reference", "log_ratio"):
        assert key in logged


def _losses(history):
    return [(h["step"], h["loss"], h["forget_loss"]) for h in history if "forget_loss" in h]


def test_same_seed_same_losses_and_resume_continues_identically(tmp_path):
    def run(output_dir, resume=None, **kw):
        tok, model, forget, retain = make_setup(n_forget=12)
        args = NPOConfig(**config_kwargs(output_dir=str(output_dir), num_train_epochs=2, save_strategy="steps",
                                         save_steps=2, **kw))
        trainer = NPOTrainer(model, args, forget_dataset=forget, retain_dataset=retain, processing_class=tok)
        trainer.train(resume_from_checkpoint=resume)
        return _losses(trainer.state.log_history)

    first = run(tmp_path / "a")
    assert len(first) == 6
    assert run(tmp_path / "b") == first
    resumed = run(tmp_path / "a", resume=str(tmp_path / "a" / "checkpoint-2"))
    assert [s for s, *_ in resumed] == [1, 2, 3, 4, 5, 6]  # steps 1-2 come from the checkpoint's state
    for (s1, l1, f1), (s2, l2, f2) in zip(first[2:], resumed[2:]):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-5) and f1 == pytest.approx(f2, rel=1e-5)


def test_bad_input_errors():
    tok, model, forget, retain = make_setup()
    with pytest.raises(ValueError, match="retain_dataset` is required"):
        NPOTrainer(model, NPOConfig(**config_kwargs()), forget_dataset=forget, processing_class=tok)
    with pytest.raises(ValueError, match="forget_dataset` is required"):
        NPOTrainer(model, NPOConfig(**config_kwargs()), retain_dataset=retain, processing_class=tok)
    with pytest.raises(ValueError, match="forget dataset is empty"):
        NPOTrainer(model, NPOConfig(**config_kwargs()), forget_dataset=forget.select([]), retain_dataset=retain,
                   processing_class=tok)
    with pytest.raises(ValueError, match="Unsupported dataset columns"):
        NPOTrainer(model, NPOConfig(**config_kwargs()), forget_dataset=forget.rename_column("answer", "reply"),
                   retain_dataset=retain, processing_class=tok)
    with pytest.raises(ValueError, match="retain_loss_type"):
        NPOConfig(**config_kwargs(retain_loss_type="mse"))
    with pytest.raises(ValueError, match="beta"):
        NPOConfig(**config_kwargs(beta=0))
    # retain-free NPO works without a retain set
    NPOTrainer(model, NPOConfig(**config_kwargs(retain_loss_type="none")), forget_dataset=forget, processing_class=tok)


def test_nan_loss_is_a_clear_error():
    tok, model, forget, retain = make_setup()
    trainer = NPOTrainer(model, NPOConfig(**config_kwargs()), forget_dataset=forget, retain_dataset=retain,
                         processing_class=tok)
    with torch.no_grad():
        trainer.model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        trainer.train()


def test_eval_logs_unlearning_metrics():
    tok, model, forget, retain = make_setup()
    trainer = NPOTrainer(model, NPOConfig(**config_kwargs()), forget_dataset=forget, retain_dataset=retain,
                         eval_forget_dataset=forget, processing_class=tok)
    metrics = trainer.evaluate()
    assert metrics["eval_forget_loss"] == pytest.approx(2 / 0.1 * math.log(2), rel=1e-5)  # policy == reference
    assert metrics["eval_log_ratio"] == pytest.approx(0.0, abs=1e-5)
    assert "eval_retain_loss" in metrics


DIST_SCRIPT = Path(__file__).with_name("_distributed_npo.py")


@pytest.mark.slow
def test_two_processes_match_one_process_with_same_global_batch(tmp_path):
    single = tmp_path / "single.json"
    run_distributed(DIST_SCRIPT, single, 4, nproc=1)
    double = tmp_path / "double.json"
    run_distributed(DIST_SCRIPT, double, 2, launcher="accelerate")
    import json

    a, b = json.loads(single.read_text()), json.loads(double.read_text())
    assert b["world_size"] == 2 and a["world_size"] == 1
    assert len(a["losses"]) == len(b["losses"]) == 4
    for x, y in zip(a["losses"], b["losses"]):
        assert x == pytest.approx(y, rel=1e-4)
    for x, y in zip(a["forget_losses"], b["forget_losses"]):
        assert x == pytest.approx(y, rel=1e-4)
    assert a["param_checksum"] == pytest.approx(b["param_checksum"], rel=1e-5)
