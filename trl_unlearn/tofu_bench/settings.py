"""The committed per-method settings of ``trl-unlearn tofu-bench`` and its default tuning grid.

Every method gets the same tuning budget (:data:`DEFAULT_SWEEP_GRID`, run with ``--sweep``) and
is scored by one rule fixed before any run (:func:`selection_rule_text`); the values it selects
are committed in :data:`SELECTED_SETTINGS`, which the default run uses.

The learning rates of the five default methods were selected by ``trl-unlearn tofu-bench --sweep``
on the CPU default (SmolLM2-135M-Instruct, TOFU forget01, 6 authors; every point in
``benchmarks/results/tofu-bench-smollm2-sweep.json``). DiPO's β, top-k and strength were then
selected by the same rule from one-at-a-time grids at its selected learning rate
(``benchmarks/results/tofu-bench-smollm2-dipo.json``). The other methods' own hyper-parameters
(β, α, γ) are open-unlearning's defaults, not swept, and the other nine methods run with
open-unlearning's defaults (:data:`SETTINGS_STATUS` says so in every ``results.json``).
"""

from __future__ import annotations

from typing import Any

#: State of :data:`SELECTED_SETTINGS`, reported in ``results.json`` (``settings.selected_settings_status``).
SETTINGS_STATUS = ("npo, dipo, gradascent, graddiff, simnpo: learning rate selected by --sweep on the CPU default "
                   "(SmolLM2-135M-Instruct, forget01, 6 authors); dipo beta 0.05, top_k 20, strength 1 selected by "
                   "one-at-a-time grids at its selected learning rate; other settings and methods: open-unlearning's defaults")

#: Settings shared by every method unless the method's entry overrides them (OU's TOFU unlearning
#: recipe: AdamW, weight decay 0.01, linear warm-up for the first epoch then linear decay).
COMMON_SETTINGS: dict[str, Any] = {
    "learning_rate": 1e-5,
    "num_train_epochs": 3.0,
    "weight_decay": 0.01,
    "lr_scheduler_type": "linear",
    "warmup_epochs": 1.0,
}

#: Per-method settings (merged over :data:`COMMON_SETTINGS`); keys are fields of the method's config.
SELECTED_SETTINGS: dict[str, dict[str, Any]] = {
    "npo": {"learning_rate": 2e-5, "beta": 0.1, "retain_loss_weight": 1.0},
    "dipo": {"learning_rate": 1e-4, "beta": 0.05, "top_k": 20, "strength": 1.0, "retain_loss_weight": 1.0},
    "gradascent": {"learning_rate": 1e-4},
    "graddiff": {"learning_rate": 1e-4, "retain_loss_weight": 1.0},
    "simnpo": {"learning_rate": 2e-5, "beta": 4.5, "delta": 0.0, "forget_loss_weight": 0.125, "retain_loss_weight": 1.0},
    # the other methods run with their configs' defaults (open-unlearning's); PDU needs its ε
    "idkdpo": {},
    "altpo": {},
    "idknll": {},
    "undial": {},
    "wga": {},
    "satimp": {},
    "ceu": {},
    "rmu": {},
    "pdu": {"retain_loss_eps": 1.0},
}

#: Methods whose forget rows need sampled alternate answers (``alternate`` column), and how many
#: per question: open-unlearning's AltPO recipe samples 5 at temperature 1 with the target model.
ALTERNATES_PER_QUESTION: dict[str, int] = {"altpo": 5}

#: The tuning grid of ``--sweep`` (the same for every method): two learning rates, 5x apart, for the
#: 3 epochs of :data:`COMMON_SETTINGS` (15 optimizer steps on the CPU default's 40 forget rows).
DEFAULT_SWEEP_GRID: dict[str, list[Any]] = {
    "learning_rate": [2e-5, 1e-4],
}


def selection_rule_text(utility_floor: float) -> str:
    """The sweep's selection rule, stated in words (written to ``results.json`` and ``results.md``)."""
    return (
        f"per method, the grid point with the highest forget_quality among those whose model_utility is at least "
        f"{utility_floor:.0%} of the target model's; ties go to the higher model_utility; when no point keeps that "
        "much utility, the point with the highest model_utility (flagged rule_met=false)"
    )


def select_point(points: list[dict[str, Any]], target_utility: float, utility_floor: float) -> int:
    """Index of the grid point the selection rule picks.

    Parameters
    ----------
    points : list of dict
        Each with ``forget_quality`` and ``model_utility`` (``None`` counts as the worst value).
    target_utility : float
        Model utility of the target (fine-tuned, not unlearned) model.
    utility_floor : float
        Fraction of ``target_utility`` a point must keep to qualify.

    Returns
    -------
    int
    """
    if not points:
        raise ValueError("the sweep produced no grid point to select from")

    def value(point, key):
        v = point.get(key)
        return float("-inf") if v is None else float(v)

    qualified = [i for i, p in enumerate(points) if value(p, "model_utility") >= utility_floor * target_utility]
    if qualified:
        return max(qualified, key=lambda i: (value(points[i], "forget_quality"), value(points[i], "model_utility")))
    return max(range(len(points)), key=lambda i: (value(points[i], "model_utility"), value(points[i], "forget_quality")))
