"""Shared builders for trainer tests (tiny offline models, varied-length QA data)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

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


REPO = Path(__file__).resolve().parents[1]


def _killed_by_a_signal(stderr: str) -> bool:
    """Whether torchrun's "Root Cause" (its first observed failure) is a worker killed by a signal
    (negative exit code, no Python error), as opposed to a Python exception in a worker."""
    root = stderr.rsplit("Root Cause", 1)[-1] if "Root Cause" in stderr else ""
    return re.search(r"exitcode\s*:\s*-\d+", root) is not None


def run_distributed(script, *args, nproc: int = 2, launcher: str = "torchrun", timeout: int = 600):
    """Run ``script args`` in ``nproc`` CPU processes (gloo) and return the finished process.

    ``nproc=1`` runs the script as a plain process, no launcher (the single-process side of a
    comparison). A multi-process launch uses a fresh rendezvous port. On a saturated 2-core machine a gloo worker has, now and
    then, died by a signal (SIGABRT, no Python traceback); one fresh launch is allowed for that case
    only. Any other failure, or a second one, raises with the tail of both output streams, so the
    workers' own tracebacks are in the test report.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for attempt in (1, 2):
        port = str(free_port())
        if nproc == 1:
            head = []
        elif launcher == "torchrun":
            head = ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", port]
        else:  # accelerate launch, as a user runs it
            head = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(nproc),
                    "--main_process_port", port, "--num_machines", "1", "--mixed_precision", "no",
                    "--dynamo_backend", "no"]  # fmt: skip
        cmd = [sys.executable, *head, str(script), *map(str, args)]
        done = subprocess.run(cmd, env=env, timeout=timeout, capture_output=True, text=True)
        if done.returncode == 0 or not _killed_by_a_signal(done.stderr):
            break
    assert done.returncode == 0, (
        f"{nproc}-process run failed (attempt {attempt}, exit {done.returncode}):\n"
        f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-12000:]}"
    )
    return done


def finish_distributed() -> None:
    """End a multi-process test script cleanly: every rank waits for the others, then the process
    group is destroyed, so no rank exits while another still talks to it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
