"""Step time and peak memory of the unlearning trainers, as ratios to a plain supervised step.

Every configuration runs in its own subprocess (so peak memory is its own) on the same
randomly initialised Llama and the same batch shape:

- ``sft``: the baseline, a bare supervised loop (forward + backward + AdamW) on the same tokens a
  method step processes: the forget batch and the retain batch (every mode below has a retain
  term), in one forward pass of ``2 × batch`` rows;
- ``npo_copy``: NPO with a frozen reference copy;
- ``npo_precomputed``: NPO with precomputed reference log-probs (no reference model);
- ``npo_lora``: NPO with LoRA, reference = adapter disabled (no second copy);
- ``dipo_copy`` / ``dipo_lora``: DiPO with the same reference modes as NPO;
- ``simnpo``: reference-free SimNPO;
- ``wga``, ``satimp``, ``ceu``, ``idknll``, ``pdu``: the reference-free open-unlearning methods;
- ``undial_copy`` / ``undial_lora``: UNDIAL (reference distributions) with a copy / LoRA;
- ``idkdpo_copy`` / ``idkdpo_precomputed`` / ``altpo_copy``: DPO with a second answer per question;
- ``rmu_copy`` / ``rmu_lora``: RMU (activation retain term) with a frozen copy / the adapter-disabled model.

Peak memory is the CUDA allocator's peak on a GPU, or the process's peak RSS above its
post-model-load RSS on CPU.

    python benchmarks/bench_trainers.py [--hidden 512 --layers 4 --vocab 16000 --batch 8 --length 128 --steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

MODES = ["sft", "npo_copy", "npo_precomputed", "npo_lora", "dipo_copy", "dipo_lora", "simnpo",
         "wga", "satimp", "ceu", "idknll", "pdu", "undial_copy", "undial_lora", "idkdpo_copy", "idkdpo_precomputed",
         "altpo_copy", "rmu_copy", "rmu_lora"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build(a):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.hidden * 4,
                         num_hidden_layers=a.layers, num_attention_heads=8, num_key_value_heads=4,
                         max_position_embeddings=2 * a.length, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    if torch.cuda.is_available():
        model = model.cuda()
    return model


def _data(a, n, seed):
    import torch
    from datasets import Dataset

    g = torch.Generator().manual_seed(seed)
    prompt_len = a.length // 4
    rows = {"prompt_ids": [], "completion_ids": [], "alternate_completion_ids": []}
    for _ in range(n):
        ids = torch.randint(10, a.vocab, (a.length,), generator=g).tolist()
        rows["prompt_ids"].append(ids[:prompt_len])
        rows["completion_ids"].append(ids[prompt_len:])
        rows["alternate_completion_ids"].append(ids[prompt_len:][::-1])  # a second answer of the same length
    return Dataset.from_dict(rows)


def run_metadata(script: str, model: dict) -> dict:
    """The command, the commit checked out now (call it before measuring: the code measured) and the
    versions, written next to a benchmark's results."""
    import platform

    import accelerate
    import torch
    import transformers

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=os.path.dirname(os.path.abspath(script)),
                            capture_output=True, text=True).stdout.strip() or None
    return {"command": " ".join(["python", f"benchmarks/{os.path.basename(script)}", *sys.argv[1:]]), "commit": commit,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "accelerate": accelerate.__version__, "python": platform.python_version()},
            "model": model}


def worker(a) -> dict:
    import torch

    from trl_unlearn.testing import make_tokenizer

    cuda = torch.cuda.is_available()
    model = _build(a)
    n_examples = a.batch * (a.steps + 2)
    forget, retain = _data(a, n_examples, 0), _data(a, n_examples, 1)
    base_rss = _rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times: list[float] = []

    if a.mode == "sft":
        from trl_unlearn.data import pad_prompt_completion

        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        for step in range(a.steps + 2):
            rows = [part[step * a.batch : (step + 1) * a.batch] for part in (forget, retain)]
            batch = pad_prompt_completion(rows[0]["prompt_ids"] + rows[1]["prompt_ids"],
                                          rows[0]["completion_ids"] + rows[1]["completion_ids"], 0)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            start = time.perf_counter()
            loss = model(**batch).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    else:
        from transformers import TrainerCallback

        class Timer(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                if cuda:
                    torch.cuda.synchronize()
                self.t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - self.t)

        method, _, ref = a.mode.partition("_")
        from trl_unlearn.trainer import METHODS

        trainer_cls, config_cls = METHODS[method]
        extra = {"pdu": {"retain_loss_eps": 1.0, "dual_warmup_epochs": 0},
                 "rmu": {"module_regex": rf"model\.layers\.{a.layers // 2}"}}.get(method, {})
        if method in ("wga", "satimp", "ceu", "idknll", "undial", "idkdpo", "altpo", "rmu", "pdu"):
            extra.setdefault("retain_loss_weight", 1.0)
            extra.setdefault("retain_loss_type", "embed_diff" if method == "rmu" else "nll")  # all with a retain term
        args = config_cls(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=a.batch, max_steps=a.steps + 2,
                          report_to=[], save_strategy="no", activation_checkpointing=False, disable_tqdm=True,
                          logging_steps=1000, precompute_ref_log_probs=(ref == "precomputed"), max_length=None,
                          dataloader_pin_memory=False, bf16=False, **extra)
        peft_config = None
        if ref == "lora":
            from peft import LoraConfig

            peft_config = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
        if method not in ("idknll", "idkdpo", "altpo"):
            forget = forget.remove_columns("alternate_completion_ids")
        retain = retain.remove_columns("alternate_completion_ids")
        trainer = trainer_cls(model, args, forget_dataset=forget, retain_dataset=retain,
                              processing_class=make_tokenizer([]), peft_config=peft_config, callbacks=[Timer()])
        trainer.train()
    steady = times[2:]
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _rss_mb() - base_rss
    return {"mode": a.mode, "step_s": sum(steady) / len(steady), "peak_mb": peak, "device": "cuda" if cuda else "cpu",
            "steps_s": times}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=16000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this file")
    a = parser.parse_args()
    if a.mode:
        print("RESULT " + json.dumps(worker(a)))
        return
    passthrough = [f"--{k}={getattr(a, k)}" for k in ("hidden", "layers", "vocab", "batch", "length", "steps")]
    meta = run_metadata(__file__, dict(zip(("hidden", "layers", "vocab", "batch", "length", "steps"),
                                           (a.hidden, a.layers, a.vocab, a.batch, a.length, a.steps))))
    results = {}
    for mode in a.modes:
        out = subprocess.run([sys.executable, __file__, f"--mode={mode}", *passthrough], capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode or not line:
            print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"mode {mode} failed")
        results[mode] = json.loads(line[0][7:])
        r = results[mode]
        print(f"{mode:>16}: {r['step_s'] * 1000:8.1f} ms/step  peak {r['peak_mb']:8.1f} MiB", flush=True)
    if "sft" in results:
        base = results["sft"]
        print(f"\nratios vs the supervised step on the same forget + retain tokens ({base['device']}, model "
              f"hidden={a.hidden} layers={a.layers} vocab={a.vocab}, batch {a.batch} + {a.batch} x {a.length} tokens):")
        for mode, r in results.items():
            print(f"{mode:>16}: time x{r['step_s'] / base['step_s']:.2f}   peak memory x{r['peak_mb'] / base['peak_mb']:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
