"""Exact memorization and extraction strength as an ``evaluate`` metric."""

import datasets
import evaluate

from trl_unlearn.evaluation.metrics import exact_memorization, extraction_strength, mean_score

_DESCRIPTION = """
Teacher-forced memorisation of answers (TOFU) or texts (MUSE), from aligned greedy (argmax)
predictions and labels over the scored tokens. Exact memorization: share of tokens predicted
exactly. Extraction strength: 1 - k/T for the smallest k whose suffix labels[k:] is fully
predicted (open-unlearning's definition, which gives 1/T when even the last token is missed).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): argmax token ids, aligned with the labels.
    references (`list` of `list` of `int`): label token ids of the scored positions.
Returns:
    exact_memorization (`float`), extraction_strength (`float`): means over examples.
Examples:
    >>> metric = evaluate.load(metric_module_path("unlearning_memorization"))
    >>> metric.compute(predictions=[[1, 9, 3, 4]], references=[[1, 2, 3, 4]])
    {'exact_memorization': 0.75, 'extraction_strength': 0.5}
"""

_CITATION = """
@article{carlini2021extracting,
  title={Extracting Training Data from Large Language Models},
  author={Carlini, Nicholas and others},
  journal={USENIX Security Symposium},
  year={2021}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class UnlearningMemorization(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references):
        em = [exact_memorization(p, r) for p, r in zip(predictions, references)]
        es = [extraction_strength(p, r) for p, r in zip(predictions, references)]
        return {"exact_memorization": mean_score(em), "extraction_strength": mean_score(es)}
