"""Step time and per-process memory of sharded (FSDP2) and data-parallel training on CPU, against one process.

For each method (NPO, and optionally DiPO, both with their default frozen reference copy) three
configurations train the same randomly initialised Llama on the same global batch of ``--batch``
forget + ``--batch`` retain rows a step:

- ``1proc``: one process, batch ``B``;
- ``ddp2``: two processes (gloo), plain data parallel: each holds the whole policy, its optimizer
  state and the whole reference copy, and trains on ``B/2`` rows;
- ``fsdp2``: two processes (gloo), FSDP2 full shard: the policy, its optimizer state and the
  reference copy are each split between the processes, batch ``B/2`` each. Accelerate ignores FSDP
  on CPU; :func:`trl_unlearn.testing.enable_fsdp_on_cpu` turns it on as in ``tests/test_sharding.py``.

Each configuration runs in its own subprocess (``torch.distributed.run`` on a free port for two
processes) and uses ``--threads`` CPU threads in all, split between its processes. Reported per
configuration, as the maximum over its processes:

- ``step_s``: mean wall time of the ``--steps`` timed optimizer steps, after two warm-up steps;
- ``peak_rss_growth_mb``: peak RSS above the RSS once the (whole, unsharded) model and the data
  are loaded. The frozen copy is made whole before it is sharded, so this peak includes it;
- ``model_bytes_per_process``: bytes of the parameters, the AdamW state and the reference copy
  this process holds while training (a DTensor counts its local shard only): the memory that
  sharding saves per process is its difference from ``1proc`` / ``ddp2``.

    python benchmarks/bench_sharding.py [--hidden 512 --layers 4 --vocab 16000 --batch 8 --length 128 --steps 4]
        [--methods npo dipo] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from bench_trainers import _build, _data, _rss_mb, run_metadata

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

CONFIGS = ["1proc", "ddp2", "fsdp2"]
#: training arguments of each configuration beyond the common ones
DISTRIBUTED = {
    "1proc": {},
    "ddp2": {"ddp_backend": "gloo"},
    "fsdp2": {"ddp_backend": "gloo", "fsdp": True,
              "fsdp_config": {"version": 2, "state_dict_type": "FULL_STATE_DICT", "reshard_after_forward": True}},
}


def _local_bytes(tensors) -> int:
    """Bytes of ``tensors`` held by this process: a DTensor (FSDP2) counts its local shard only."""
    local = [t.to_local() if hasattr(t, "to_local") else t for t in tensors]
    return sum(t.numel() * t.element_size() for t in local)


def worker(a) -> dict:
    """Train ``a.method`` for ``a.steps + 2`` steps in this process of ``a.config``; its measurements."""
    import torch
    from transformers import TrainerCallback

    from trl_unlearn.testing import enable_fsdp_on_cpu, make_tokenizer
    from trl_unlearn.trainer import METHODS

    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, a.threads // world))
    if a.config == "fsdp2":
        enable_fsdp_on_cpu()
    model = _build(a)
    n_examples = a.batch * (a.steps + 2)
    forget, retain = (_data(a, n_examples, seed).remove_columns("alternate_completion_ids") for seed in (0, 1))
    base_rss = _rss_mb()
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    trainer_cls, config_cls = METHODS[a.method]
    args = config_cls(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=a.batch // world,
                      max_steps=a.steps + 2, report_to=[], save_strategy="no", activation_checkpointing=False,
                      disable_tqdm=True, logging_steps=1000, max_length=None, dataloader_pin_memory=False,
                      bf16=False, use_cpu=True, **DISTRIBUTED[a.config])
    trainer = trainer_cls(model, args, forget_dataset=forget, retain_dataset=retain,
                          processing_class=make_tokenizer([]), callbacks=[Timer()])
    trainer.train()
    state = [v for s in trainer.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    held = {"params_bytes": _local_bytes(trainer.model.parameters()), "optimizer_bytes": _local_bytes(state),
            "reference_bytes": _local_bytes(trainer.ref_model.parameters()) if trainer.ref_model is not None else 0}
    steady = times[2:]
    return {"rank": int(os.environ.get("RANK", "0")), "processes": world, "reference_mode": trainer.reference_mode,
            "distributed_type": str(trainer.accelerator.distributed_type), "step_s": sum(steady) / len(steady),
            "steps_s": times, "peak_rss_growth_mb": _rss_mb() - base_rss, **held,
            "model_bytes_per_process": sum(held.values())}


def _free_port() -> int:
    """A TCP port nothing listens on now, for the two processes' rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_config(a, method: str, config: str) -> dict:
    """Run ``config`` in its own subprocess(es); the maximum over its processes, with every process's record."""
    n = 1 if config == "1proc" else 2
    script = [__file__, f"--worker={method}:{config}",
              *(f"--{k}={getattr(a, k)}" for k in ("hidden", "layers", "vocab", "batch", "length", "steps", "threads"))]
    launcher = [] if n == 1 else ["-m", "torch.distributed.run", f"--nproc_per_node={n}",
                                  f"--master_port={_free_port()}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, a.threads // n)), "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, *launcher, *script], capture_output=True, text=True, env=env)
    ranks = sorted((json.loads(ln[7:]) for ln in out.stdout.splitlines() if ln.startswith("RESULT ")),
                   key=lambda r: r["rank"])
    if out.returncode or len(ranks) != n:
        print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{method} {config} failed")
    keys = ("step_s", "peak_rss_growth_mb", "model_bytes_per_process", "params_bytes", "optimizer_bytes",
            "reference_bytes")
    return {"method": method, "config": config, "processes": n, "reference_mode": ranks[0]["reference_mode"],
            "distributed_type": ranks[0]["distributed_type"], **{k: max(r[k] for r in ranks) for k in keys},
            "ranks": ranks}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=16000)
    parser.add_argument("--batch", type=int, default=8, help="global batch (forget and retain rows each); even")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="CPU threads per configuration, in all (at least one per process)")
    parser.add_argument("--methods", nargs="+", default=["npo"], choices=["npo", "dipo"])
    parser.add_argument("--configs", nargs="+", default=CONFIGS, choices=CONFIGS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # METHOD:CONFIG, in a worker process
    parser.add_argument("--json", help="also write the results to this file")
    a = parser.parse_args()
    if a.batch % 2:
        parser.error("--batch must be even (it is split between two processes)")
    if a.worker:
        a.method, a.config = a.worker.split(":")
        sys.stdout.write("RESULT " + json.dumps(worker(a)) + "\n")  # one write: the ranks' lines do not interleave
        return
    meta = run_metadata(__file__, dict(zip(("hidden", "layers", "vocab", "batch", "length", "steps", "threads"),
                                           (a.hidden, a.layers, a.vocab, a.batch, a.length, a.steps, a.threads))))
    results = {}
    for method in a.methods:
        for config in a.configs:
            r = results[f"{method}_{config}"] = run_config(a, method, config)
            print(f"{method:>5} {config:>6}: {r['step_s'] * 1000:8.1f} ms/step  peak RSS growth "
                  f"{r['peak_rss_growth_mb']:8.1f} MiB  params+optimizer+reference "
                  f"{r['model_bytes_per_process'] / 2**20:8.1f} MiB per process", flush=True)
    print(f"\nratios vs 1proc (cpu, threads per configuration: {a.threads}, model hidden={a.hidden} layers={a.layers} "
          f"vocab={a.vocab}, global batch {a.batch} + {a.batch} x {a.length} tokens):")
    for key, r in results.items():
        base = results.get(f"{r['method']}_1proc")
        if base and r is not base:
            saved = (base["model_bytes_per_process"] - r["model_bytes_per_process"]) / 2**20
            print(f"{r['method']:>5} {r['config']:>6}: time x{r['step_s'] / base['step_s']:.2f}   peak RSS growth "
                  f"x{r['peak_rss_growth_mb'] / base['peak_rss_growth_mb']:.2f}   model bytes per process "
                  f"x{r['model_bytes_per_process'] / base['model_bytes_per_process']:.2f} ({saved:.1f} MiB saved)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
