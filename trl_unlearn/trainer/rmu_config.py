from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .unlearning_config import UnlearningConfig


@dataclass
class RMUConfig(UnlearningConfig):
    r"""
    Configuration for `RMUTrainer` (representation misdirection for unlearning, Li et al., arXiv 2403.03218).

    The output activations of one module (`module_regex`) on forget completions are pushed towards
    a fixed random direction ``c·u/‖u‖`` (``u`` uniform in ``[0, 1)^d``, ``c`` = `steering_coeff`);
    on retain completions they are kept close to the frozen model's activations at the same module
    (``retain_loss_type="embed_diff"``). Both terms are per-example means over completion positions
    of the mean squared difference over the hidden dimension, averaged over examples. Only the
    parameters whose names match `trainable_params_regex` are trained.

    Parameters
    ----------
    module_regex : str, defaults to ``"model\\.layers\\.7"``
        Regular expression matching exactly one module name (full match, names of the model
        without any PEFT wrapper, e.g. ``model.layers.7``).
    steering_coeff : float, defaults to 2.0
        Norm ``c`` of the steering vector.
    trainable_params_regex : list of str, defaults to ``[".*"]``
        Parameter-name patterns (full match, names without any PEFT wrapper) that train; every
        other parameter is frozen. With LoRA the patterns select among the adapter weights.
    retain_loss_type : str, defaults to "embed_diff"
        ``"embed_diff"`` (activation MSE to the frozen model at the same module), ``"nll"``,
        ``"kl"`` or ``"none"``.

    Notes
    -----
    Defaults follow open-unlearning's RMU configuration: layer 7, ``steering_coeff=2``, all
    parameters trainable, γ = 1, α = 1, ``embed_diff`` retain loss. The WMDP recipe of the RMU paper
    trains only ``model\.layers\.(5|6|7)\.mlp\.down_proj\.weight`` (open-unlearning's WMDP
    experiment: learning rate 5e-5, constant schedule, 80 steps of 16 examples). The steering
    vector is drawn from `seed`.
    """

    _retain_loss_types: ClassVar[tuple[str, ...]] = ("embed_diff", "nll", "kl", "none")

    module_regex: str = field(
        default=r"model\.layers\.7",
        metadata={"help": "Regex (full match) naming the one module whose output activations are steered."},
    )
    steering_coeff: float = field(default=2.0, metadata={"help": "Norm of the random steering vector."})
    trainable_params_regex: list[str] = field(
        default_factory=lambda: [".*"],
        metadata={"help": "Regexes (full match) of the parameter names that train; all others are frozen."},
    )
    retain_loss_type: str = field(
        default="embed_diff",
        metadata={"help": "Retain loss: 'embed_diff' (activation MSE to the frozen model), 'nll', 'kl' or 'none'.",
                  "choices": ["embed_diff", "nll", "kl", "none"]},
    )

    def __post_init__(self):
        import re

        if self.steering_coeff <= 0:
            raise ValueError(f"`steering_coeff` must be positive, got {self.steering_coeff}.")
        if isinstance(self.trainable_params_regex, str):
            self.trainable_params_regex = [self.trainable_params_regex]
        if not self.trainable_params_regex:
            raise ValueError("`trainable_params_regex` is empty: no parameter would train.")
        for pattern in [self.module_regex, *self.trainable_params_regex]:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"Invalid regular expression {pattern!r}: {err}.") from err
        super().__post_init__()
