"""Every new method runs as a `trl-unlearn <method>` sub-command and writes a model card naming the
method, its paper and its hyper-parameters."""

import json

import pytest

from trl_unlearn import cli

from ._tofu_fixture import TOFU_TINY, tiny_model, tiny_tokenizer

EXTRA = {
    "idkdpo": ["--beta", "0.2"],
    "altpo": [],
    "idknll": [],
    "undial": ["--beta", "3"],
    "wga": ["--beta", "0.5"],
    "satimp": ["--beta1", "4"],
    "ceu": ["--ignore_first_n_answer_tokens", "2"],
    "rmu": ["--module_regex", r"model\.layers\.1", "--trainable_params_regex", r"model\.layers\.[01]\..*"],
    "pdu": ["--retain_loss_eps", "0.7", "--dual_warmup_epochs", "0"],
}
CARD = {
    "idkdpo": ("IdkDPO", "2401.06121", "beta"),
    "altpo": ("AltPO", "2409.13474", "alternate_column"),
    "idknll": ("IdkNLL", "2401.06121", "alternate_column"),
    "undial": ("UNDIAL", "2402.10052", "beta"),
    "wga": ("WGA", "2502.19301", "beta"),
    "satimp": ("SatImp", "2505.11953", "beta1"),
    "ceu": ("CE-U", "2503.01224", "ignore_first_n_answer_tokens"),
    "rmu": ("RMU", "2403.03218", "steering_coeff"),
    "pdu": ("PDU", "2506.05314", "retain_loss_eps"),
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    tok = tiny_tokenizer()
    path = tmp_path_factory.mktemp("tiny") / "tiny-model"
    tiny_model(tok).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_every_method_is_a_subcommand():
    from trl_unlearn.trainer import METHODS

    assert set(EXTRA) <= set(cli.METHOD_NAMES) and set(cli.METHOD_NAMES) == set(METHODS)


@pytest.mark.parametrize("method", sorted(EXTRA))
def test_new_method_subcommand_trains_and_writes_card(saved_model, tmp_path, method):
    data = ["--data_dir", str(TOFU_TINY), "--forget_split", "forget01", "--retain_split", "retain99"]
    if method == "altpo":  # AltPO needs alternate answers in the forget data
        rows = [json.loads(line) for line in (TOFU_TINY / "forget01.json").read_text().splitlines() if line.strip()]
        (tmp_path / "forget.jsonl").write_text("".join(json.dumps({**r, "alternate": r["answer"][::-1]}) + "\n"
                                                       for r in rows))
        (tmp_path / "retain.jsonl").write_text((TOFU_TINY / "retain99.json").read_text())
        data = ["--dataset", "local/altpo", "--data_dir", str(tmp_path), "--forget_split", "forget",
                "--retain_split", "retain"]
    out = tmp_path / "out"
    cli.main([method, "--model_name_or_path", str(saved_model), *data, "--output_dir", str(out), "--max_steps", "1",
              "--per_device_train_batch_size", "2", "--report_to", "none", "--activation_checkpointing", "false",
              "--use_cpu", "true", "--save_strategy", "no", "--learning_rate", "1e-3", *EXTRA[method]])
    assert (out / "model.safetensors").is_file()
    card = (out / "README.md").read_text()
    name, paper, field = CARD[method]
    assert name in card and paper in card and field in card
