"""trl-unlearn: LLM unlearning for the Hugging Face TRL ecosystem."""

__version__ = "0.1.0.dev0"

_LAZY = {
    "UnlearningConfig": "trl_unlearn.trainer",
    "UnlearningTrainer": "trl_unlearn.trainer",
    "ForgetTerm": "trl_unlearn.trainer",
    "NPOConfig": "trl_unlearn.trainer",
    "NPOTrainer": "trl_unlearn.trainer",
    "DiPOConfig": "trl_unlearn.trainer",
    "DiPOTrainer": "trl_unlearn.trainer",
    "GradAscentConfig": "trl_unlearn.trainer",
    "GradAscentTrainer": "trl_unlearn.trainer",
    "GradDiffConfig": "trl_unlearn.trainer",
    "GradDiffTrainer": "trl_unlearn.trainer",
    "SimNPOConfig": "trl_unlearn.trainer",
    "SimNPOTrainer": "trl_unlearn.trainer",
    "AltPOConfig": "trl_unlearn.trainer",
    "AltPOTrainer": "trl_unlearn.trainer",
    "CEUConfig": "trl_unlearn.trainer",
    "CEUTrainer": "trl_unlearn.trainer",
    "IdkDPOConfig": "trl_unlearn.trainer",
    "IdkDPOTrainer": "trl_unlearn.trainer",
    "IdkNLLConfig": "trl_unlearn.trainer",
    "IdkNLLTrainer": "trl_unlearn.trainer",
    "PDUConfig": "trl_unlearn.trainer",
    "PDUTrainer": "trl_unlearn.trainer",
    "RMUConfig": "trl_unlearn.trainer",
    "RMUTrainer": "trl_unlearn.trainer",
    "SatImpConfig": "trl_unlearn.trainer",
    "SatImpTrainer": "trl_unlearn.trainer",
    "UNDIALConfig": "trl_unlearn.trainer",
    "UNDIALTrainer": "trl_unlearn.trainer",
    "WGAConfig": "trl_unlearn.trainer",
    "WGATrainer": "trl_unlearn.trainer",
    "generate_alternates": "trl_unlearn.alternates",
    "load_refusals": "trl_unlearn.alternates",
    "TOFUEvaluator": "trl_unlearn.evaluation.tofu_evaluator",
    "MUSEEvaluator": "trl_unlearn.evaluation.muse_evaluator",
    "UnlearningEvalCallback": "trl_unlearn.evaluation.callback",
    "push_results_to_hub": "trl_unlearn.hub",
    "publish_metric_modules": "trl_unlearn.hub",
    "ForgetRetainCollator": "trl_unlearn.data",
    "ForgetRetainDataset": "trl_unlearn.data",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    # Lazy exports keep `import trl_unlearn` light (no torch/transformers until a trainer is used).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trl_unlearn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
