"""TOFU model utility as an ``evaluate`` metric (wraps trl_unlearn.evaluation.metrics)."""

import datasets
import evaluate

from trl_unlearn.evaluation.metrics import model_utility
from trl_unlearn.evaluation.spec import TOFU

_DESCRIPTION = """
TOFU model utility: the harmonic mean (scipy.stats.hmean) of nine aggregates, {probability,
ROUGE-L recall, truth ratio ("true_better")} on {retain, real authors, world facts}; the
probability is option-normalised for real authors and world facts.
"""

_KWARGS_DESCRIPTION = """
Args:
    values (`list` of `float`): the nine aggregates (any order).
Returns:
    model_utility (`float`): their harmonic mean.
Examples:
    >>> metric = evaluate.load(metric_module_path("tofu_model_utility"))
    >>> metric.compute(values=[0.5] * 9)
    {'model_utility': 0.5}
"""

_CITATION = TOFU.citation


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TofuModelUtility(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"values": datasets.Value("float64")}),
            reference_urls=[f"https://arxiv.org/abs/{TOFU.paper_id}"],
        )

    def _compute(self, values):
        return {"model_utility": model_utility(values)}
