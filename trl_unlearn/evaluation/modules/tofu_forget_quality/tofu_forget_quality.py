"""TOFU forget quality as an ``evaluate`` metric (wraps trl_unlearn.evaluation.metrics)."""

import datasets
import evaluate

from trl_unlearn.evaluation.metrics import forget_quality
from trl_unlearn.evaluation.spec import TOFU

_DESCRIPTION = """
TOFU forget quality: the p-value of a two-sample Kolmogorov-Smirnov test
(scipy.stats.ks_2samp) between the per-example forget-split truth ratios of the evaluated model
and those of the model trained on the retain split only. High (close to 1) means the unlearned
model is statistically indistinguishable from the retain model on the forget set.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): forget-split truth ratios of the evaluated model.
    references (`list` of `float`): forget-split truth ratios of the retain model (same split).
Returns:
    forget_quality (`float`): the KS-test p-value.
Examples:
    >>> metric = evaluate.load(metric_module_path("tofu_forget_quality"))
    >>> metric.compute(predictions=[0.1, 0.2, 0.3], references=[0.1, 0.2, 0.3])
    {'forget_quality': 1.0}
"""

_CITATION = TOFU.citation


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TofuForgetQuality(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
            reference_urls=[f"https://arxiv.org/abs/{TOFU.paper_id}"],
        )

    def _compute(self, predictions, references):
        return {"forget_quality": forget_quality(predictions, references)}
