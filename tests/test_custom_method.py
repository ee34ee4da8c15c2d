"""The "Adding your own method" guide's example runs as written: its loss equals a hand
computation, it unlearns the memorisation task, and its hyper-parameters reach the model card."""

import math
import re
from pathlib import Path

import pytest
import torch

from trl_unlearn.data import prepare_dataset
from trl_unlearn.testing import mean_token_log_prob, memorisation_task

from ._helpers import config_kwargs, make_setup

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding_a_method.md"


@pytest.fixture(scope="module")
def example():
    text = GUIDE.read_text()
    block = re.search(r"<!-- example:start -->\s*```python\n(.*?)```\s*<!-- example:end -->", text, re.S).group(1)
    namespace: dict = {"__name__": "guide_example"}
    exec(compile(block, str(GUIDE), "exec"), namespace)
    return namespace["MaxEntTrainer"], namespace["MaxEntConfig"]


def test_guide_example_loss_equals_hand_computation(example):
    trainer_cls, config_cls = example
    tok, model, forget, retain = make_setup()
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)  # sharper distributions: a KL to uniform far from 0
    trainer = trainer_cls(model, config_cls(**config_kwargs(temperature=2.0, retain_loss_type="none")),
                          forget_dataset=forget, processing_class=tok)
    items = [trainer.train_dataset[i] for i in range(4)]
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model.eval(), trainer.data_collator(items)).item()
    total, n = 0.0, 0
    for it in items:
        ids = torch.tensor([list(it["forget_prompt_ids"]) + list(it["forget_completion_ids"])])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].double()
        for t in range(len(it["forget_prompt_ids"]), ids.shape[1]):
            logp = torch.log_softmax(logits[t - 1] / 2.0, -1)
            total += (-logp.mean() - math.log(logp.shape[0])).item()
            n += 1
    assert total / n > 0.1
    assert loss == pytest.approx(total / n, rel=1e-5)


def test_guide_example_unlearns_and_reaches_the_model_card(example):
    trainer_cls, config_cls = example
    tok, model, forget, retain = memorisation_task()
    trainer = trainer_cls(model, config_cls(**config_kwargs(num_train_epochs=4, temperature=1.5)),
                          forget_dataset=forget, retain_dataset=retain, processing_class=tok)
    data = prepare_dataset(forget, tok, name="forget", max_length=64)
    before = mean_token_log_prob(trainer.model, data)
    trainer.train()
    assert mean_token_log_prob(trainer.model, data) < before - 0.5
    trainer.create_model_card(model_name="maxent")
    card = (Path(trainer.args.output_dir) / "README.md").read_text()
    assert "MaxEnt" in card and "temperature" in card
