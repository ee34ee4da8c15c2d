from __future__ import annotations

import re

import torch
from accelerate.utils import is_peft_model

from .. import losses
from . import _papers
from .rmu_config import RMUConfig
from .unlearning_trainer import ForgetTerm, UnlearningTrainer


def _base_model(model):
    """The model without a PEFT wrapper (its parameter and module names are the plain model's)."""
    return model.get_base_model() if is_peft_model(model) else model


def find_module(model, module_regex: str):
    """The single module of ``model`` (PEFT wrapper removed) whose name fully matches ``module_regex``.

    Raises
    ------
    ValueError
        When no module or more than one matches; the message shows a few names to choose from.
    """
    named = list(_base_model(model).named_modules())
    matched = [(name, module) for name, module in named if re.fullmatch(module_regex, name)]
    if len(matched) == 1:
        return matched[0][1]
    if not matched:
        layers = [name for name, _ in named if re.fullmatch(r".*layers\.\d+", name)][:4]
        raise ValueError(f"RMU's `module_regex`={module_regex!r} matches no module of the model. Decoder layers are "
                         f"named like {layers or [name for name, _ in named][:4]}.")
    raise ValueError(f"RMU's `module_regex`={module_regex!r} matches {len(matched)} modules "
                     f"({[name for name, _ in matched][:5]}...); it must name exactly one.")


class RMUTrainer(UnlearningTrainer):
    r"""
    Representation misdirection for unlearning, RMU ([Li et al., 2024](https://arxiv.org/abs/2403.03218)).

    With ``h(x)`` the output activations of the module named by `module_regex`, the forget loss is
    ``mean_examples mean_{t ∈ completion} mean_d (h_t,d − c·u_d)²`` with the fixed steering vector
    ``c·u`` (:attr:`steering_vector`), and the ``embed_diff`` retain loss the same distance between
    the model's and the frozen reference's activations on retain completions. Only parameters
    matching `trainable_params_regex` train (the others are frozen before the optimizer is built).

    The frozen reference is a copy of the model, an explicit `ref_model`, or, with a LoRA
    `peft_config`, the model with its adapter disabled (no second copy). Precomputed log-probs
    cannot replace it (the retain loss needs activations); with ``retain_loss_type="nll"`` or
    ``"none"`` RMU holds no reference at all.

    Attributes
    ----------
    steering_vector : torch.Tensor
        ``[dim]`` the random direction (uniform in ``[0, 1)^d`` drawn from `seed`, scaled to norm
        `steering_coeff`), fixed for the run, saved in every checkpoint and restored on resume.
    """

    config_class = RMUConfig
    _name = "RMU"
    _paper = _papers.RMU
    forget_reference = "none"

    def __init__(self, model, args: RMUConfig | None = None, *rest, **kwargs):
        if isinstance(args, RMUConfig) and args.precompute_ref_log_probs and args.retain_loss_type in ("embed_diff", "kl"):
            raise ValueError(
                f"`precompute_ref_log_probs=True` stores sequence log-probs only, but RMU's {args.retain_loss_type!r} "
                "retain loss needs the frozen model's activations. Use a LoRA `peft_config` (adapter-disabled reference, "
                "no second copy), an explicit `ref_model`, or turn precomputation off."
            )
        self.steering_vector = None
        super().__init__(model, args, *rest, **kwargs)
        self._freeze_untrainable()
        find_module(self.model, self.args.module_regex)  # fails early with a readable message
        hidden = getattr(_base_model(self.model).config.get_text_config(), "hidden_size", None)
        if self.steering_vector is None and hidden is not None:
            self.steering_vector = self._new_steering_vector(hidden)

    def _needs_reference(self, args):
        needs, live = super()._needs_reference(args)
        embed = args.uses_retain and args.retain_loss_type == "embed_diff"
        return needs or embed, live or embed

    @property
    def retain_reduction(self) -> str:
        # activation distances are per-example means (as open-unlearning and the RMU code average them)
        return "examples" if self.args.retain_loss_type == "embed_diff" else "tokens"

    def _freeze_untrainable(self) -> None:
        patterns = self.args.trainable_params_regex
        trainable = 0
        for name, param in _base_model(self.model).named_parameters():
            if not param.requires_grad:
                continue
            if any(re.fullmatch(pattern, name) for pattern in patterns):
                trainable += 1
            else:
                param.requires_grad_(False)
        if not trainable:
            raise ValueError(
                f"No trainable parameter matches `trainable_params_regex`={patterns} (names are matched in full, "
                "without the PEFT wrapper, e.g. 'model.layers.7.mlp.down_proj.weight')."
            )

    def _new_steering_vector(self, dim: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(self.args.seed))
        direction = torch.rand(dim, generator=generator)
        return direction / direction.norm() * self.args.steering_coeff

    def _steering(self, activations: torch.Tensor) -> torch.Tensor:
        dim = activations.shape[-1]
        if self.steering_vector is None or self.steering_vector.shape[-1] != dim:
            if getattr(self, "_steering_loaded", False):
                raise ValueError(f"The checkpoint's steering vector has {self.steering_vector.shape[-1]} dimensions, "
                                 f"but the module's activations have {dim}.")
            self.steering_vector = self._new_steering_vector(dim)
        return self.steering_vector.to(device=activations.device, dtype=activations.dtype)

    def module_activations(self, model, inputs, part: str) -> torch.Tensor:
        """Output activations of the `module_regex` module for the ``part`` sequences (``[batch, length, dim]``)."""
        module = find_module(self.accelerator.unwrap_model(model), self.args.module_regex)
        captured = []

        def hook(_module, _inputs, output):
            captured.append(output[0] if isinstance(output, (tuple, list)) else output)

        handle = module.register_forward_hook(hook)
        try:
            model(input_ids=inputs[f"{part}_input_ids"], attention_mask=inputs[f"{part}_attention_mask"], use_cache=False)
        finally:
            handle.remove()
        return captured[0]

    def compute_forget_term(self, model, inputs) -> ForgetTerm:
        activations = self.module_activations(model, inputs, "forget")
        mask = inputs["forget_labels"] != -100
        values = losses.activation_mse(activations, self._steering(activations), mask)
        norms = (activations.detach().float().norm(dim=-1) * mask).sum() / mask.sum().clamp(min=1)
        return ForgetTerm(values=values, reduction="examples", metrics={"rmu/forget_activation_norm": norms})

    def compute_retain_values(self, model, inputs) -> torch.Tensor:
        if self.args.retain_loss_type != "embed_diff":
            return super().compute_retain_values(model, inputs)
        activations = self.module_activations(model, inputs, "retain")
        with torch.no_grad(), self.reference_model(model) as reference:
            frozen = self.module_activations(reference, inputs, "retain")
        return losses.activation_mse(activations, frozen.to(activations.device), inputs["retain_labels"] != -100)

    def method_state(self):
        return {} if self.steering_vector is None else {"steering_vector": self.steering_vector.detach().cpu()}

    def load_method_state(self, state) -> None:
        if "steering_vector" in state:
            self.steering_vector = state["steering_vector"].float()
            self._steering_loaded = True
