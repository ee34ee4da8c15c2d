"""Raw-text (MUSE ``raw``) unlearning: chunking, loss on every token after the first, all trainers."""

import pytest
import torch
from datasets import Dataset

from trl_unlearn import DiPOConfig, DiPOTrainer, GradDiffConfig, GradDiffTrainer, NPOConfig, NPOTrainer
from trl_unlearn.testing import make_model, make_tokenizer

from ._helpers import config_kwargs

TEXTS = ["the red book was written in paris by a famous author . " * 3, "the blue novel won an award in rome ."]
RETAIN = ["the green city of oslo has many writers and books .", "tokyo and lima are cities ."]


@pytest.mark.parametrize("trainer_cls, config_cls", [(NPOTrainer, NPOConfig), (DiPOTrainer, DiPOConfig),
                                                     (GradDiffTrainer, GradDiffConfig)])
def test_trainers_accept_raw_text_and_lower_its_likelihood(trainer_cls, config_cls):
    tok = make_tokenizer(TEXTS + RETAIN)
    model = make_model(tok)
    # memorise the texts first: DiPO moves mass off the model's confident tokens, which must be the text's
    ids = tok(TEXTS + RETAIN, padding=True, return_tensors="pt")
    labels = ids["input_ids"].masked_fill(ids["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = model(**ids, labels=labels).loss
        opt.zero_grad(), loss.backward(), opt.step()
    args = config_cls(**config_kwargs(max_length=16, per_device_train_batch_size=2, num_train_epochs=3))
    trainer = trainer_cls(model, args, forget_dataset=Dataset.from_dict({"text": TEXTS}),
                          retain_dataset=Dataset.from_dict({"text": RETAIN}), processing_class=tok)
    forget = trainer.forget_data
    n_tokens = [len(tok(t)["input_ids"]) for t in TEXTS]
    assert len(forget) == sum(-(-n // 16) for n in n_tokens)  # chunks of at most 16 tokens
    assert all(len(p) == 1 for p in forget["prompt_ids"])  # only the first token is unscored
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(forget))])
    assert (batch["forget_labels"] != -100).sum().item() == sum(n - 1 for n in
                                                               [len(p) + len(c) for p, c in zip(forget["prompt_ids"], forget["completion_ids"])])

    def nll():
        with torch.no_grad():
            out = trainer.model(input_ids=batch["forget_input_ids"], attention_mask=batch["forget_attention_mask"],
                                labels=batch["forget_labels"])
        return out.loss.item()

    before = nll()
    trainer.train()
    assert nll() > before + 0.2, (before, nll())
