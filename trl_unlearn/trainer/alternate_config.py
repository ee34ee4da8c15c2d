from __future__ import annotations

from dataclasses import dataclass, field

from .unlearning_config import UnlearningConfig


@dataclass
class AlternateAnswerConfig(UnlearningConfig):
    r"""
    Fields shared by the methods that train on a second answer per forget question (IdkNLL,
    IdkDPO, AltPO).

    Parameters
    ----------
    alternate_column : str, defaults to "alternate"
        Forget-data column holding the second answer (a string, or a list of strings: one training
        row per alternate).
    refusals : str or list of str, optional
        "I don't know" answers drawn when the forget data has no `alternate_column`: a JSON list
        file, a text file with one refusal per line, or (in Python) a list. Defaults to the 20
        refusals packaged in `trl_unlearn/resources/refusals.json`. Not used by AltPO.
    alternate_seed : int, optional
        Seed of the refusal draw (one refusal per forget row, fixed for the run). Defaults to `seed`.
    """

    alternate_column: str = field(
        default="alternate", metadata={"help": "Forget-data column with the second (alternate / IDK) answer."}
    )
    refusals: str | None = field(
        default=None,
        metadata={"help": "Refusal answers drawn when there is no alternate column: a JSON list or a text file with "
                          "one per line (in Python also a list). Defaults to the packaged list."},
    )
    alternate_seed: int | None = field(default=None, metadata={"help": "Seed of the refusal draw; defaults to `seed`."})

    def __post_init__(self):
        super().__post_init__()
        if self.alternate_seed is None:
            self.alternate_seed = self.seed
