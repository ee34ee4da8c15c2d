"""Shared builders for trainer tests (tiny offline models, varied-length QA data)."""

from __future__ import annotations

import tempfile

from datasets import Dataset

from trl_unlearn.testing import make_model, make_tokenizer

from trl_unlearn.testing import forget_qa_rows as qa_rows  # noqa: E402,F401
from trl_unlearn.testing import retain_qa_rows as retain_rows  # noqa: E402,F401


def make_setup(n_forget: int = 8, n_retain: int = 12, seed: int = 0):
    forget, retain = qa_rows(n_forget), retain_rows(n_retain)
    tok = make_tokenizer([r["question"] + " " + r["answer"] for r in forget + retain])
    return tok, make_model(tok, seed=seed), Dataset.from_list(forget), Dataset.from_list(retain)


def config_kwargs(**overrides):
    kwargs = dict(
        output_dir=tempfile.mkdtemp(prefix="trl-unlearn-test-"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        num_train_epochs=1,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        activation_checkpointing=False,
        learning_rate=1e-3,
        warmup_epochs=0,
        lr_scheduler_type="constant",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_pin_memory=False,
    )
    kwargs.update(overrides)
    return kwargs


def free_port() -> int:
    """A TCP port nothing listens on now, for a multi-process test's rendezvous (a fixed port
    fails when a previous run's socket still holds it or another suite runs beside this one)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
