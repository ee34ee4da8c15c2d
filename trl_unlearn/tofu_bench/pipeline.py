"""``trl-unlearn tofu-bench``: the TOFU protocol end to end, cached stage by stage.

1. **fine-tune** the base model on the chosen authors (the *target*) and on the same authors minus
   the forget authors (the *retain model*), with TRL's ``SFTTrainer``;
2. **evaluate** both; the **validity check** stops the run when the target does not know the
   forget authors clearly better than the retain model;
3. **unlearn** the forget authors from the target with every method (committed settings, or a
   tuning grid with ``--sweep``), recording forget quality during training;
4. **evaluate** every unlearned model and **report**: ``results.json``, ``results.md``,
   ``fq_vs_mu.png``, ``fq_curves.png`` and a results table on each unlearned model's card.

Every stage is cached under ``<output_dir>/<stage>/<name>-<key>/`` (see :mod:`.cache`); a second run
with the same options only rewrites the report, one more method runs only that method, ``--force``
runs everything again. ``<output_dir>/manifest.json`` lists which stages ran and which were cached.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cache import StageCache, StageRecord
from .config import TofuBenchConfig
from .data import rows_digest, select_rows
from .plan import Plan, UnlearnRun
from .report import (
    BenchValidityError,
    format_validity,
    git_commit,
    plot_curves,
    plot_tradeoff,
    raise_if_invalid,
    results_markdown,
    summary_row,
    update_model_card,
    validity,
    versions,
)
from .settings import SETTINGS_STATUS, select_point, selection_rule_text
from .stages import (
    base_model_id,
    check_base_model,
    complete_curve,
    evaluate,
    finetune,
    read_curve,
    read_results,
    unlearn,
)

RESULTS_FILE = "results.json"
MARKDOWN_FILE = "results.md"
TRADEOFF_PLOT = "fq_vs_mu.png"
CURVES_PLOT = "fq_curves.png"


class Progress:
    """One line per stage: what runs, how far the run is, and the time left.

    The time left sums, over the stages still to run (cached ones cost nothing), the mean time of
    the stages of the same kind run so far (of any kind before one of that kind has run).
    """

    def __init__(self, plan: list[tuple[str, bool]], quiet: bool):
        self.plan = plan  # (kind, cached) per stage, in order
        self.quiet = quiet
        self.done = 0
        self.start = time.perf_counter()
        self.times: dict[str, list[float]] = {}

    def _estimate(self) -> str:
        remaining = [kind for kind, cached in self.plan[self.done :] if not cached]
        if not remaining:
            return "nothing left"
        every = [t for ts in self.times.values() for t in ts]
        if not every:
            return f"{len(remaining)} stage(s) to run, time left unknown until one has run"
        left = sum(sum(self.times[k]) / len(self.times[k]) if k in self.times else sum(every) / len(every)
                   for k in remaining)
        return f"about {_duration(left)} left"

    def begin(self, label: str) -> None:
        if not self.quiet:
            _, cached = self.plan[self.done]
            print(f"[{self.done + 1}/{len(self.plan)}] {label}" + (" (cached)" if cached else " ..."), flush=True)

    def end(self, label: str, record: StageRecord) -> None:
        kind, _ = self.plan[self.done]
        if record.status == "ran":
            self.times.setdefault(kind, []).append(record.seconds)
        self.done += 1
        if not self.quiet and record.status == "ran":
            print(f"[{self.done}/{len(self.plan)}] {label}: done in {_duration(record.seconds)}; elapsed "
                  f"{_duration(time.perf_counter() - self.start)}, {self._estimate()}", flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _describe(settings: dict[str, Any]) -> str:
    lr, epochs = settings.get("learning_rate"), settings.get("num_train_epochs")
    return f"lr {lr:g}, {epochs:g} epochs" if lr is not None and epochs is not None else ""


def run(config: TofuBenchConfig, command: str | None = None) -> dict[str, Any]:
    """Run (or complete from the cache) the whole benchmark and write its report.

    Parameters
    ----------
    config : TofuBenchConfig
        The options.
    command : str, optional
        The command line, recorded in ``results.json`` (default: the equivalent Python call).

    Returns
    -------
    dict
        The content of ``results.json`` (``rows``, ``settings``, ``validity``, ``stages``...).

    Raises
    ------
    BenchValidityError
        When the target does not know the forget authors clearly better than the retain model
        (unless ``config.check_validity`` is off); the fine-tuned models stay cached.
    """
    try:
        import matplotlib  # noqa: F401  (the report needs it: fail before hours of training, not after)
    except ImportError:
        raise SystemExit("trl-unlearn tofu-bench: the report's plots need matplotlib; pip install matplotlib "
                         "(or trl-unlearn[quickstart])") from None
    import datasets

    bars_were_off = datasets.is_progress_bar_enabled() is False
    if config.quiet:
        datasets.disable_progress_bars()
    try:
        return _run(config, command)
    finally:
        if config.quiet and not bars_were_off:
            datasets.enable_progress_bars()


def _run(config: TofuBenchConfig, command: str | None) -> dict[str, Any]:
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    check_base_model(config)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = select_rows(config)
    eval_digest = rows_digest([{"config": k, "rows": v} for k, v in sorted(data.eval_rows.items())])
    eval_dir = data.write_eval_dir(out / "data" / f"eval-{eval_digest}")
    cache = StageCache(out, force=config.force)
    plan = Plan(config, data, cache, eval_digest)
    folder = plan.folder
    progress = Progress(plan.cached(), config.quiet)
    records: dict[tuple[str, str], StageRecord] = {}

    def stage(kind: str, name: str, label: str, fn: Callable[[Path], dict[str, Any] | None]) -> StageRecord:
        progress.begin(label)
        record = plan.run_stage(kind, name, fn)
        progress.end(label, record)
        records[kind, name] = record
        return record

    # ---- stage 1: fine-tune; evaluate target and retain; validity
    started = time.perf_counter()
    commit = git_commit()  # the code that runs, read before the run (the tree may change during it)
    try:
        stage("finetune", "target", f"fine-tune target on {len(data.target_rows)} rows ({data.num_authors} authors)",
              lambda d: finetune(config, data.target_rows, d))
        stage("finetune", "retain", f"fine-tune retain model on {len(data.retain_rows)} rows "
              f"({data.num_authors - data.num_forget_authors} authors)", lambda d: finetune(config, data.retain_rows, d))
        for name in ("retain", "target"):
            stage("eval", name, f"evaluate {name}", lambda d, n=name: evaluate(config, folder("finetune", n), eval_dir, d))
        retain_results = read_results(folder("eval", "retain"))
        rows = {name: summary_row(read_results(folder("eval", name)), retain_results) for name in ("target", "retain")}
        check = validity(rows["target"], rows["retain"], config)
        if not config.quiet:
            print("validity check: " + format_validity(check) + (" -> ok" if check["passed"] else " -> FAILED"), flush=True)
        if config.check_validity:
            raise_if_invalid(check, config)

        # ---- stages 2-3: unlearn and evaluate every method (every grid point with --sweep)
        for run_ in plan.runs:
            stage("unlearn", run_.name, f"unlearn {run_.name} ({_describe(run_.settings)})",
                  lambda d, r=run_: unlearn(config, r.method, r.settings, folder("finetune", "target"), data, eval_dir,
                                            retain_results, d))
            stage("eval", run_.name, f"evaluate {run_.name}",
                  lambda d, r=run_: evaluate(config, folder("unlearn", r.name), eval_dir, d))
    finally:
        cache.write_manifest()

    # ---- stage 4: report
    def wall(name: str, model_stage: str) -> float:
        return records[model_stage, name].seconds + records["eval", name].seconds

    for name in ("target", "retain"):
        rows[name]["wall_seconds"] = wall(name, "finetune")
    summaries = {}
    for run_ in plan.runs:
        summaries[run_.name] = summary_row(read_results(folder("eval", run_.name)), retain_results)
        update_model_card(folder("unlearn", run_.name), summaries[run_.name], config.forget_split)
        summaries[run_.name].update(wall_seconds=wall(run_.name, "unlearn"), settings=run_.settings)
    chosen, sweep = _choose(config, plan, summaries, rows["target"].get("model_utility"))
    curves = {}
    for method, name in chosen.items():
        rows[method] = {**summaries[name], "model_dir": str(folder("unlearn", name).relative_to(out))}
        if config.curve_points:
            curves[method] = complete_curve(read_curve(folder("unlearn", name)), records["unlearn", name].info["steps"],
                                            rows["target"], summaries[name])
    for name in ("target", "retain"):
        rows[name]["model_dir"] = str(folder("finetune", name).relative_to(out))  # relative to output_dir
    payload = {
        "command": command or f"trl_unlearn.tofu_bench.run({config!r})",
        "commit": commit,
        "versions": versions(),
        "settings": {
            **dataclasses.asdict(config),
            "base_model": base_model_id(config),
            "data": data.describe(),
            "selected_settings": {m: summaries[n]["settings"] for m, n in chosen.items()},
            "settings_source": "tuning sweep (--sweep)" if plan.grid else "committed table trl_unlearn/tofu_bench/settings.py",
            "selected_settings_status": SETTINGS_STATUS,
        },
        "selection_rule": selection_rule_text(config.utility_floor),
        "validity": check,
        "rows": rows,
        "curves": curves,
        "stages": [r.as_dict() for r in cache.records],
        "wall_seconds_this_run": time.perf_counter() - started,
    }
    if sweep:
        payload["sweep"] = sweep
    _write_report(out, payload, config)
    return payload


def _choose(config, plan: Plan, summaries, target_utility) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Run name per method: the only run, or the grid point the selection rule picks."""
    by_method: dict[str, list[UnlearnRun]] = {}
    for run_ in plan.runs:
        by_method.setdefault(run_.method, []).append(run_)
    if not plan.grid:
        return {method: runs[0].name for method, runs in by_method.items()}, None
    chosen, points = {}, {}
    floor = config.utility_floor * (target_utility or 0.0)
    for method, runs in by_method.items():
        rows = [summaries[r.name] for r in runs]
        best = select_point(rows, target_utility or 0.0, config.utility_floor)
        chosen[method] = runs[best].name
        points[method] = [{"grid_point": r.grid_point, "forget_quality": row["forget_quality"],
                           "model_utility": row["model_utility"], "wall_seconds": row["wall_seconds"],
                           "selected": i == best, "rule_met": (row["model_utility"] or 0.0) >= floor}
                          for i, (r, row) in enumerate(zip(runs, rows))]
    wall = sum(p["wall_seconds"] for ps in points.values() for p in ps)
    return chosen, {"grid": plan.grid, "points": points, "chosen": {m: summaries[n]["settings"] for m, n in chosen.items()},
                    "wall_seconds": wall}


def _write_report(out: Path, payload: dict[str, Any], config: TofuBenchConfig) -> None:
    (out / RESULTS_FILE).write_text(json.dumps(payload, indent=2, default=str))
    (out / MARKDOWN_FILE).write_text(results_markdown(payload))
    title = f"TOFU {config.forget_split}, {payload['settings']['data']['authors']} authors"
    plot_tradeoff(payload["rows"], out / TRADEOFF_PLOT, title)
    plot_curves(payload["curves"], out / CURVES_PLOT, title)
    if not config.quiet:
        print("\n" + (out / MARKDOWN_FILE).read_text())
        print(f"Report: {out / RESULTS_FILE}, {out / MARKDOWN_FILE}, {out / TRADEOFF_PLOT}, {out / CURVES_PLOT}")


def make_parser():
    from trl import TrlParser

    return TrlParser((TofuBenchConfig,), prog="trl-unlearn tofu-bench",
                     description="Run the TOFU protocol end to end: fine-tune target and retain models, unlearn with "
                                 "every method, evaluate, report. Stages are cached; see docs/results.md.")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    (config,) = make_parser().parse_args_and_config(argv)
    try:
        run(config, command=shlex.join(["trl-unlearn", "tofu-bench", *argv]))
    except BenchValidityError as err:
        raise SystemExit(f"trl-unlearn tofu-bench: {err}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
