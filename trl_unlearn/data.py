"""Datasets for unlearning: formats in, tokenized prompt/completion pairs out, forget/retain pairing.

Accepted formats
----------------
- TRL prompt-completion, standard: ``{"prompt": str, "completion": str}``;
- TRL prompt-completion, conversational: ``{"prompt": [{"role", "content"}, ...],
  "completion": [{"role": "assistant", "content": str}]}`` (rendered with the chat template);
- TOFU/MUSE QA columns: ``{"question": str, "answer": str}`` (rendered as a one-turn chat);
- raw text (MUSE ``raw``): ``{"text": str}``, chunked to ``max_length`` tokens, every token after
  the first of a chunk is scored.

Prompt tokens never carry loss; an EOS is appended to every completion and scored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .ops import IGNORE_INDEX, attention_mask_for

logger = logging.getLogger(__name__)

FORMATS = ("prompt-completion", "conversational", "question-answer", "text")


# --------------------------------------------------------------------------------------------
# Format detection and prompt rendering
# --------------------------------------------------------------------------------------------
def detect_format(column_names: list[str], first_row: dict[str, Any] | None = None) -> str:
    """Name the dataset format from its columns.

    Raises
    ------
    ValueError
        When no supported set of columns is present; the message lists the accepted layouts.
    """
    columns = set(column_names)
    if {"prompt", "completion"} <= columns:
        if first_row is not None and isinstance(first_row.get("prompt"), list):
            return "conversational"
        return "prompt-completion"
    if {"question", "answer"} <= columns:
        return "question-answer"
    if "text" in columns:
        return "text"
    raise ValueError(
        f"Unsupported dataset columns {sorted(columns)}. Provide one of: 'prompt' + 'completion' (TRL "
        "prompt-completion, standard or conversational), 'question' + 'answer' (TOFU/MUSE QA), or 'text' "
        "(raw text). Rename your columns with `dataset.rename_column(...)`."
    )


def as_dataset(data, name: str):
    """A ``datasets.Dataset`` from a Dataset, a list of row dicts, a dict of columns or a pandas DataFrame.

    Raises
    ------
    TypeError
        For an ``IterableDataset`` (streamed data has no length to pair and shuffle) or anything else.
    """
    from datasets import Dataset, IterableDataset

    if isinstance(data, Dataset):
        return data
    if isinstance(data, IterableDataset):
        raise TypeError(
            f"The {name} dataset is an IterableDataset (streamed); unlearning needs a map-style Dataset to pair and "
            "shuffle examples. Load it without `streaming=True`, or materialise it with "
            "`Dataset.from_list(list(iterable_dataset))`."
        )
    if type(data).__name__ == "DataFrame" and hasattr(data, "to_dict"):
        return Dataset.from_pandas(data, preserve_index=False)
    if isinstance(data, dict):
        return Dataset.from_dict(data)
    if isinstance(data, (list, tuple)) and all(isinstance(row, dict) for row in data):
        return Dataset.from_list(list(data))
    raise TypeError(
        f"The {name} dataset must be a datasets.Dataset, a list of dicts, a dict of columns or a pandas DataFrame; "
        f"got {type(data).__name__}."
    )


def _is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _row_problems(row: dict[str, Any], data_format: str) -> tuple[bool, bool]:
    """``(missing, empty)`` for one raw row: a ``None`` field cannot mean anything; an empty
    answer/completion gives nothing to unlearn."""
    if data_format == "text":
        return row["text"] is None, _is_blank(row["text"])
    if data_format == "question-answer":
        return row["question"] is None or row["answer"] is None, _is_blank(row["answer"])
    prompt, completion = row["prompt"], row["completion"]
    if prompt is None or completion is None:
        return True, False
    if data_format == "conversational":
        contents = [m.get("content") if isinstance(m, dict) else None for m in list(prompt) + list(completion)]
        return any(c is None for c in contents), not completion or all(_is_blank(c) for c in contents[len(prompt):])
    return False, _is_blank(completion)


def drop_degenerate_rows(dataset, data_format: str, name: str):
    """Refuse rows with ``None`` fields; drop rows with an empty answer/completion/text, saying how many.

    Raises
    ------
    ValueError
        When some row has a ``None`` question/prompt/answer/completion/text, or no row is left.
    """
    columns = {"text": ["text"], "question-answer": ["question", "answer"]}.get(data_format, ["prompt", "completion"])
    values = dataset.select_columns(columns).to_list()
    problems = [_row_problems(row, data_format) for row in values]
    missing = [i for i, (m, _) in enumerate(problems) if m]
    if missing:
        raise ValueError(
            f"{len(missing)} {name} row(s) have a missing (None) {' or '.join(columns)} (first: row {missing[0]}); "
            "such rows cannot be unlearned. Fill them in or remove them, e.g. `dataset.filter(...)`."
        )
    empty = [i for i, (_, e) in enumerate(problems) if e]
    if not empty:
        return dataset
    if len(empty) == len(values):
        raise ValueError(f"Every {name} row has an empty {columns[-1]}: there is nothing to unlearn.")
    logger.warning(
        "%d of %d %s row(s) have an empty %s (first: row %d) and are dropped: they carry nothing to learn or unlearn.",
        len(empty), len(values), name, columns[-1], empty[0],
    )
    keep = sorted(set(range(len(values))) - set(empty))
    return dataset.select(keep)


def _chat_pairs(messages: list[dict[str, str]]) -> tuple[str | None, list[str], list[str]]:
    """Split a conversation into (system prompt, user turns, assistant turns); it must alternate."""
    system = None
    if messages and messages[0].get("role") == "system":
        system, messages = messages[0]["content"], messages[1:]
    roles = [m.get("role") for m in messages]
    if roles != ["user", "assistant"] * (len(roles) // 2) or not roles:
        raise ValueError(
            "A conversational example must be an optional system message followed by alternating user/assistant "
            f"turns ending with the assistant's completion; got roles {roles}."
        )
    return system, [m["content"] for m in messages[0::2]], [m["content"] for m in messages[1::2]]


def tokenize_example(
    example: dict[str, Any],
    tokenizer,
    data_format: str,
    system_prompt: str | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> dict[str, list[int]]:
    """Tokenize one non-text example into ``prompt_ids`` and ``completion_ids`` (EOS-terminated).

    Question/answer and conversational examples are rendered with the chat template exactly as
    the evaluators render them (:func:`trl_unlearn.evaluation.prompts.encode_example`): the
    completion is everything the template adds after the prompt, and an EOS is appended unless
    the template already ends with one. Standard prompt-completion strings are tokenized as
    ``tokenizer(prompt)`` and ``tokenizer(completion) + [eos]``.
    """
    from .evaluation.prompts import PromptFormat, encode_example

    if data_format in ("question-answer", "conversational"):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                "The tokenizer has no chat template, but the data is conversational or question/answer. Set "
                "`tokenizer.chat_template`, use an instruct model's tokenizer, or provide standard "
                "`prompt`/`completion` strings (e.g. `prompt='[INST] ' + question + ' [/INST]'`)."
            )
        if data_format == "question-answer":
            system, questions, answers = system_prompt, [example["question"]], [example["answer"]]
        else:
            system, questions, answers = _chat_pairs(list(example["prompt"]) + list(example["completion"]))
            system = system if system is not None else system_prompt
        if not all(isinstance(a, str) for a in answers):
            raise ValueError("Answers/completions must be strings.")
        fmt = PromptFormat(use_chat_template=True, system_prompt=system,
                           chat_template_kwargs=dict(chat_template_kwargs or {}))
        encoded = encode_example(tokenizer, questions, answers, fmt)
        n_prompt = len(encoded.prompt_ids)
        return {"prompt_ids": list(encoded.input_ids[:n_prompt]), "completion_ids": list(encoded.input_ids[n_prompt:])}
    if data_format != "prompt-completion":
        raise ValueError(f"Unknown data format {data_format!r}; expected one of {FORMATS}.")
    if not isinstance(example["completion"], str):
        raise ValueError(f"Completion must be a string, got {type(example['completion']).__name__}.")
    if tokenizer.eos_token_id is None:
        raise ValueError("The tokenizer has no EOS token; set `tokenizer.eos_token` before unlearning.")
    completion = list(tokenizer(example["completion"], add_special_tokens=False)["input_ids"])
    return {"prompt_ids": list(tokenizer(example["prompt"])["input_ids"]), "completion_ids": completion + [tokenizer.eos_token_id]}


def chunk_text_ids(ids: list[int], max_length: int) -> list[list[int]]:
    """Split one tokenized text into consecutive chunks of at most ``max_length`` tokens.

    Chunks of a single token carry nothing to score and are dropped (a text always keeps its
    first chunk unless it is one token long).
    """
    return [ids[i : i + max_length] for i in range(0, len(ids), max_length) if len(ids[i : i + max_length]) > 1]


def prepare_dataset(
    dataset,
    tokenizer,
    *,
    name: str,
    max_length: int | None,
    system_prompt: str | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
    num_proc: int | None = None,
):
    """Turn a ``datasets.Dataset`` of any supported format into ``prompt_ids``/``completion_ids`` rows.

    Parameters
    ----------
    dataset : datasets.Dataset, list of dict, dict of columns or pandas.DataFrame
        The forget or retain data. Rows with a ``None`` field are refused, rows with an empty
        answer/completion/text are dropped (with a warning that counts them).
    tokenizer : PreTrainedTokenizerBase
        Tokenizer (and chat template) of the model.
    name : str
        ``"forget"`` / ``"retain"`` / ``"eval_forget"``..., used in error messages.
    max_length : int or None
        Maximum total tokens. Prompts that do not fit raise; completions are truncated (with a
        warning that counts them); raw text is chunked.

    Raises
    ------
    ValueError
        Empty dataset, unsupported columns, ``None`` fields, a prompt at least ``max_length`` tokens long.
    TypeError
        An ``IterableDataset`` or another unsupported container.
    """
    from datasets import Dataset

    if dataset is not None:
        dataset = as_dataset(dataset, name)
    if dataset is None or len(dataset) == 0:
        raise ValueError(
            f"The {name} dataset is empty. Unlearning needs at least one {name} example; check the split name "
            "and any filtering you applied."
        )
    if {"prompt_ids", "completion_ids"} <= set(dataset.column_names):
        return dataset  # already tokenized
    data_format = detect_format(dataset.column_names, dataset[0])
    dataset = drop_degenerate_rows(dataset, data_format, name)

    if data_format == "text":
        if max_length is None:
            raise ValueError("Raw-text datasets need `max_length` to chunk the texts (MUSE uses 2048).")
        rows: dict[str, list] = {"prompt_ids": [], "completion_ids": []}
        too_short = 0
        for text in dataset["text"]:
            chunks = chunk_text_ids(list(tokenizer(text)["input_ids"]), max_length)
            too_short += not chunks
            for chunk in chunks:
                rows["prompt_ids"].append(chunk[:1])
                rows["completion_ids"].append(chunk[1:])
        if not rows["prompt_ids"]:
            raise ValueError(f"The {name} dataset's texts are all shorter than two tokens: nothing to unlearn.")
        if too_short:
            logger.warning("%d %s text(s) are a single token long and are dropped: nothing in them can be scored.",
                           too_short, name)
        return Dataset.from_dict(rows)

    tokenized = dataset.map(
        tokenize_example,
        fn_kwargs={
            "tokenizer": tokenizer,
            "data_format": data_format,
            "system_prompt": system_prompt,
            "chat_template_kwargs": chat_template_kwargs,
        },
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc=f"Tokenizing {name} dataset",
    )
    if max_length is not None:
        prompt_lengths = np.array([len(p) for p in tokenized["prompt_ids"]])
        too_long = np.flatnonzero(prompt_lengths >= max_length)
        if too_long.size:
            raise ValueError(
                f"{too_long.size} {name} prompt(s) are at least `max_length`={max_length} tokens long (first: row "
                f"{int(too_long[0])}, {int(prompt_lengths[too_long[0]])} tokens), leaving no room for the completion. "
                "Increase `max_length` or shorten the prompts."
            )
        total = prompt_lengths + np.array([len(c) for c in tokenized["completion_ids"]])
        n_truncated = int((total > max_length).sum())
        if n_truncated:
            logger.warning(
                "%d %s example(s) exceed max_length=%d: their completions are truncated to fit (the EOS may be cut). "
                "Increase `max_length` to keep them whole.",
                n_truncated,
                name,
                max_length,
            )
            tokenized = tokenized.map(
                lambda ex: {"completion_ids": ex["completion_ids"][: max_length - len(ex["prompt_ids"])]},
                desc=f"Truncating {name} completions",
            )
    return tokenized


# --------------------------------------------------------------------------------------------
# Forget/retain pairing
# --------------------------------------------------------------------------------------------
def retain_pairing(num_forget: int, num_retain: int, seed: int, epoch: int) -> np.ndarray:
    """Retain index paired with each forget index for one epoch.

    Each forget example gets one retain example drawn uniformly at random; the draw depends only
    on ``(seed, epoch)``, so every process and every resumed run sees the same pairs.
    """
    rng = np.random.default_rng([int(seed), int(epoch)])
    return rng.integers(0, num_retain, size=num_forget)


class ForgetRetainDataset(torch.utils.data.Dataset):
    """Map-style dataset over the forget set, each item carrying one paired retain example.

    Parameters
    ----------
    forget, retain : datasets.Dataset
        Tokenized datasets (``prompt_ids``, ``completion_ids``; forget may carry ``ref_logps``).
        ``retain`` may be ``None`` (methods without a retain term).
    seed : int
        Pairing seed; pairs are re-drawn by :meth:`set_epoch`.
    """

    def __init__(self, forget, retain=None, seed: int = 42):
        self.forget = forget
        self.retain = retain
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.retain is not None:
            self.pairs = retain_pairing(len(self.forget), len(self.retain), self.seed, self.epoch)

    def __len__(self) -> int:
        return len(self.forget)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.forget[int(index)]
        item = {"forget_prompt_ids": row["prompt_ids"], "forget_completion_ids": row["completion_ids"]}
        if "ref_logps" in row:
            item["forget_ref_logps"] = row["ref_logps"]
        if "alternate_completion_ids" in row:  # a second answer to the same prompt (IDK / alternate methods)
            item["forget_alternate_completion_ids"] = row["alternate_completion_ids"]
            if "alternate_ref_logps" in row:
                item["forget_alternate_ref_logps"] = row["alternate_ref_logps"]
        if self.retain is not None:
            paired = self.retain[int(self.pairs[index])]
            item["retain_prompt_ids"] = paired["prompt_ids"]
            item["retain_completion_ids"] = paired["completion_ids"]
        return item


class EpochSeededSampler(torch.utils.data.Sampler):
    """Shuffles forget indices by ``(seed, epoch)`` and re-draws the dataset's pairs each epoch.

    Accelerate and the Trainer call :meth:`set_epoch` at the start of every epoch (also on resume),
    which is forwarded to :meth:`ForgetRetainDataset.set_epoch`.
    """

    def __init__(self, dataset: ForgetRetainDataset, seed: int, shuffle: bool = True):
        self.dataset = dataset
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        if not self.shuffle:
            return iter(range(len(self.dataset)))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(len(self.dataset), generator=generator).tolist())


# --------------------------------------------------------------------------------------------
# Collation
# --------------------------------------------------------------------------------------------
def pad_prompt_completion(
    prompts: list[list[int]],
    completions: list[list[int]],
    pad_token_id: int,
    pad_to_multiple_of: int | None = None,
    masked_token_id: int | None = None,
) -> dict[str, torch.Tensor]:
    """Right-pad concatenated prompt+completion sequences.

    ``masked_token_id`` (see :func:`trl_unlearn.ops.key_masked_token_id`) is hidden from
    attention wherever it occurs, not only as padding (open-unlearning's mask); labels are
    unaffected.

    Returns
    -------
    dict
        ``input_ids``, ``attention_mask`` and ``labels`` (:data:`~trl_unlearn.ops.IGNORE_INDEX` on
        prompt and padding positions).
    """
    lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
    width = max(lengths)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    labels = torch.full((len(prompts), width), IGNORE_INDEX, dtype=torch.long)
    for row, (prompt, completion) in enumerate(zip(prompts, completions)):
        n_p, n = len(prompt), len(prompt) + len(completion)
        input_ids[row, :n] = torch.tensor(list(prompt) + list(completion), dtype=torch.long)
        attention_mask[row, :n] = 1
        labels[row, n_p:n] = input_ids[row, n_p:n]
    attention_mask = attention_mask_for(input_ids, attention_mask, masked_token_id)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@dataclass
class ForgetRetainCollator:
    """Pads the forget and the retain part of a batch separately (each to its own longest row).

    Output keys: ``forget_input_ids``, ``forget_attention_mask``, ``forget_labels`` (and
    ``forget_ref_logps`` when precomputed), and the same with ``retain_`` when the items carry
    a retain example, and with ``forget_alternate_`` (the forget prompt followed by the alternate
    answer) when they carry ``forget_alternate_completion_ids``.

    Parameters
    ----------
    pad_token_id : int
        Padding id (padding positions are masked and never scored).
    pad_to_multiple_of : int, optional
        Round padded lengths up to a multiple of this value.
    masked_token_id : int, optional
        A token id also hidden from attention inside sequences (``attention_mask_mode=
        "open_unlearning"``); ``None`` masks only the padding.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    masked_token_id: int | None = None

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for part in ("forget", "retain"):
            if f"{part}_prompt_ids" not in items[0]:
                continue
            padded = pad_prompt_completion(
                [it[f"{part}_prompt_ids"] for it in items],
                [it[f"{part}_completion_ids"] for it in items],
                self.pad_token_id,
                self.pad_to_multiple_of,
                self.masked_token_id,
            )
            batch.update({f"{part}_{key}": value for key, value in padded.items()})
        if "forget_alternate_completion_ids" in items[0]:
            padded = pad_prompt_completion(
                [it["forget_prompt_ids"] for it in items],
                [it["forget_alternate_completion_ids"] for it in items],
                self.pad_token_id,
                self.pad_to_multiple_of,
                self.masked_token_id,
            )
            batch.update({f"forget_alternate_{key}": value for key, value in padded.items()})
        for key in ("forget_ref_logps", "forget_alternate_ref_logps"):
            if key in items[0]:
                batch[key] = torch.tensor([it[key] for it in items], dtype=torch.float32)
        return batch


def describe_dataset(dataset) -> dict[str, Any]:
    """Name, config, split and size of a dataset, as far as it knows them (for logs and model cards)."""
    info = getattr(dataset, "info", None)
    split = getattr(dataset, "split", None)
    return {
        "name": getattr(info, "dataset_name", None) if info is not None else None,
        "config": getattr(info, "config_name", None) if info is not None else None,
        "split": str(split) if split is not None else None,
        "num_rows": len(dataset),
    }
