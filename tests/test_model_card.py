"""Model cards: eval results, rendering from trl-unlearn's template, and the trainer mixin (offline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import yaml
from huggingface_hub import EvalResult, ModelCard

from trl_unlearn.model_card import (
    RESULTS_END,
    RESULTS_START,
    build_model_card_data,
    canonical_dataset_id,
    eval_results_from_records,
    eval_results_from_summary,
    latest_records,
    merge_eval_results,
    metric_display_name,
    render_model_card,
    render_results_markdown,
    replace_results_section,
)
from trl_unlearn.trainer.card import ModelCardMixin, training_settings

NPO_PAPER = {
    "title": "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning",
    "id": "2404.05868",
    "citation": "@inproceedings{zhang2024negative,\n  title = {Negative Preference Optimization},\n  year = {2024}\n}",
}
TOFU_RECORD = {
    "benchmark": "TOFU",
    "dataset_id": "locuslab/TOFU",
    "dataset_config": "forget10",
    "summary": {"forget_quality": 2.5e-05, "model_utility": 0.5874, "forget_Q_A_ROUGE": 0.3812},
}
MUSE_RECORD = {
    "benchmark": "MUSE",
    "dataset_id": "muse-bench/MUSE-News",
    "dataset_config": None,
    "summary": {"forget_verbmem_ROUGE": 0.2071, "retain_knowmem_ROUGE": 0.4433, "privleak": -3.25},
}


def _front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


# --------------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------------


def test_eval_results_from_summary_fields_and_values():
    results = eval_results_from_summary(
        "tofu",
        None,
        "forget05",
        {"forget_quality": np.float64(0.25), "model_utility": 0.5, "mia_loss": np.float32(0.5)},
    )
    assert results[0] == EvalResult(
        task_type="text-generation",
        task_name="Machine unlearning",
        dataset_type="locuslab/TOFU",
        dataset_name="TOFU (forget05)",
        dataset_config="forget05",
        metric_type="forget_quality",
        metric_name="Forget quality",
        metric_value=0.25,
    )
    assert [(r.metric_type, r.metric_name, r.metric_value) for r in results[1:]] == [
        ("model_utility", "Model utility", 0.5),
        ("mia_loss", "MIA AUC (loss)", 0.5),
    ]
    assert all(type(r.metric_value) is float for r in results)  # plain floats: YAML-safe


def test_eval_results_from_summary_skips_missing_values_and_validates():
    results = eval_results_from_summary(
        "MUSE", "muse-bench/MUSE-Books", "knowmem", {"privleak": float("nan"), "forget_knowmem_ROUGE": 0.1, "x": None}
    )
    assert [(r.metric_type, r.dataset_name, r.dataset_config) for r in results] == [
        ("forget_knowmem_ROUGE", "MUSE-Books (knowmem)", "knowmem")
    ]
    with pytest.raises(ValueError, match="empty"):
        eval_results_from_summary("TOFU", None, "forget10", {})
    with pytest.raises(ValueError, match="no numeric value"):
        eval_results_from_summary("TOFU", None, "forget10", {"forget_quality": float("inf")})
    with pytest.raises(ValueError, match="several datasets"):
        eval_results_from_summary("MUSE", None, None, {"privleak": 1.0})
    with pytest.raises(ValueError, match="Unknown benchmark 'NewBench'"):
        eval_results_from_summary("NewBench", None, None, {"acc": 1.0})
    assert eval_results_from_summary("NewBench", "me/newbench", "hard", {"acc": 1.0})[0].dataset_name == "NewBench (hard)"
    # WMDP's own metrics carry their datasets; another key needs one
    assert eval_results_from_summary("WMDP", None, None, {"wmdp_bio": 0.3})[0].dataset_name == "WMDP (wmdp-bio)"
    with pytest.raises(ValueError, match="several datasets"):
        eval_results_from_summary("WMDP", None, None, {"acc": 1.0})
    assert metric_display_name("retain_knowmem_ROUGE") == "Retain KnowMem (ROUGE-L F1)"
    assert metric_display_name("some_new_metric") == "Some new metric"


def test_latest_records_and_merge():
    older = {**TOFU_RECORD, "summary": {"forget_quality": 0.9, "exact_memorization": 0.7}}
    records = latest_records([older, MUSE_RECORD, TOFU_RECORD])
    assert records == [MUSE_RECORD, TOFU_RECORD]  # the newest TOFU forget10 wins and moves last
    results = eval_results_from_records([older, MUSE_RECORD, TOFU_RECORD])
    assert [r.metric_type for r in results] == [*MUSE_RECORD["summary"], *TOFU_RECORD["summary"]]
    with pytest.raises(ValueError, match="'benchmark' and 'summary'"):
        latest_records([{"dataset_id": "locuslab/TOFU"}])

    forget01 = eval_results_from_summary("TOFU", None, "forget01", {"privleak": 1.0})
    existing = eval_results_from_records([older]) + forget01
    merged = merge_eval_results(existing, eval_results_from_records([TOFU_RECORD]))
    assert [(r.dataset_config, r.metric_type) for r in merged] == [
        ("forget01", "privleak"),  # another evaluation: kept
        ("forget10", "forget_quality"),  # forget10 replaced as a whole (exact_memorization dropped)
        ("forget10", "model_utility"),
        ("forget10", "forget_Q_A_ROUGE"),
    ]
    assert merged[1].metric_value == 2.5e-05


def test_results_section_rendering_and_replacement():
    results = eval_results_from_records([TOFU_RECORD])
    section = render_results_markdown(results)
    assert section.splitlines() == [
        RESULTS_START,
        "",
        "### TOFU (forget10)",
        "",
        "TOFU benchmark on [`locuslab/TOFU`](https://huggingface.co/datasets/locuslab/TOFU), config `forget10`.",
        "",
        "| Metric | Key | Value |",
        "|---|---|---:|",
        "| Forget quality | `forget_quality` | 2.500e-05 |",
        "| Model utility | `model_utility` | 0.5874 |",
        "| Forget ROUGE-L recall | `forget_Q_A_ROUGE` | 0.3812 |",
        RESULTS_END,
    ]
    body = "\n# Model\n\nText.\n"
    once = replace_results_section(body, results)
    assert once == f"\n# Model\n\nText.\n\n## Unlearning evaluation\n\n{section}\n"
    new = eval_results_from_records([MUSE_RECORD])
    twice = replace_results_section(once, new)
    assert twice.count(RESULTS_START) == 1 and "MUSE-News" in twice and "TOFU (forget10)" not in twice
    assert "No benchmark results were recorded" in render_results_markdown([])


def test_canonical_dataset_ids():
    assert canonical_dataset_id("tofu") == "locuslab/TOFU"  # what `Dataset.info.dataset_name` keeps
    assert canonical_dataset_id("locuslab/tofu") == "locuslab/TOFU"
    assert canonical_dataset_id("muse_news") == "muse-bench/MUSE-News"
    assert canonical_dataset_id("someone/tofu") == "someone/tofu"
    assert canonical_dataset_id("json") == "json" and canonical_dataset_id(None) is None


def test_render_model_card_round_trips_with_results(tmp_path):
    eval_results = eval_results_from_records([TOFU_RECORD, MUSE_RECORD])
    card = render_model_card(
        model_name="Llama-3.2-1B-NPO-forget10",
        method_name="NPO",
        base_model="open-unlearning/tofu_Llama-3.2-1B-Instruct_full",
        hub_model_id="me/Llama-3.2-1B-NPO-forget10",
        paper=NPO_PAPER,
        method_hyperparameters={
            "beta": 0.1,
            "forget_loss_weight": 1.0,
            "retain_loss_weight": 1.0,
            "retain_loss_type": "nll",
        },
        training=[("Learning rate", 1e-05), ("Epochs", 10)],
        dataset_info={
            "forget": {"name": "tofu", "config": "forget10", "split": "train", "num_rows": 400},
            "retain": {"name": "json", "config": "default", "split": "train", "num_rows": 3600},
        },
        eval_results=eval_results,
        tags=["trl", "trl-unlearn", "unlearning", "npo", "npo"],
        license="llama3.2",
        language="en",
    )
    path = tmp_path / "README.md"
    card.save(path)
    loaded = ModelCard.load(path)
    assert loaded.data.eval_results == eval_results
    assert loaded.data.model_name == "Llama-3.2-1B-NPO-forget10"
    meta = _front_matter(path.read_text())
    assert {k: v for k, v in meta.items() if k != "model-index"} == {
        "base_model": "open-unlearning/tofu_Llama-3.2-1B-Instruct_full",
        "datasets": ["locuslab/TOFU"],
        "language": "en",
        "library_name": "transformers",
        "license": "llama3.2",
        "pipeline_tag": "text-generation",
        "tags": ["trl", "trl-unlearn", "unlearning", "npo"],
    }
    tofu, muse = meta["model-index"][0]["results"]
    assert tofu["task"] == {"type": "text-generation", "name": "Machine unlearning"}
    assert tofu["dataset"] == {"name": "TOFU (forget10)", "type": "locuslab/TOFU", "config": "forget10"}
    assert tofu["metrics"][0] == {"type": "forget_quality", "value": 2.5e-05, "name": "Forget quality"}
    assert muse["dataset"] == {"name": "MUSE-News", "type": "muse-bench/MUSE-News"}
    assert [m["value"] for m in muse["metrics"]] == [0.2071, 0.4433, -3.25]

    text = loaded.text
    assert text.startswith(
        "\n# Llama-3.2-1B-NPO-forget10\n\nThis model is [open-unlearning/tofu_Llama-3.2-1B-Instruct_full]"
    )
    for expected in [
        "with **NPO** ([Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning]"
        "(https://huggingface.co/papers/2404.05868))",
        "| Model utility | `model_utility` | 0.5874 |",
        "| PrivLeak | `privleak` | -3.2500 |",
        "- **Forget set**: [locuslab/TOFU](https://huggingface.co/datasets/locuslab/TOFU), config `forget10`, "
        "split `train` (400 examples).",
        "- **Retain set**: local json files, split `train` (3,600 examples).",
        "| `beta` | `0.1` |",
        "| `retain_loss_type` | `nll` |",
        "| Learning rate | 1e-05 |",
        'generator = pipeline("text-generation", model="me/Llama-3.2-1B-NPO-forget10")',
        "Cite NPO as:\n\n```bibtex\n@inproceedings{zhang2024negative,",
        "Cite the TOFU benchmark as:\n\n```bibtex\n@article{maini2024tofu,",
        "Cite the MUSE benchmark as:",
        "Cite TRL as:",
        "- TRL: ",
        "- trl-unlearn: ",
    ]:
        assert expected in text, expected


def test_render_model_card_without_results_base_model_or_retain():
    card = render_model_card(model_name="tiny", method_name="GradAscent", is_peft=True, dataset_info={"forget": None})
    meta = _front_matter(str(card))
    assert meta == {"library_name": "peft", "pipeline_tag": "text-generation", "model_name": "tiny"}
    assert card.data.eval_results is None
    assert "This model was produced by **machine unlearning** with **GradAscent**." in card.text
    assert "No benchmark results were recorded" in card.text
    assert 'AutoPeftModelForCausalLM.from_pretrained("tiny")' in card.text
    assert "- **Forget set**: not used." in card.text and "- **Retain set**: not used." in card.text
    assert "No method-specific hyper-parameters were recorded." in card.text
    assert "Cite TRL as:" in card.text and "Cite the TOFU" not in card.text


def test_build_model_card_data_drops_local_datasets():
    data = build_model_card_data(model_name="m", datasets=["json", "tofu", "./data", "me/private-set", None])
    assert data.datasets == ["locuslab/TOFU", "me/private-set"]


def test_training_settings_from_training_arguments(tmp_path):
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path),
        learning_rate=1e-05,
        num_train_epochs=10,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=8,
        weight_decay=0.01,
        warmup_steps=0.1,
        seed=42,
        report_to=[],
        use_cpu=True,
    )
    settings = dict(training_settings(args, global_step=250))
    assert settings["Learning rate"] == 1e-05 and settings["Epochs"] == 10
    assert settings["Batch size per device"] == 4 and settings["Gradient accumulation steps"] == 8
    assert settings["Effective batch size"] == 32
    assert settings["Weight decay"] == 0.01 and settings["LR scheduler"] == "linear"
    assert settings["Warm-up ratio"] == 0.1 and "Warm-up steps" not in settings
    assert settings["Mixed precision"] == "fp32" and settings["Seed"] == 42
    assert settings["Optimisation steps taken"] == 250


# --------------------------------------------------------------------------------------------------
# The mixin on a transformers.Trainer
# --------------------------------------------------------------------------------------------------


def _make_trainer(tmp_path, tiny_model, tiny_tokenizer, **attributes):
    from transformers import Trainer, TrainingArguments

    @dataclass
    class Args(TrainingArguments):
        beta: float = 0.1
        retain_loss_type: str = "nll"

        def method_hyperparameters(self):
            return {"beta": self.beta, "retain_loss_type": self.retain_loss_type}

    class CardTrainer(ModelCardMixin, Trainer):
        _name = "NPO"
        _tag_names = ["trl", "trl-unlearn", "unlearning", "npo"]
        _paper = NPO_PAPER

    args = Args(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True, per_device_train_batch_size=2)
    trainer = CardTrainer(model=tiny_model, args=args, processing_class=tiny_tokenizer)
    trainer.dataset_info = {
        "forget": {"name": "tofu", "config": "forget01", "split": "train", "num_rows": 40},
        "retain": {"name": "tofu", "config": "retain99", "split": "train", "num_rows": 3960},
    }
    trainer.eval_results = [
        {**TOFU_RECORD, "dataset_config": "forget01", "summary": {"forget_quality": 0.01}},
        {**TOFU_RECORD, "dataset_config": "forget01"},
    ]
    for name, value in attributes.items():
        setattr(trainer, name, value)
    return trainer


def test_mixin_writes_the_card_with_transformers_arguments(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.config._name_or_path = "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
    trainer = _make_trainer(tmp_path, tiny_model, tiny_tokenizer)
    # what transformers' Trainer.push_to_hub passes through **kwargs
    card = trainer.create_model_card(
        model_name="tiny-npo",
        language="en",
        license="apache-2.0",
        tags=["my-tag", "npo"],
        tasks="text-generation",
        dataset_tags="locuslab/TOFU",
        dataset="locuslab/TOFU",
        dataset_args="forget01",
        finetuned_from=None,
        something_new=1,
    )
    loaded = ModelCard.load(tmp_path / "out" / "README.md")
    assert str(loaded) == str(card)
    assert loaded.data.base_model == "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
    assert loaded.data.tags == ["trl", "trl-unlearn", "unlearning", "npo", "my-tag"]
    assert (loaded.data.license, loaded.data.language, loaded.data.datasets) == ("apache-2.0", "en", ["locuslab/TOFU"])
    assert loaded.data.model_name == "tiny-npo"
    assert [(r.dataset_config, r.metric_type, r.metric_value) for r in loaded.data.eval_results] == [
        ("forget01", key, value) for key, value in TOFU_RECORD["summary"].items()
    ]  # the latest forget01 evaluation only
    assert "| `beta` | `0.1` |" in loaded.text and "| Effective batch size | 2 |" in loaded.text
    assert "config `retain99`, split `train` (3,960 examples)" in loaded.text
    assert 'model="out"' not in loaded.text and 'model="tiny-npo"' in loaded.text


def test_mixin_trl_call_local_base_model_and_non_main_process(tmp_path, tiny_model, tiny_tokenizer, monkeypatch):
    tiny_model.config._name_or_path = str(tmp_path)  # a local directory is no Hub base model
    trainer = _make_trainer(tmp_path, tiny_model, tiny_tokenizer, eval_results=[], hub_model_id="me/unlearned")
    card = trainer.create_model_card(model_name=None, dataset_name="tofu", tags="extra")  # TRL's call
    assert card.data.base_model is None and card.data.eval_results is None
    assert card.data.tags == ["trl", "trl-unlearn", "unlearning", "npo", "extra"]
    assert card.data.datasets == ["locuslab/TOFU"]
    assert "# unlearned\n" in card.text and 'model="me/unlearned"' in card.text

    (tmp_path / "out" / "README.md").unlink()
    monkeypatch.setattr(trainer, "is_world_process_zero", lambda: False)
    assert trainer.create_model_card(model_name="x") is None
    assert not (tmp_path / "out" / "README.md").exists()


def test_mixin_card_for_a_peft_adapter(tmp_path, tiny_model, tiny_tokenizer):
    from peft import LoraConfig, get_peft_model

    tiny_model.config._name_or_path = "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
    peft_model = get_peft_model(tiny_model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    trainer = _make_trainer(tmp_path, peft_model, tiny_tokenizer, hub_model_id="me/npo-lora")
    card = trainer.create_model_card()
    assert card.data.library_name == "peft"
    assert card.data.base_model == "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
    assert 'AutoPeftModelForCausalLM.from_pretrained("me/npo-lora")' in card.text
    assert ModelCard.load(tmp_path / "out" / "README.md").data.eval_results == card.data.eval_results
