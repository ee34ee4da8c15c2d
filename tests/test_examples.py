"""The scripts in ``examples/`` run end to end offline (tiny model, fixture data, one step)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._tofu_fixture import TOFU_TINY, fixture_texts
from trl_unlearn.testing import make_model, make_tokenizer

ROOT = Path(__file__).resolve().parents[1]
MUSE_TINY = Path(__file__).parent / "fixtures" / "muse_tiny"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A saved tiny Llama + word-level tokenizer (with a chat template) covering both fixtures."""
    texts = fixture_texts()
    for path in sorted(MUSE_TINY.rglob("*.json")):
        for line in path.read_text().splitlines():
            texts.extend(v for v in json.loads(line).values() if isinstance(v, str))
    tokenizer = make_tokenizer(texts)
    folder = tmp_path_factory.mktemp("tiny_checkpoint")
    make_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    cmd = [sys.executable, str(ROOT / "examples" / name), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def saved_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file()


def test_npo_tofu_lora(tiny_checkpoint, tmp_path):
    out = tmp_path / "npo_lora"
    run_example("npo_tofu_lora.py", "--model", str(tiny_checkpoint), "--data_dir", str(TOFU_TINY),
                "--output_dir", str(out), "--max_steps", "1", cwd=tmp_path)  # fmt: skip
    assert (out / "adapter_config.json").is_file()  # LoRA: the adapter is what is saved
    assert "NPO" in (out / "README.md").read_text()


def test_dipo_tofu_with_eval_callback(tiny_checkpoint, tmp_path):
    out = tmp_path / "dipo"
    run_example("dipo_tofu.py", "--model", str(tiny_checkpoint), "--data_dir", str(TOFU_TINY),
                "--output_dir", str(out), "--max_steps", "1", cwd=tmp_path)  # fmt: skip
    assert saved_model(out)
    # the callback evaluated at the end of the epoch, after the last checkpoint; save_model's card has it
    card = (out / "README.md").read_text()
    assert "model_utility" in card and "No benchmark results" not in card


def test_npo_muse_news(tiny_checkpoint, tmp_path):
    out = tmp_path / "muse"
    proc = run_example("npo_muse_news.py", "--model", str(tiny_checkpoint), "--data_dir", str(MUSE_TINY),
                       "--output_dir", str(out), "--max_steps", "1", cwd=tmp_path)  # fmt: skip
    assert (out / "MUSE_EVAL.json").is_file() and (out / "MUSE_SUMMARY.json").is_file()
    summary = json.loads((out / "MUSE_SUMMARY.json").read_text())
    assert 0.0 <= summary["forget_verbmem_ROUGE"] <= 1.0
    assert "forget_verbmem_ROUGE" in proc.stdout


def test_evaluate_without_push(tiny_checkpoint, tmp_path):
    proc = run_example("evaluate_and_push.py", "--model", str(tiny_checkpoint), "--data_dir", str(TOFU_TINY),
                       "--no_push", cwd=tmp_path)  # fmt: skip
    assert "model_utility" in proc.stdout and "forget_Q_A_Prob" in proc.stdout


def test_rmu_wmdp(tiny_checkpoint, tmp_path):
    corpora, questions = tmp_path / "corpora", tmp_path / "questions"
    corpora.mkdir(), questions.mkdir()
    texts = fixture_texts()
    for name, rows in (("cyber-forget-corpus", texts[:6]), ("cyber-retain-corpus", texts[6:12])):
        (corpora / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    question = {"question": texts[0], "choices": texts[1:5], "answer": 2}
    (questions / "wmdp-cyber.jsonl").write_text(json.dumps(question) + "\n")
    (questions / "mmlu.jsonl").write_text(json.dumps({**question, "subject": "anatomy"}) + "\n")
    out = tmp_path / "rmu"
    proc = run_example("rmu_wmdp.py", "--model", str(tiny_checkpoint), "--corpora_dir", str(corpora),
                       "--eval_data_dir", str(questions), "--layers", "0,1", "--output_dir", str(out),
                       "--max_steps", "1", cwd=tmp_path)  # fmt: skip
    summary = json.loads((out / "WMDP_SUMMARY.json").read_text())
    assert set(summary) == {"wmdp_cyber", "mmlu"} and "wmdp_cyber" in proc.stdout
    assert "cais/wmdp" in (out / "README.md").read_text()
