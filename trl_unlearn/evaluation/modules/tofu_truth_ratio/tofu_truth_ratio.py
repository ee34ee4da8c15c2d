"""TOFU truth ratio as an ``evaluate`` metric (wraps trl_unlearn.evaluation.metrics)."""

import datasets
import evaluate

from trl_unlearn.evaluation.metrics import aggregate_truth_ratio, truth_ratios
from trl_unlearn.evaluation.spec import TOFU

_DESCRIPTION = """
Per example, R = exp(-mean_j avg_loss(perturbed_j)) / (exp(-avg_loss(correct)) + 1e-10), the
ratio of the perturbed answers' geometric-mean normalised probability to that of the correct
(paraphrased, for forget/retain; original, for real authors/world facts) answer. Aggregated as in
open-unlearning: "closer_to_1_better" = mean(min(R, 1/R)) for the forget split, "true_better" =
mean(max(0, 1 - R)) for the others.
"""

_KWARGS_DESCRIPTION = """
Args:
    correct_avg_losses (`list` of `float`): mean token NLL of the correct answer, one per example.
    perturbed_avg_losses (`list` of `list` of `float`): mean token NLL of each perturbed answer.
    aggregator (`str`, default "closer_to_1_better"): or "true_better".
Returns:
    truth_ratio (`float`): the aggregate.
Examples:
    >>> metric = evaluate.load(metric_module_path("tofu_truth_ratio"))
    >>> metric.compute(correct_avg_losses=[1.0], perturbed_avg_losses=[[1.0, 1.0]])
    {'truth_ratio': 0.9999999997281718}
"""

_CITATION = TOFU.citation


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TofuTruthRatio(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "correct_avg_losses": datasets.Value("float64"),
                    "perturbed_avg_losses": datasets.Sequence(datasets.Value("float64")),
                }
            ),
            reference_urls=[f"https://arxiv.org/abs/{TOFU.paper_id}"],
        )

    def _compute(self, correct_avg_losses, perturbed_avg_losses, aggregator="closer_to_1_better"):
        ratios = truth_ratios(correct_avg_losses, perturbed_avg_losses)
        return {"truth_ratio": aggregate_truth_ratio(ratios, aggregator)}
