"""trl-unlearn: LLM unlearning for the Hugging Face TRL ecosystem."""

__version__ = "0.1.0.dev0"
