"""How much NPO fits in the quick-start budget on a laptop CPU?

A deliberately plain PyTorch loop (no Trainer) on SmolLM2-135M-Instruct and the packaged
quick-start data, to pick the quick start's defaults:

1. times one forward+backward of the policy at ``batch x ~64`` tokens;
2. runs an NPO-like loop: forget loss ``-(2/beta) * logsigmoid(-beta * (logp - logp_ref))`` with
   sequence-summed log-probs, plus the mean-token NLL of a paired retain batch
   (gamma = alpha = 1), AdamW, constant learning rate. The reference log-probs of the forget set
   are computed once before training (the data and pi_ref are fixed), so a step costs one
   policy forward+backward on ``forget + retain``;
3. reports the mean answer probability (``exp(-mean token NLL)`` of ``answer + eos``, as TOFU's
   Prob) of both splits every ``--eval-every`` steps, and optionally the share of greedy answers
   that still contain the key fact before and after.

Usage::

    python benchmarks/quickstart_feasibility.py --lr 1e-5 --steps 30 --batch 8 --threads 2
    python benchmarks/quickstart_feasibility.py --timing-only

The loss and masking here are intentionally simple and self-contained; the real trainers live in
``trl_unlearn.trainer``.
"""

from __future__ import annotations

import argparse
import random
import time

import torch
import torch.nn.functional as F


def encode(tokenizer, rows):
    """Prompt (chat template) + answer + eos, labels = -100 on the prompt."""
    out = []
    for row in rows:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": row["question"]}], add_generation_prompt=True, tokenize=False
        )
        p = tokenizer(prompt, add_special_tokens=False).input_ids
        c = tokenizer(row["answer"] + tokenizer.eos_token, add_special_tokens=False).input_ids
        out.append((p + c, [-100] * len(p) + c))
    return out


def collate(examples, pad_id):
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id)
    labels = torch.full((len(examples), width), -100)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return ids, mask, labels


def seq_logps(model, ids, mask, labels):
    """Sum of completion-token log-probs and number of completion tokens per row."""
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
    targets = labels[:, 1:]
    scored = targets != -100
    lp = torch.gather(F.log_softmax(logits, -1), -1, targets.clamp(min=0)[..., None]).squeeze(-1)
    lp = lp * scored
    return lp.sum(-1), scored.sum(-1)


@torch.no_grad()
def mean_answer_prob(model, data, pad_id, batch=16):
    probs = []
    for start in range(0, len(data), batch):
        s, n = seq_logps(model, *collate(data[start : start + batch], pad_id))
        probs.extend((s / n).exp().tolist())
    return sum(probs) / len(probs), probs


@torch.no_grad()
def key_fact_rate(model, tokenizer, rows, max_new_tokens):
    from trl_unlearn.quickstart_data import mentions_key_fact

    tokenizer.padding_side = "left"
    hits, samples = 0, []
    for start in range(0, len(rows), 8):
        batch = rows[start : start + 8]
        prompts = [
            tokenizer.apply_chat_template([{"role": "user", "content": r["question"]}], add_generation_prompt=True,
                                          tokenize=False)
            for r in batch
        ]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        for r, g in zip(batch, gen):
            text = tokenizer.decode(g[enc.input_ids.shape[1] :], skip_special_tokens=True).strip()
            hits += mentions_key_fact(text, r["keywords"])
            samples.append(text)
    tokenizer.padding_side = "right"
    return hits, samples


def main(argv=None):
    ap = argparse.ArgumentParser(description="NPO feasibility on SmolLM2-135M, CPU")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8, help="forget batch size (retain batch is the same)")
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--retain-weight", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generate", type=int, default=0, help="max new tokens for the key-fact check (0: skip)")
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--skip-timing", action="store_true", help="go straight to the NPO loop")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    from trl_unlearn.models import load_smollm2
    from trl_unlearn.quickstart_data import load_quickstart_records

    t0 = time.perf_counter()
    model, tok = load_smollm2()
    print(f"load: {time.perf_counter() - t0:.1f} s")
    forget_rows, retain_rows = load_quickstart_records("forget"), load_quickstart_records("retain")
    forget, retain = encode(tok, forget_rows), encode(tok, retain_rows)
    pad = tok.pad_token_id
    lengths = [len(x) for x, _ in forget + retain]
    print(f"sequence length: mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)} tokens")

    model.train()
    model.config.use_cache = False
    # --- timing of one policy forward+backward at batch x ~64 tokens
    ids, mask, labels = collate((forget + retain)[: args.batch], pad)
    times = []
    for _ in range(0 if args.skip_timing else 3):
        t0 = time.perf_counter()
        s, n = seq_logps(model, ids, mask, labels)
        (-(s / n).mean()).backward()
        times.append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    if times:
        print(f"fwd+bwd batch {args.batch} x {ids.shape[1]} tokens: {[round(t, 2) for t in times]} s")
        with torch.no_grad():
            t0 = time.perf_counter()
            seq_logps(model, ids, mask, labels)
            print(f"fwd only (no grad) same batch: {time.perf_counter() - t0:.2f} s")
    if args.timing_only:
        return

    model.eval()
    f0, f_probs0 = mean_answer_prob(model, forget, pad)
    r0, r_probs0 = mean_answer_prob(model, retain, pad)
    with torch.no_grad():
        ref = seq_logps(model, *collate(forget, pad))[0]  # pi_ref log-probs, once
    if args.generate:
        t0 = time.perf_counter()
        fh0, _ = key_fact_rate(model, tok, forget_rows, args.generate)
        rh0, _ = key_fact_rate(model, tok, retain_rows, args.generate)
        print(f"key fact before: forget {fh0}/{len(forget)}, retain {rh0}/{len(retain)} "
              f"({time.perf_counter() - t0:.1f} s)")
    print(f"step 0: forget p {f0:.4f}  retain p {r0:.4f}")

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    order: list[int] = []
    t_train = time.perf_counter()
    for step in range(1, args.steps + 1):
        if len(order) < args.batch:
            more = list(range(len(forget)))
            rng.shuffle(more)
            order += more
        idx, order = order[: args.batch], order[args.batch :]
        r_idx = [rng.randrange(len(retain)) for _ in idx]
        ids, mask, labels = collate([forget[i] for i in idx] + [retain[j] for j in r_idx], pad)
        s, n = seq_logps(model, ids, mask, labels)
        k = len(idx)
        log_ratio = s[:k] - ref[idx]
        forget_loss = (-2.0 / args.beta * F.logsigmoid(-args.beta * log_ratio)).mean()
        retain_loss = -s[k:].sum() / n[k:].sum()
        loss = forget_loss + args.retain_weight * retain_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            f, _ = mean_answer_prob(model, forget, pad)
            r, _ = mean_answer_prob(model, retain, pad)
            model.train()
            el = time.perf_counter() - t_train
            print(f"step {step}: loss {loss.item():.3f} (forget {forget_loss.item():.3f}, retain "
                  f"{retain_loss.item():.3f})  forget p {f:.4f} ({f0 / f:.1f}x lower)  retain p {r:.4f} "
                  f"({(r - r0) / r0 * 100:+.0f}%)  [{el:.0f} s, {el / step:.2f} s/step]", flush=True)
    model.eval()
    if args.generate:
        fh, fs = key_fact_rate(model, tok, forget_rows, args.generate)
        rh, rs = key_fact_rate(model, tok, retain_rows, args.generate)
        print(f"key fact after: forget {fh}/{len(forget)}, retain {rh}/{len(retain)}")
        for r, t in list(zip(forget_rows, fs))[:4] + list(zip(retain_rows, rs))[:4]:
            print(f"  {r['question']} -> {t[:80]!r}")


if __name__ == "__main__":
    main()
