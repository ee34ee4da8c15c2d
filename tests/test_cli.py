import json

import pytest

from trl_unlearn import cli

from ._tofu_fixture import TOFU_TINY, tiny_model, tiny_tokenizer


@pytest.fixture
def saved_model(tmp_path):
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    path = tmp_path / "tiny-model"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_pop_launch_args_splits_accelerate_flags():
    launch, rest = cli._pop_launch_args(["--num_processes", "2", "--beta=0.2", "--accelerate_config=a.yaml", "--x", "1"])
    assert launch == ["--num_processes", "2", "--config_file", "a.yaml"]
    assert rest == ["--beta=0.2", "--x", "1"]


@pytest.mark.parametrize("method", ["npo", "dipo"])
def test_train_command_unlearns_evaluates_and_writes_card(saved_model, tmp_path, method):
    out = tmp_path / "out"
    cli.main([method, "--model_name_or_path", str(saved_model), "--data_dir", str(TOFU_TINY),
              "--forget_split", "forget01", "--retain_split", "retain99", "--output_dir", str(out),
              "--max_steps", "2", "--per_device_train_batch_size", "2", "--report_to", "none",
              "--activation_checkpointing", "false", "--eval_benchmark", "tofu", "--eval_batch_size", "4",
              "--learning_rate", "1e-3", "--use_cpu", "true", "--save_strategy", "no"])
    summary = json.loads((out / "TOFU_SUMMARY.json").read_text())
    assert 0.0 <= summary["forget_Q_A_Prob"] <= 1.0 and "forget_Q_A_ROUGE" in summary
    assert (out / "TOFU_EVAL.json").is_file() and (out / "model.safetensors").is_file()
    card = (out / "README.md").read_text()
    assert method in card.lower() and "forget_Q_A_Prob" in card


def test_yaml_config_and_peft_flags(saved_model, tmp_path):
    out = tmp_path / "lora"
    config = tmp_path / "npo.yaml"
    config.write_text(f"model_name_or_path: {saved_model}\ndata_dir: {TOFU_TINY}\nforget_split: forget01\n"
                      f"retain_split: retain99\noutput_dir: {out}\nmax_steps: 1\nbeta: 0.2\nreport_to: none\n"
                      "use_peft: true\nlora_r: 4\nlora_target_modules: [q_proj, v_proj]\nactivation_checkpointing: false\n"
                      "use_cpu: true\nsave_strategy: 'no'\n")
    cli.main(["npo", "--config", str(config)])
    assert (out / "adapter_config.json").is_file()
    assert "beta" in (out / "README.md").read_text()


def test_eval_command_writes_summary_and_per_example_results(saved_model, tmp_path, capsys):
    out = tmp_path / "eval"
    assert cli.main(["eval", "tofu", "--model_name_or_path", str(saved_model), "--data_dir", str(TOFU_TINY),
                     "--forget_split", "forget01", "--output_dir", str(out), "--batch_size", "4"]) == 0
    summary = json.loads((out / "TOFU_SUMMARY.json").read_text())
    stdout = capsys.readouterr().out
    assert json.loads(stdout[stdout.index("{"):]) == summary
    assert set(summary) >= {"forget_Q_A_Prob", "model_utility", "exact_memorization"}
    per_example = json.loads((out / "TOFU_EVAL.json").read_text())
    assert len(per_example["forget_Q_A_Prob"]["value_by_index"]) == len((TOFU_TINY / "forget01.json").read_text().splitlines())


def test_unknown_command_is_an_error(capsys):
    assert cli.main(["forget-everything"]) == 2
    assert "unknown command" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["load_in_4bit", "load_in_8bit"])
def test_kbit_flags_give_a_quantization_config(flag):
    from transformers import BitsAndBytesConfig
    from trl import ModelConfig

    from trl_unlearn.scripts.unlearn import model_init_kwargs

    kwargs = model_init_kwargs(ModelConfig(model_name_or_path="x/y", **{flag: True}))
    assert isinstance(kwargs["quantization_config"], BitsAndBytesConfig)
    assert getattr(kwargs["quantization_config"], flag)
