"""ROUGE as logged by TOFU/MUSE, as an offline ``evaluate`` metric (no network, no nltk)."""

import datasets
import evaluate

from trl_unlearn.evaluation.metrics import mean_score, rouge_scores

_DESCRIPTION = """
Mean per-example ROUGE with Porter stemming, computed with rouge_score's RougeScorer as
score(target=reference, prediction=generation), exactly as open-unlearning logs it. TOFU reports
ROUGE-L recall, MUSE (VerbMem, KnowMem) ROUGE-L F1. Unlike evaluate.load("rouge") this needs no
network access.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generations (cut at EOS/stop strings, stripped).
    references (`list` of `str`): ground-truth answers.
Returns:
    rouge1_recall (`float`), rougeL_f1 (`float`), rougeL_recall (`float`): means over examples.
Examples:
    >>> metric = evaluate.load(metric_module_path("unlearning_rouge"))
    >>> metric.compute(predictions=["the cat sat"], references=["the cat sat down"])
    {'rouge1_recall': 0.75, 'rougeL_f1': 0.8571428571428571, 'rougeL_recall': 0.75}
"""

_CITATION = """
@inproceedings{lin2004rouge,
  title={ROUGE: A Package for Automatic Evaluation of Summaries},
  author={Lin, Chin-Yew},
  booktitle={Text Summarization Branches Out},
  year={2004}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class UnlearningRouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references):
        per_example = [rouge_scores(ref, pred) for pred, ref in zip(predictions, references)]
        return {
            key: mean_score(scores[key] for scores in per_example)
            for key in ("rouge1_recall", "rougeL_f1", "rougeL_recall")
        }
