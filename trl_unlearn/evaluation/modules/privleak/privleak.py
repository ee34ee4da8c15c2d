"""Membership-inference AUC and PrivLeak as an ``evaluate`` metric."""

import datasets
import evaluate

from trl_unlearn.evaluation.metrics import mia_auc, privleak
from trl_unlearn.evaluation.spec import MUSE

_DESCRIPTION = """
ROC AUC of a membership-inference attack on forget (members, label 0) vs holdout (label 1)
examples, with loss-like attack scores (higher = looks unseen), as in open-unlearning; and
PrivLeak = ((1 - AUC) - (1 - AUC_ref)) / ((1 - AUC_ref) + 1e-10) * 100 against the AUC of the
retain (TOFU) / retrain (MUSE) model (0.5 without one). PrivLeak near 0 matches the reference;
towards -100 the forget set is still detectable.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): per-example attack scores (e.g. Min-K% with k = 0.4).
    references (`list` of `int`): 0 for forget examples, 1 for holdout examples.
    reference_auc (`float`, default 0.5): AUC of the same attack on the reference model.
Returns:
    auc (`float`), privleak (`float`).
Examples:
    >>> metric = evaluate.load(metric_module_path("privleak"))
    >>> metric.compute(predictions=[0.1, 0.2, 0.9, 0.8], references=[0, 0, 1, 1])
    {'auc': 1.0, 'privleak': -99.99999998}
"""

_CITATION = MUSE.citation


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PrivLeak(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=[f"https://arxiv.org/abs/{MUSE.paper_id}"],
        )

    def _compute(self, predictions, references, reference_auc=0.5):
        labels = set(references)
        if not labels <= {0, 1} or len(labels) != 2:
            raise ValueError(
                "references must label forget examples 0 and holdout examples 1, with both present; "
                f"got labels {sorted(labels)}."
            )
        forget = [s for s, y in zip(predictions, references) if y == 0]
        holdout = [s for s, y in zip(predictions, references) if y == 1]
        auc = mia_auc(forget, holdout)
        return {"auc": auc, "privleak": privleak(auc, reference_auc)}
