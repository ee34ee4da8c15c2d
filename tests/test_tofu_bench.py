"""``trl-unlearn tofu-bench`` end to end on a tiny model and TOFU-shaped data (6 authors x 4 rows)."""

import json

import pytest

from trl_unlearn import cli
from trl_unlearn.tofu_bench import BenchValidityError, TofuBenchConfig, run
from trl_unlearn.tofu_bench.data import select_rows
from trl_unlearn.tofu_bench.settings import select_point

from ._tofu_fixture import bench_texts, single_thread, write_bench_data

REQUIRED = ("forget_quality", "model_utility", "forget_Q_A_Prob", "forget_Q_A_ROUGE", "forget_truth_ratio",
            "extraction_strength", "wall_seconds")
# Sized so the tiny target memorises its 24 rows (the validity check passes with its defaults) and
# one unlearning epoch pair (4 steps) visibly moves the forget set.
OPTIONS = dict(authors="6", questions_per_author=4, finetune_learning_rate=1e-2, finetune_epochs=60,
               finetune_batch_size=8, finetune_warmup_epochs=0, unlearn_batch_size=4, curve_points=2,
               max_new_tokens=12, retain_eval_rows=None, quiet=True,
               method_settings=json.dumps({"all": {"learning_rate": 1e-2, "num_train_epochs": 2, "warmup_epochs": 0}}))


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from trl_unlearn.testing import make_model, make_tokenizer

    root = tmp_path_factory.mktemp("tofu-bench")
    data_dir = write_bench_data(root / "data")
    tokenizer = make_tokenizer(bench_texts(data_dir))
    make_model(tokenizer).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    return {"root": root, "data_dir": str(data_dir), "base": str(root / "base"), "tokenizer": tokenizer}


def config(bench, output_dir, **overrides):
    return TofuBenchConfig(output_dir=str(output_dir), model_name_or_path=bench["base"], data_dir=bench["data_dir"],
                           **{**OPTIONS, **overrides})


@pytest.fixture(scope="module")
def first_run(bench):
    out = bench["root"] / "out"
    with single_thread():
        payload = run(config(bench, out, methods=["npo", "dipo", "gradascent", "graddiff"]))
    return out, payload


def test_first_run_runs_every_stage_and_writes_the_report(first_run):
    out, payload = first_run
    stages = [(s["stage"], s["name"], s["status"]) for s in payload["stages"]]
    assert stages[:4] == [("finetune", "target", "ran"), ("finetune", "retain", "ran"), ("eval", "retain", "ran"),
                          ("eval", "target", "ran")]
    assert [s[:2] for s in stages[4:]] == [(k, m) for m in ("npo", "dipo", "gradascent", "graddiff")
                                           for k in ("unlearn", "eval")]
    assert {s[2] for s in stages} == {"ran"}
    assert json.loads((out / "manifest.json").read_text())["stages"] == payload["stages"]

    saved = json.loads((out / "results.json").read_text())
    assert set(saved) >= {"command", "commit", "versions", "settings", "selection_rule", "rows", "validity"}
    assert set(saved["versions"]) >= {"torch", "transformers", "trl"}
    assert list(saved["rows"]) == ["target", "retain", "npo", "dipo", "gradascent", "graddiff"]
    for name, row in saved["rows"].items():
        assert all(row[k] is not None for k in REQUIRED), name
        assert 0 <= row["forget_Q_A_Prob"] <= 1 and 0 <= row["forget_quality"] <= 1
    rows = saved["rows"]
    # the retain model is its own reference; the target memorised the forget authors, the retain model did not
    assert rows["retain"]["forget_quality"] == pytest.approx(1.0)
    assert rows["target"]["forget_Q_A_Prob"] > rows["retain"]["forget_Q_A_Prob"] + 0.5
    assert saved["validity"]["passed"] and saved["validity"]["checks"]["forget_prob_gap"]["value"] == pytest.approx(
        rows["target"]["forget_Q_A_Prob"] - rows["retain"]["forget_Q_A_Prob"])
    assert rows["gradascent"]["forget_Q_A_Prob"] < rows["target"]["forget_Q_A_Prob"] - 0.1
    assert saved["settings"]["data"] == {"authors": 6, "forget_authors": 2, "target_rows": 24, "retain_rows": 16,
                                         "forget_rows": 8, "eval_rows": {"forget01_perturbed": 8, "retain_perturbed": 8,
                                                                         "real_authors_perturbed": 4,
                                                                         "world_facts_perturbed": 4}}
    assert saved["settings"]["selected_settings"]["npo"]["beta"] == 0.1  # committed table + --method_settings
    assert saved["settings"]["selected_settings"]["npo"]["learning_rate"] == 1e-2

    # forget quality over training starts at the target's and ends at the unlearned model's
    for method in ("npo", "gradascent"):
        curve = saved["curves"][method]
        assert [p["step"] for p in curve] == [0, 2, 4] and curve[-1]["progress"] == 1.0
        assert curve[0]["forget_quality"] == pytest.approx(rows["target"]["forget_quality"])
        assert curve[-1]["forget_quality"] == pytest.approx(rows[method]["forget_quality"])
        assert curve[-1]["forget_Q_A_Prob"] == pytest.approx(rows[method]["forget_Q_A_Prob"], rel=1e-5)

    table = (out / "results.md").read_text()
    assert "| model | forget quality | model utility |" in table
    assert all(f"| {name} |" in table for name in rows)
    assert (out / "fq_vs_mu.png").stat().st_size > 1000 and (out / "fq_curves.png").stat().st_size > 1000
    assert rows["npo"]["model_dir"].startswith("unlearn/npo-")  # relative to output_dir
    card = (out / rows["npo"]["model_dir"] / "README.md").read_text()
    assert "NPO" in card and "forget_quality" in card and "model_utility" in card


def test_second_call_runs_only_what_is_missing_then_nothing(first_run, bench):
    out, first = first_run
    with single_thread():
        second = run(config(bench, out))  # the default five methods: simnpo is new
    status = {(s["stage"], s["name"]): s["status"] for s in second["stages"]}
    assert {k for k, v in status.items() if v == "ran"} == {("unlearn", "simnpo"), ("eval", "simnpo")}
    for name in first["rows"]:
        for key in REQUIRED:
            assert second["rows"][name][key] == first["rows"][name][key], (name, key)

    args = ["tofu-bench", "--output_dir", str(out), "--model_name_or_path", bench["base"], "--data_dir",
            bench["data_dir"]]
    for key, value in OPTIONS.items():
        args += [f"--{key}", str(value)]
    with single_thread():
        assert cli.main(args) == 0
    third = json.loads((out / "results.json").read_text())
    assert {s["status"] for s in third["stages"]} == {"cached"} and len(third["stages"]) == 14
    assert third["command"].startswith("trl-unlearn tofu-bench --output_dir")
    assert third["rows"]["simnpo"]["forget_quality"] == second["rows"]["simnpo"]["forget_quality"]


def test_sweep_reports_the_grid_and_picks_by_the_rule(first_run, bench):
    out, first = first_run
    with single_thread():
        payload = run(config(bench, out, methods=["gradascent"], sweep=True,
                             sweep_grid=json.dumps({"learning_rate": [1e-4, 1e-2]})))
    status = [(s["stage"], s["name"], s["status"]) for s in payload["stages"]][4:]
    # the second grid point has the settings of the first run's gradascent: its stages are reused
    assert status == [("unlearn", "gradascent-sweep0", "ran"), ("eval", "gradascent-sweep0", "ran"),
                      ("unlearn", "gradascent-sweep1", "cached"), ("eval", "gradascent-sweep1", "cached")]
    assert payload["stages"][-1]["path"] == first["stages"][-3]["path"]  # eval/gradascent-<key>
    points = payload["sweep"]["points"]["gradascent"]
    assert [p["grid_point"] for p in points] == [{"learning_rate": 1e-4}, {"learning_rate": 1e-2}]
    expected = select_point(points, payload["rows"]["target"]["model_utility"], 0.9)
    assert [p["selected"] for p in points] == [i == expected for i in range(2)]
    assert payload["sweep"]["chosen"]["gradascent"]["learning_rate"] == points[expected]["grid_point"]["learning_rate"]
    assert payload["rows"]["gradascent"]["forget_quality"] == points[expected]["forget_quality"]
    assert "90%" in payload["selection_rule"] and "Sweep grid" in (out / "results.md").read_text()


def test_validity_check_stops_when_the_target_did_not_learn(bench, tmp_path):
    out = tmp_path / "weak"
    with single_thread(), pytest.raises(BenchValidityError, match=r"forget_prob_gap.*--finetune_epochs"):
        run(config(bench, out, finetune_learning_rate=1e-9, finetune_epochs=1))
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    assert [(s["stage"], s["name"], s["status"]) for s in stages] == [
        ("finetune", "target", "ran"), ("finetune", "retain", "ran"), ("eval", "retain", "ran"), ("eval", "target", "ran")]
    assert not (out / "unlearn").exists()


def test_fine_tuning_data_is_the_shared_encoding_and_sft_trainer_masks_prompts(bench, tmp_path):
    from trl import SFTConfig, SFTTrainer

    from trl_unlearn.evaluation.prompts import encode_example
    from trl_unlearn.testing import make_model
    from trl_unlearn.tofu_bench.stages import sft_dataset

    tokenizer = bench["tokenizer"]
    cfg = config(bench, tmp_path / "unused")
    rows = select_rows(cfg).forget_rows[:3]
    dataset = sft_dataset(rows, tokenizer, cfg)
    trainer = SFTTrainer(model=make_model(tokenizer), train_dataset=dataset, processing_class=tokenizer,
                         args=SFTConfig(output_dir=str(tmp_path / "sft"), completion_only_loss=True, report_to="none",
                                        use_cpu=True, max_length=cfg.max_length,
                                        activation_checkpointing=False))
    for row, prepared in zip(rows, trainer.train_dataset):
        encoded = encode_example(tokenizer, row["question"], row["answer"], cfg.prompt_format())
        assert list(prepared["input_ids"]) == list(encoded.input_ids)
        assert list(prepared["labels"]) == list(encoded.labels)  # prompt masked, answer + EOS scored
    assert tokenizer.decode(encoded.prompt_ids).startswith("<|system|> you are a helpful assistant. <|end|> <|user|>")


def test_select_point_prefers_forget_quality_within_the_utility_floor():
    points = [{"forget_quality": 0.9, "model_utility": 0.3}, {"forget_quality": 0.2, "model_utility": 0.5},
              {"forget_quality": 0.4, "model_utility": 0.46}, {"forget_quality": 0.4, "model_utility": 0.48}]
    assert select_point(points, target_utility=0.5, utility_floor=0.9) == 3  # 0.9 kept too little utility
    assert select_point(points[:1] + [{"forget_quality": 0.1, "model_utility": None}], 0.5, 0.9) == 0  # none qualify


def test_bad_options_are_named(bench, tmp_path):
    with pytest.raises(ValueError, match="unknown method.*npo"):
        config(bench, tmp_path, methods=["sgd"])
    with pytest.raises(ValueError, match="--authors must be 'all' or a number"):
        config(bench, tmp_path, authors="many")
    with pytest.raises(ValueError, match="--method_settings is not valid JSON"):
        config(bench, tmp_path, method_settings="{npo: 1}")
    with pytest.raises(ValueError, match="forget01 has 2 author"):
        select_rows(config(bench, tmp_path, forget_authors=3))
    with pytest.raises(ValueError, match="need more authors than the 2 forget"):
        select_rows(config(bench, tmp_path, authors="2"))
    with pytest.raises(ValueError, match="unknown setting.*betta"):  # before any stage runs
        run(config(bench, tmp_path / "x", methods=["npo"], method_settings=json.dumps({"npo": {"betta": 1}})))
    assert not (tmp_path / "x" / "finetune").exists()


def test_forced_rerun_reproduces_the_numbers(first_run, bench, tmp_path):
    _, first = first_run
    with single_thread():
        again = run(config(bench, tmp_path / "again", methods=["npo"], force=True))
    assert {s["status"] for s in again["stages"]} == {"ran"}
    for name in ("target", "retain", "npo"):
        for key in REQUIRED[:-1]:  # every metric but the wall time
            assert again["rows"][name][key] == first["rows"][name][key], (name, key)


def test_mia_metrics_and_privleak_with_holdout_data(first_run, bench):
    out, _ = first_run
    with single_thread():
        payload = run(config(bench, out, methods=["gradascent"], mia=True))
    ran = {(s["stage"], s["name"]) for s in payload["stages"] if s["status"] == "ran"}
    assert ran == {("eval", "retain"), ("eval", "target"), ("eval", "gradascent")}  # only the evaluations changed
    assert payload["settings"]["data"]["eval_rows"]["holdout01"] == 8
    rows = payload["rows"]
    assert rows["retain"]["privleak"] == pytest.approx(0.0)  # the retain model is its own reference
    for name in ("target", "gradascent"):
        assert 0 <= rows[name]["mia_min_k"] <= 1 and "mia_gradnorm" in rows[name]
    assert rows["target"]["mia_loss"] > rows["retain"]["mia_loss"]  # the target saw the forget rows


def test_every_method_of_the_package_is_accepted(bench, tmp_path):
    from trl_unlearn.tofu_bench.cache import StageCache
    from trl_unlearn.tofu_bench.plan import Plan
    from trl_unlearn.trainer import METHODS

    # the committed settings of every method build a valid config before anything runs
    cfg = config(bench, tmp_path / "all", methods=list(METHODS))
    plan = Plan(cfg, select_rows(cfg), StageCache(tmp_path / "all"), "digest")
    assert [r.method for r in plan.runs] == list(METHODS)
    # a setting a method needs, made invalid, fails at planning time with the method named
    with pytest.raises(ValueError, match="pdu: .*retain_loss_eps"):
        bad = config(bench, tmp_path / "bad", methods=["pdu"], method_settings=json.dumps({"pdu": {"retain_loss_eps": None}}))
        Plan(bad, select_rows(bad), StageCache(tmp_path / "bad"), "digest")


def test_altpo_and_pdu_run_in_the_bench(first_run, bench):
    # same output folder: the fine-tunes and their evaluations come from the cache
    out, _ = first_run
    with single_thread():
        payload = run(config(bench, out, methods=["altpo", "pdu"], method_settings=json.dumps(
            {"all": {"learning_rate": 1e-2, "num_train_epochs": 2, "warmup_epochs": 0}, "pdu": {"retain_loss_eps": 5.0}})))
    status = {(s["stage"], s["name"]): s["status"] for s in payload["stages"]}
    assert status[("finetune", "target")] == "cached" and status[("unlearn", "altpo")] == "ran"
    rows = payload["rows"]
    for method in ("altpo", "pdu"):
        assert rows[method]["forget_Q_A_Prob"] < rows["target"]["forget_Q_A_Prob"], method
