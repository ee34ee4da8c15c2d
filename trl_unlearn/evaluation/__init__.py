"""Evaluation for the TOFU and MUSE unlearning benchmarks."""
