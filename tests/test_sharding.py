"""Sharded training (FSDP2 through accelerate, 2 CPU processes) equals 1-process training, for every method
and reference mode; the sharded model is saved whole and evaluated per example like the 1-process one."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests._helpers import run_distributed
from trl_unlearn.evaluation.batching import collective_mode, distributed_map, is_sharded_model

SCRIPT = Path(__file__).with_name("_distributed_sharded.py")


def test_unsharded_work_keeps_its_mode():
    model = torch.nn.Linear(2, 2)
    assert not is_sharded_model(model) and not is_sharded_model(None)
    assert collective_mode("shard", model) == "shard" and collective_mode(None, model) is None
    for mode in ("lockstep", "padded"):  # one process: plain computation
        assert distributed_map(lambda xs: [2 * x for x in xs], [1, 2, 3], mode) == [2, 4, 6]


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}[{i}]").items()}
    return {prefix: value}


def _weights(folder: Path) -> dict:
    name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(folder / name)


@pytest.mark.slow
def test_fsdp2_two_processes_match_one_process(tmp_path):
    single, double = tmp_path / "single", tmp_path / "fsdp"
    run_distributed(SCRIPT, single, "single", nproc=1)
    run_distributed(SCRIPT, double, "fsdp", timeout=900)
    a = json.loads((single / "results.json").read_text())
    b = json.loads((double / "results.json").read_text())
    assert a["world_size"] == 1 and b["world_size"] == 2
    assert a["cases"].keys() == b["cases"].keys()
    for case, one in a["cases"].items():
        two = b["cases"][case]
        assert len(one["losses"]) == len(two["losses"]) == 4, case
        assert two["losses"] == pytest.approx(one["losses"], abs=1e-5), case
        assert two["reference_mode"] == one["reference_mode"], case
        # a held reference model (frozen copy, explicit ref_model) is sharded like the policy
        assert two["ref_model_sharded"] == (one["reference_mode"] in ("copy", "model")), case
        assert two["ref_whole_params"] == [], case
        assert two["saved_vs_gathered"] == 0.0, case  # the saved folder is the gathered full state dict
        w1, w2 = _weights(single / case), _weights(double / case)
        assert w1.keys() == w2.keys(), case
        for key in w1:
            torch.testing.assert_close(w2[key], w1[key], atol=1e-5, rtol=0, msg=f"{case} {key}")
    modes = {c.rsplit("-", 1)[1] for c in a["cases"] if c.startswith("NPO-")}
    assert modes == {"copy", "peft", "precomputed", "precomputed_ref_model", "model"}

    # TOFU on the sharded model: during training (before and after the step) and after it, per example
    ta, tb = a["tofu"], b["tofu"]
    assert tb["sharded"] and not ta["sharded"]
    assert len(ta["callback"]) == len(tb["callback"]) == 2
    for s1, s2 in zip(ta["callback"], tb["callback"]):
        assert set(s1) - set(s2) == {"mia_gradnorm"}  # skipped on a sharded model (its gradients are sharded)
        for key, value in s2.items():
            assert value == pytest.approx(s1[key], abs=1e-5), key
    # TOFU after training, MUSE and WMDP on the sharded model: the 1-process results, per example
    for benchmark in ("after", "muse", "wmdp"):
        flat_a, flat_b = _flatten({k: v for k, v in ta[benchmark].items() if k != "mia_gradnorm"}), _flatten(tb[benchmark])
        assert flat_a.keys() == flat_b.keys(), benchmark
        for key, value in flat_a.items():  # trained weights agree to float rounding, which Min-k%++ scales up a little
            if isinstance(value, float):
                assert flat_b[key] == pytest.approx(value, rel=1e-5, abs=1e-5), (benchmark, key)
            else:
                assert flat_b[key] == value, (benchmark, key)
    assert any("value_by_index" in k for k in _flatten(ta["after"]))
    assert any("value_by_index" in k for k in _flatten(ta["muse"]))
