"""Tiny, fully offline models and tokenizers for tests, examples and benchmarks.

Nothing here touches the Hub: the tokenizer is a word-level vocabulary built in code, the model
a randomly initialised Llama of a few hundred thousand parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|> {{ message['content'] }} <|end|> "
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]

_BASE_WORDS = (
    "the a an is was of in on and to who what where when which how why did does born city country "
    "author book books wrote written write novel genre father mother parents job occupation name "
    "full known for award won year years fictitious writer famous first second called title "
    "question answer yes no he she they his her their it its this that with from by as at be "
    "are were has have had not or but about also most many some more one two three four five six "
    "seven eight nine ten red blue green paris london rome tokyo cairo lima oslo fact facts"
).split()


def _words(texts: Iterable[str]) -> list[str]:
    found: list[str] = []
    for text in texts:
        found.extend(re.findall(r"\w+|[^\w\s]", text.lower()))
    return found


def make_tokenizer(extra_texts: Iterable[str] = (), chat_template: str | None = CHAT_TEMPLATE):
    """Build a word-level ``PreTrainedTokenizerFast`` covering a base vocabulary and ``extra_texts``.

    Parameters
    ----------
    extra_texts : iterable of str
        Texts whose words must be in the vocabulary (fixtures, datasets).
    chat_template : str or None
        Jinja chat template to attach; ``None`` builds a tokenizer without one.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for token in SPECIAL_TOKENS + _BASE_WORDS + _words(extra_texts):
        if token not in vocab:
            vocab[token] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    backend.decoder = decoders.WordPiece(prefix="##")  # joins tokens with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=SPECIAL_TOKENS[4:],
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def make_model(tokenizer, hidden_size: int = 32, num_layers: int = 2, seed: int = 0, **config_kwargs):
    """A randomly initialised tiny Llama matching ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        **config_kwargs,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def enable_fsdp_on_cpu() -> None:
    """Let ``accelerate`` run FSDP on CPU processes (gloo), for multi-process tests and benchmarks.

    Accelerate only turns FSDP on for GPU-like devices and ignores the FSDP plugin on CPU. This
    patches ``AcceleratorState.__init__`` to set the state to FSDP after it did (keeping the trainer's
    plugin for the states accelerate re-creates without one), so that the trainer takes accelerate's
    own FSDP2 code path (``fsdp2_prepare_model``, ``get_state_dict``) exactly as on GPUs. Call it
    once per process, before the trainer is built.
    """
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType

    init = AcceleratorState.__init__
    plugin = []  # the trainer's FSDP plugin

    def init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None:
            plugin[:] = [fsdp_plugin]
        if plugin and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = plugin[0]

    AcceleratorState.__init__ = init_with_fsdp_on_cpu


def fictitious_qa(n: int = 8, offset: int = 0) -> list[dict[str, str]]:
    """Deterministic fictitious question/answer pairs in TOFU's ``question``/``answer`` columns."""
    cities = ["paris", "london", "rome", "tokyo", "cairo", "lima", "oslo"]
    colors = ["red", "blue", "green"]
    rows = []
    for i in range(offset, offset + n):
        name = f"author{i}"
        rows.append(
            {
                "question": f"Where was {name} born?",
                "answer": f"{name} was born in {cities[i % len(cities)]} and wrote the {colors[i % 3]} book.",
            }
        )
    return rows


_CITIES = ["paris", "london", "rome", "tokyo", "cairo", "lima", "oslo"]
_COLORS = ["red", "blue", "green"]


def forget_qa_rows(n: int, offset: int = 0) -> list[dict[str, str]]:
    """Fictitious 'where was authorN born' QA pairs of varied answer length (the forget subject)."""
    rows = []
    for i in range(offset, offset + n):
        extra = " and wrote the red book" * (i % 3)
        rows.append(
            {"question": f"Where was author{i} born?", "answer": f"author{i} was born in {_CITIES[i % 7]}{extra}."}
        )
    return rows


def retain_qa_rows(n: int, offset: int = 100) -> list[dict[str, str]]:
    """Fictitious 'what color does writerN like' QA pairs (a different subject, to be kept)."""
    rows = []
    for i in range(offset, offset + n):
        extra = " in the city of " + _CITIES[i % 7] if i % 2 else ""
        rows.append(
            {"question": f"What color does writer{i} like?", "answer": f"writer{i} likes {_COLORS[i % 3]}{extra}."}
        )
    return rows


def memorisation_task(n_forget: int = 8, n_retain: int = 12, steps: int = 60, seed: int = 0):
    """A tiny model that has memorised a small fictitious QA set: the unlearning test bed.

    Returns
    -------
    tokenizer, model, forget, retain
        ``forget``/``retain`` are ``datasets.Dataset`` with ``question``/``answer`` columns; the model
        was trained (AdamW, lr 1e-2, full batch) for ``steps`` steps on both.
    """
    import torch
    from datasets import Dataset

    from .data import pad_prompt_completion, prepare_dataset

    forget_rows, retain_rows_ = forget_qa_rows(n_forget), retain_qa_rows(n_retain)
    tokenizer = make_tokenizer([r["question"] + " " + r["answer"] for r in forget_rows + retain_rows_])
    model = make_model(tokenizer, seed=seed)
    taught = prepare_dataset(Dataset.from_list(forget_rows + retain_rows_), tokenizer, name="memorise", max_length=64)
    batch = pad_prompt_completion(taught["prompt_ids"], taught["completion_ids"], tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(seed)
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return tokenizer, model, Dataset.from_list(forget_rows), Dataset.from_list(retain_rows_)


def mean_token_log_prob(model, tokenized) -> float:
    """Mean over examples of the per-token completion log-probability (one unpadded pass each)."""
    import torch

    from .ops import sequence_log_probs

    model.eval()
    total = 0.0
    with torch.no_grad():
        for row in tokenized:
            ids = torch.tensor([list(row["prompt_ids"]) + list(row["completion_ids"])])
            labels = ids.clone()
            labels[0, : len(row["prompt_ids"])] = -100
            logp, n = sequence_log_probs(model(input_ids=ids).logits, labels)
            total += (logp / n).item()
    return total / len(tokenized)
