"""The stages of one ``tofu-bench`` run, planned before anything runs.

Every stage's specification (its settings and the keys of the stages it reads) is known from the
options and the data alone, so the whole plan, with each stage's cache key and folder and whether
it is already cached, exists before the first stage starts: progress lines can count the stages
still to run, and a bad setting fails before hours of training.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import StageCache
from .data import TOFU_SOURCE, BenchData, rows_digest
from .settings import ALTERNATES_PER_QUESTION
from .stages import base_model_id, check_settings, validate_settings


@dataclass(frozen=True)
class UnlearnRun:
    """One unlearning run: a method with its settings (one grid point of a sweep)."""

    name: str  # "npo", or "npo-sweep2" in a sweep
    method: str
    settings: dict[str, Any]
    grid_point: dict[str, Any]


class Plan:
    """Specs, cache keys and folders of every stage of a run.

    Stages are addressed as ``(kind, name)``: kind ``finetune`` / ``eval`` / ``unlearn``, name
    ``target``, ``retain`` or an :class:`UnlearnRun` name. Folders are prefixed by the model
    (``target``, ``retain``, the method), so a sweep point with the committed settings shares
    the default run's folders.
    """

    def __init__(self, config, data: BenchData, cache: StageCache, eval_digest: str):
        self.cache = cache
        common = {"base_model": base_model_id(config), "data": config.data_dir or TOFU_SOURCE, "seed": config.seed,
                  "bf16": config.bf16, "max_length": config.max_length, "system_prompt": config.system_prompt or None,
                  "chat_template_kwargs": config.chat_template_kwargs}
        finetune = {k: getattr(config, k) for k in (
            "finetune_learning_rate", "finetune_epochs", "finetune_batch_size", "finetune_gradient_accumulation_steps",
            "finetune_weight_decay", "finetune_warmup_epochs")}
        evaluation = {"forget_split": config.forget_split, "eval_rows": eval_digest, "mia": config.mia,
                      "attention_mask_mode": config.attention_mask_mode,
                      "eval_batch_size": config.eval_batch_size, "max_new_tokens": config.max_new_tokens,
                      "system_prompt": config.system_prompt or None, "chat_template_kwargs": config.chat_template_kwargs}
        forget_digest = rows_digest(data.eval_rows[f"{config.forget_split}_perturbed"])
        self.prefix = {"target": "target", "retain": "retain"}
        self.specs: dict[tuple[str, str], dict[str, Any]] = {
            ("finetune", "target"): {**common, **finetune, "rows": rows_digest(data.target_rows)},
            ("finetune", "retain"): {**common, **finetune, "rows": rows_digest(data.retain_rows)},
        }
        for name in ("retain", "target"):
            self.specs["eval", name] = {**evaluation, "model": self.key("finetune", name)}
        self.grid = config.grid() if config.sweep else {}
        self.runs: list[UnlearnRun] = []
        for method in config.methods:
            points = [dict(zip(self.grid, v)) for v in itertools.product(*self.grid.values())] if self.grid else [{}]
            for i, point in enumerate(points):
                run = UnlearnRun(f"{method}-sweep{i}" if self.grid else method, method,
                                 {**config.settings_for(method), **point}, point)
                check_settings(method, run.settings)
                validate_settings(config, method, run.settings)
                self.runs.append(run)
                self.prefix[run.name] = method
                self.specs["unlearn", run.name] = {
                    **common, "method": method, "settings": run.settings, "target": self.key("finetune", "target"),
                    "forget": rows_digest(data.forget_rows), "retain": rows_digest(data.retain_rows),
                    "unlearn_batch_size": config.unlearn_batch_size,
                    "unlearn_gradient_accumulation_steps": config.unlearn_gradient_accumulation_steps,
                    # the curve scores the forget rows only, against the retain model's forget truth ratios
                    "curve_points": config.curve_points, "curve_reference": self.key("finetune", "retain"),
                    "curve_ends": "from the evaluation stages",
                    **({"alternates_per_question": ALTERNATES_PER_QUESTION[method]}
                       if method in ALTERNATES_PER_QUESTION else {}),
                    "curve_eval": {"forget_rows": forget_digest, "eval_batch_size": config.eval_batch_size,
                                   "attention_mask_mode": config.attention_mask_mode},
                }
                self.specs["eval", run.name] = {**evaluation, "model": self.key("unlearn", run.name)}
        self.order = [("finetune", "target"), ("finetune", "retain"), ("eval", "retain"), ("eval", "target")]
        self.order += [(kind, run.name) for run in self.runs for kind in ("unlearn", "eval")]

    def key(self, kind: str, name: str) -> str:
        return self.cache.path(kind, self.prefix[name], self.specs[kind, name])[1]

    def folder(self, kind: str, name: str) -> Path:
        return self.cache.path(kind, self.prefix[name], self.specs[kind, name])[0]

    def cached(self) -> list[tuple[str, bool]]:
        """``(kind, already cached)`` of every stage, in order."""
        return [(kind, self.cache.is_cached(kind, self.prefix[name], self.specs[kind, name]))
                for kind, name in self.order]

    def run_stage(self, kind: str, name: str, fn):
        """Run (or read from the cache) one stage; see :meth:`StageCache.run`."""
        return self.cache.run(kind, self.prefix[name], self.specs[kind, name], fn, label=name)
