"""Second answers to forget questions: refusals ("I don't know") and model-generated alternates.

Preference-style and refusal-style unlearning methods (IdkDPO, IdkNLL, AltPO) train on a second
completion for every forget prompt. It comes from a dataset column (``alternate`` by default) or,
for the "I don't know" methods, is drawn (seeded) from a list of refusal answers: the packaged
``trl_unlearn/resources/refusals.json`` or the user's own list or file.

:func:`generate_alternates` builds AltPO's alternate answers with the model itself: it samples
several plausible but different answers per question and stores them as the ``alternate`` column.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .data import as_dataset, detect_format, prepare_dataset

logger = logging.getLogger(__name__)

#: Instruction appended to the question and its answer when the model writes alternates.
ALTERNATE_INSTRUCTION = (
    "Write a different answer to the same question. Keep the question's details, but replace every fact that the "
    "answer above introduces with a made-up, plausible one, so that your answer contradicts the one above."
)


def load_refusals(source: str | Sequence[str] | None = None) -> list[str]:
    """The refusal answers the "I don't know" methods draw from.

    Parameters
    ----------
    source : str, list of str or None
        ``None`` for the packaged list (20 refusals), a list of strings, or a file: a JSON list of
        strings (``.json``) or one refusal per line (any other file).

    Raises
    ------
    ValueError
        When the list is empty or holds something other than non-empty strings.
    """
    if source is None:
        text = resources.files("trl_unlearn.resources").joinpath("refusals.json").read_text(encoding="utf-8")
        refusals = json.loads(text)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"Refusal file {str(path)!r} does not exist (expected a JSON list or one refusal per line).")
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            refusals = json.loads(text)
        else:
            refusals = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        refusals = list(source)
    if not refusals or not all(isinstance(r, str) and r.strip() for r in refusals):
        raise ValueError("The refusal answers must be a non-empty list of non-empty strings.")
    return [r.strip() for r in refusals]


def _with_answer(row: dict[str, Any], data_format: str, answer: str) -> dict[str, Any]:
    if data_format == "question-answer":
        return {"question": row["question"], "answer": answer}
    if data_format == "conversational":
        return {"prompt": row["prompt"], "completion": [{"role": "assistant", "content": answer}]}
    return {"prompt": row["prompt"], "completion": answer}


def _original(row: dict[str, Any], data_format: str) -> dict[str, Any]:
    keys = ("question", "answer") if data_format == "question-answer" else ("prompt", "completion")
    return {k: row[k] for k in keys}


def prepare_with_alternates(
    dataset,
    tokenizer,
    *,
    name: str,
    column: str = "alternate",
    refusals: str | Sequence[str] | None = None,
    draw_refusals: bool = True,
    seed: int = 0,
    method: str = "this method",
    **prepare_kwargs,
):
    """Tokenize forget data together with a second answer per prompt (``alternate_completion_ids``).

    The second answer is the ``column`` value of each row. A row whose value is a list of strings
    becomes one row per alternate (as open-unlearning's AltPO data holds several alternates per
    question). Without the column, and with ``draw_refusals``, each row gets one refusal drawn
    with ``seed`` from :func:`load_refusals` ``(refusals)``, fixed for the whole run. Rows whose
    answer or alternate is empty are dropped with a warning.

    Returns
    -------
    datasets.Dataset
        ``prompt_ids``, ``completion_ids`` (the original answer) and ``alternate_completion_ids``.

    Raises
    ------
    ValueError
        Raw-text data (it has no question to answer differently), a missing column when refusals
        are not drawn, or alternates that are neither strings nor lists of strings.
    """
    from datasets import Dataset

    dataset = as_dataset(dataset, name)
    columns = set(dataset.column_names)
    if {"prompt_ids", "completion_ids"} <= columns:
        if "alternate_completion_ids" in columns:
            return dataset
        raise ValueError(
            f"The tokenized {name} dataset has no `alternate_completion_ids` column, which {method} needs: pass the "
            f"untokenized data with an `{column}` column instead."
        )
    data_format = detect_format(dataset.column_names, dataset[0] if len(dataset) else None)
    if data_format == "text":
        raise ValueError(
            f"{method} needs a question and a second answer to it, but the {name} data is raw text. Use "
            "question/answer or prompt/completion data."
        )
    rows = dataset.to_list()
    if column in columns:
        alternates = [row[column] for row in rows]
    elif draw_refusals:
        pool = load_refusals(refusals)
        picks = np.random.default_rng(int(seed)).integers(0, len(pool), size=len(rows))
        alternates = [pool[i] for i in picks]
    else:
        raise ValueError(
            f"{method} trains towards an alternate answer for every forget question, but the {name} data has no "
            f"`{column}` column. Generate alternates with `trl_unlearn.alternates.generate_alternates(model, "
            f"tokenizer, dataset)` or name your column with `alternate_column`."
        )
    originals, seconds, dropped = [], [], 0
    answer_key = "answer" if data_format == "question-answer" else "completion"
    for row, alternate in zip(rows, alternates):
        choices = alternate if isinstance(alternate, (list, tuple)) else [alternate]
        for choice in choices:
            if choice is not None and not isinstance(choice, str):
                raise ValueError(f"`{column}` values must be strings or lists of strings, got {type(choice).__name__}.")
            answer = row[answer_key]
            empty_answer = isinstance(answer, str) and not answer.strip()
            if choice is None or not choice.strip() or empty_answer:
                dropped += 1
                continue
            originals.append(_original(row, data_format))
            seconds.append(_with_answer(row, data_format, choice))
    if dropped:
        logger.warning("%d %s row(s) have an empty answer or %s and are dropped.", dropped, name, column)
    if not originals:
        raise ValueError(f"No {name} row has both an answer and a non-empty `{column}`: there is nothing to train on.")
    tokenized = prepare_dataset(Dataset.from_list(originals), tokenizer, name=name, **prepare_kwargs)
    alternate = prepare_dataset(Dataset.from_list(seconds), tokenizer, name=f"{name} {column}", **prepare_kwargs)
    if len(alternate) != len(tokenized) or alternate["prompt_ids"] != tokenized["prompt_ids"]:
        raise ValueError(f"The {name} prompts were rendered differently with the `{column}` answers; check the data.")
    return tokenized.add_column("alternate_completion_ids", alternate["completion_ids"])


def generate_alternates(
    model,
    tokenizer,
    dataset,
    *,
    num_alternates: int = 5,
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
    instruction: str = ALTERNATE_INSTRUCTION,
    column: str = "alternate",
    one_row_per_alternate: bool = True,
    progress: bool = True,
):
    """Sample alternate answers to each question with the model itself (AltPO's data step).

    Each question and its answer are shown to the model with ``instruction`` (as a chat turn when
    the tokenizer has a chat template, else as plain text ending in ``"Alternate answer:"``), and
    ``num_alternates`` answers are sampled per question. Open-unlearning's AltPO recipe samples 5 per
    question at temperature 1 with at most 200 new tokens, the defaults here.

    Parameters
    ----------
    model : PreTrainedModel
        The model to unlearn (or any instruction-following model).
    tokenizer : PreTrainedTokenizerBase
        Its tokenizer.
    dataset : datasets.Dataset or list of dict
        ``question``/``answer`` rows (or standard ``prompt``/``completion`` strings).
    num_alternates : int
        Answers sampled per question.
    max_new_tokens, temperature, top_p : generation settings (sampling).
    batch_size : int
        Questions per ``generate`` call.
    seed : int
        Seed of the sampling.
    instruction : str
        What the model is asked to do.
    column : str
        Name of the new column.
    one_row_per_alternate : bool
        ``True``: one row per (question, alternate), as AltPO trains; ``False``: one row per question
        with a list of alternates in ``column`` (the trainers expand it).
    progress : bool
        Show a progress bar over the ``generate`` calls.

    Returns
    -------
    datasets.Dataset
        The input columns plus ``column``.
    """
    import torch
    from datasets import Dataset
    from transformers import set_seed

    from .evaluation.batching import progress_bar_iter

    dataset = as_dataset(dataset, "forget")
    data_format = detect_format(dataset.column_names, dataset[0])
    if data_format not in ("question-answer", "prompt-completion"):
        raise ValueError("generate_alternates needs question/answer or standard prompt/completion string rows.")
    q_key, a_key = ("question", "answer") if data_format == "question-answer" else ("prompt", "completion")
    rows = dataset.to_list()
    texts = []
    for row in rows:
        request = f"Question: {row[q_key]}\nAnswer: {row[a_key]}\n{instruction}"
        if getattr(tokenizer, "chat_template", None):
            texts.append(tokenizer.apply_chat_template([{"role": "user", "content": request}], tokenize=False,
                                                       add_generation_prompt=True))
        else:
            texts.append(request + "\nAlternate answer:")
    set_seed(seed)
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    generated: list[list[str]] = []
    try:
        for start in progress_bar_iter(range(0, len(texts), batch_size), "sampling alternates", progress):
            chunk = texts[start : start + batch_size]
            # the chat template already carries any special tokens it needs
            enc = tokenizer(chunk, return_tensors="pt", padding=True,
                            add_special_tokens=not getattr(tokenizer, "chat_template", None))
            enc = {k: v.to(model.device) for k, v in enc.items()}
            with torch.no_grad():
                out = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p,
                                     max_new_tokens=max_new_tokens, num_return_sequences=num_alternates,
                                     pad_token_id=tokenizer.pad_token_id)
            decoded = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i in range(len(chunk)):
                answers = [text.split("Question:")[0].strip() for text in decoded[i * num_alternates:(i + 1) * num_alternates]]
                generated.append(answers)
    finally:
        model.train(was_training)
        tokenizer.padding_side = padding_side
    if not one_row_per_alternate:
        return Dataset.from_list([{**row, column: answers} for row, answers in zip(rows, generated)])
    return Dataset.from_list([{**row, column: answer} for row, answers in zip(rows, generated) for answer in answers])
