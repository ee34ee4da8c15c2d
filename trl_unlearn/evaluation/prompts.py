"""Prompt formatting and tokenisation of question/answer pairs, as open-unlearning (OU) does it.

Everything here is a pure function of ``(tokenizer, question, answer, PromptFormat)``: the
evaluator uses it to build what it scores and what it generates from, and a trainer may reuse
it to build training examples that match the evaluation exactly.

Two styles are supported, mirroring OU's ``template_args``:

* **chat** (:meth:`PromptFormat.chat`): the tokenizer's chat template. The prompt is the
  conversation up to the last user turn rendered with ``add_generation_prompt=True``; the full
  sequence is the conversation including the assistant answer rendered with
  ``add_generation_prompt=False``. Extra template variables (``date_string="10 Apr 2025"`` for
  Llama-3) are passed through ``chat_template_kwargs``.
* **tags** (:meth:`PromptFormat.tags`): plain strings, e.g. Llama-2's
  ``"[INST] " + question + " [/INST]"``, tokenised with the tokenizer's special tokens (BOS)
  and truncated to ``max_length``.

In both styles an EOS token is appended to the full sequence unless it already ends with one,
and the labels mask the first ``len(prompt_ids)`` positions (OU's convention, also when the
prompt does not tokenise as an exact prefix of the full sequence).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..ops import IGNORE_INDEX

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_DATE_STRING = "10 Apr 2025"


@dataclass(frozen=True)
class PromptFormat:
    """How a question (and optional in-context examples) becomes a prompt.

    Parameters
    ----------
    use_chat_template : bool
        Render with ``tokenizer.apply_chat_template`` (chat style) or concatenate tags.
    system_prompt : str or None
        Chat style: a system message put first (skipped when empty or ``None``).
    chat_template_kwargs : Mapping
        Chat style: extra variables for the template, e.g. ``{"date_string": "10 Apr 2025"}``.
    system_prompt_with_special_tokens : str
        Tag style: literal text put before everything (may contain special-token strings).
    user_start_tag, user_end_tag, asst_start_tag, asst_end_tag : str
        Tag style: the prompt is ``user_start_tag + question + user_end_tag + asst_start_tag``;
        ``asst_end_tag`` closes in-context answers only.
    max_length : int
        Tag style: truncation length of the tokenised sequences (OU's ``max_length``, 512).
    """

    use_chat_template: bool = True
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    chat_template_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"date_string": DEFAULT_DATE_STRING})
    system_prompt_with_special_tokens: str = ""
    user_start_tag: str = ""
    user_end_tag: str = ""
    asst_start_tag: str = ""
    asst_end_tag: str = ""
    max_length: int = 512

    @classmethod
    def chat(
        cls,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        **chat_template_kwargs: Any,
    ) -> PromptFormat:
        """Chat-template style. ``PromptFormat.chat(date_string="10 Apr 2025")`` is OU's Llama-3 setup.

        With no keyword arguments the OU default ``date_string="10 Apr 2025"`` is used (templates
        that do not reference it ignore it); pass ``date_string=None`` to drop it.
        """
        if not chat_template_kwargs:
            chat_template_kwargs = {"date_string": DEFAULT_DATE_STRING}
        kwargs = {k: v for k, v in chat_template_kwargs.items() if v is not None}
        return cls(use_chat_template=True, system_prompt=system_prompt, chat_template_kwargs=kwargs)

    @classmethod
    def tags(
        cls,
        user_start_tag: str = "[INST] ",
        user_end_tag: str = " [/INST]",
        asst_start_tag: str = "",
        asst_end_tag: str = " ",
        system_prompt_with_special_tokens: str = "",
        max_length: int = 512,
    ) -> PromptFormat:
        """Tag style; the defaults are OU's Llama-2-chat tags (``"[INST] " + q + " [/INST]"``)."""
        return cls(
            use_chat_template=False,
            system_prompt=None,
            chat_template_kwargs={},
            system_prompt_with_special_tokens=system_prompt_with_special_tokens,
            user_start_tag=user_start_tag,
            user_end_tag=user_end_tag,
            asst_start_tag=asst_start_tag,
            asst_end_tag=asst_end_tag,
            max_length=max_length,
        )

    @classmethod
    def question_answer(cls, max_length: int = 512) -> PromptFormat:
        """OU's base-model tags: ``"Question: " + q + "\\n" + "Answer: "`` (Llama-2-7b-hf)."""
        return cls.tags("Question: ", "\n", "Answer: ", "\n\n", max_length=max_length)


@dataclass(frozen=True)
class EncodedExample:
    """A tokenised (prompt, answer) pair.

    Attributes
    ----------
    prompt_ids : tuple of int
        What generation starts from (prompt up to and including the assistant header).
    input_ids : tuple of int
        The full sequence scored by teacher forcing (prompt + answer + EOS).
    labels : tuple of int
        ``input_ids`` with the first ``len(prompt_ids)`` positions set to ``IGNORE_INDEX``.
    """

    prompt_ids: tuple[int, ...]
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def key(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Identity for de-duplication: two examples with equal keys score identically."""
        return (self.input_ids, self.labels)

    @property
    def num_target_tokens(self) -> int:
        """Number of labelled (scored) tokens."""
        return sum(1 for t in self.labels if t != IGNORE_INDEX)


def _as_list(ids: Any) -> list[int]:
    """``apply_chat_template`` returns a list or a ``BatchEncoding`` depending on the version."""
    if isinstance(ids, Mapping) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):  # batched output of a single conversation
        ids = ids[0]
    return [int(t) for t in ids]


def _pairs(question: str | Sequence[str], answer: str | Sequence[str]) -> tuple[list[str], list[str]]:
    if isinstance(question, str) != isinstance(answer, str):
        raise TypeError("question and answer must both be strings or both be lists of strings")
    questions = [question] if isinstance(question, str) else list(question)
    answers = [answer] if isinstance(answer, str) else list(answer)
    if len(questions) != len(answers) or not questions:
        raise ValueError(
            f"got {len(questions)} questions and {len(answers)} answers; pass one of each "
            "(in-context examples first, the evaluated pair last)"
        )
    return questions, answers


def _require_chat_template(tokenizer) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{type(tokenizer).__name__} has no chat template but a chat-style prompt was requested. "
            "Set `tokenizer.chat_template`, or use tag-style prompts, e.g. "
            "`PromptFormat.tags('[INST] ', ' [/INST]')` or `PromptFormat.question_answer()`."
        )


def build_messages(questions: Sequence[str], answers: Sequence[str], fmt: PromptFormat) -> list[dict[str, str]]:
    """Chat messages: optional system prompt, then alternating user/assistant turns."""
    messages: list[dict[str, str]] = []
    if fmt.system_prompt:
        messages.append({"role": "system", "content": fmt.system_prompt})
    for q, a in zip(questions, answers):
        messages.append({"role": "user", "content": q})
        messages.append({"role": "assistant", "content": a})
    return messages


def format_prompt(tokenizer, question: str | Sequence[str], fmt: PromptFormat, answers: Sequence[str] = ()) -> str:
    """Prompt text for ``question`` (the evaluated one last; earlier ones need ``answers``).

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerBase
        Supplies the chat template (chat style only).
    question : str or sequence of str
        The question, or in-context questions followed by the evaluated one.
    fmt : PromptFormat
        Formatting options.
    answers : sequence of str
        Answers of the in-context questions (one fewer than the questions).

    Returns
    -------
    str
        The text generation starts from.
    """
    questions = [question] if isinstance(question, str) else list(question)
    if len(answers) != len(questions) - 1:
        raise ValueError("format_prompt needs one answer per in-context question")
    if fmt.use_chat_template:
        _require_chat_template(tokenizer)
        messages = build_messages(questions, list(answers) + [""], fmt)[:-1]
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **dict(fmt.chat_template_kwargs)
        )
    text = fmt.system_prompt_with_special_tokens
    for q, a in zip(questions[:-1], answers):
        text += fmt.user_start_tag + q + fmt.user_end_tag + fmt.asst_start_tag + a + fmt.asst_end_tag
    return text + fmt.user_start_tag + questions[-1] + fmt.user_end_tag + fmt.asst_start_tag


def encode_example(
    tokenizer,
    question: str | Sequence[str],
    answer: str | Sequence[str],
    fmt: PromptFormat | None = None,
) -> EncodedExample:
    """Tokenise a (question, answer) pair into prompt ids, full ids and labels, OU-style.

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerBase
        The model's tokenizer (needs an EOS token).
    question, answer : str or sequence of str
        The pair, or in-context pairs followed by the evaluated pair (lists of equal length).
    fmt : PromptFormat, optional
        Defaults to OU's chat setup (system prompt, ``date_string``).

    Returns
    -------
    EncodedExample
    """
    fmt = fmt or PromptFormat()
    questions, answers = _pairs(question, answer)
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token; set `tokenizer.eos_token` before evaluating")
    if fmt.use_chat_template:
        _require_chat_template(tokenizer)
        messages = build_messages(questions, answers, fmt)
        kwargs = dict(fmt.chat_template_kwargs)
        full = _as_list(
            tokenizer.apply_chat_template(
                messages, tokenize=True, add_generation_prompt=False, return_dict=False, **kwargs
            )
        )
        prompt = _as_list(
            tokenizer.apply_chat_template(
                messages[:-1], tokenize=True, add_generation_prompt=True, return_dict=False, **kwargs
            )
        )
    else:
        prompt_text = format_prompt(tokenizer, questions, fmt, answers[:-1])
        common = dict(add_special_tokens=True, max_length=fmt.max_length, truncation=True)
        full = list(tokenizer(prompt_text + answers[-1], **common)["input_ids"])
        prompt = list(tokenizer(prompt_text, **common)["input_ids"])
    if not full or full[-1] != tokenizer.eos_token_id:
        full.append(tokenizer.eos_token_id)
    n_prompt = len(prompt)
    labels = [IGNORE_INDEX] * min(n_prompt, len(full)) + full[n_prompt:]
    return EncodedExample(prompt_ids=tuple(prompt), input_ids=tuple(full), labels=tuple(labels))


_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
             (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))  # fmt: skip


def clean_up_tokenization(text: str) -> str:
    """The classic ``transformers`` clean-up of decoded text (``"Mammadov ,"`` -> ``"Mammadov,"``).

    ``transformers`` 5 no longer applies it to BPE tokenizers, but OU's reference logs were
    decoded with it, so the evaluator applies it itself wherever OU asked for it.
    """
    for old, new in _CLEAN_UP:
        text = text.replace(old, new)
    return text


def decode_text(tokenizer, ids, clean_up: bool | None = True) -> str:
    """Decode without special tokens; ``clean_up=None`` follows the tokenizer's own setting."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)
    if clean_up is None:
        clean_up = bool(getattr(tokenizer, "clean_up_tokenization_spaces", False))
    return clean_up_tokenization(text) if clean_up else text


def decode_prompt(tokenizer, example: EncodedExample) -> str:
    """The prompt as OU logs it (``input`` field): decoded without special tokens, cleaned up."""
    return decode_text(tokenizer, example.prompt_ids)


def decode_ground_truth(tokenizer, example: EncodedExample) -> str:
    """ROUGE ground truth as OU derives it: full text minus prompt text, both decoded, stripped."""
    return decode_text(tokenizer, example.input_ids).replace(decode_prompt(tokenizer, example), "").strip()


def decode_target(tokenizer, example: EncodedExample) -> str:
    """The labelled tokens decoded without special tokens (the text zlib compresses).

    OU decodes them with the tokenizer's default clean-up setting, so that is followed here.
    """
    return decode_text(tokenizer, [t for t in example.labels if t != IGNORE_INDEX], clean_up=None)
