"""Base of the methods that train on a second answer per forget question (IdkNLL, IdkDPO, AltPO)."""

from __future__ import annotations

from ..alternates import prepare_with_alternates
from .unlearning_trainer import UnlearningTrainer


class AlternateAnswerTrainer(UnlearningTrainer):
    """Base of the methods whose forget rows carry a second answer (``forget_alternate_*`` in batches).

    The second answer is the forget data's `alternate_column`; without it, methods with
    ``draws_refusals = True`` draw one refusal per row (see :mod:`trl_unlearn.alternates`).
    """

    draws_refusals = True

    def _prepare_forget_dataset(self, dataset, processing_class, name, args):
        return prepare_with_alternates(
            dataset, processing_class, name=name, column=args.alternate_column, refusals=args.refusals,
            draw_refusals=self.draws_refusals, seed=args.alternate_seed, method=self._name, **self._data_kwargs(args),
        )  # fmt: skip
