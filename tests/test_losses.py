import math

import pytest
import torch

from trl_unlearn import losses
from trl_unlearn.ops import IGNORE_INDEX, gather_log_probs, sequence_log_probs, token_log_probs


def _logsig(x):
    return -math.log1p(math.exp(-x))


def test_npo_loss_matches_hand_computation():
    beta = 0.1
    policy, reference = torch.tensor([-12.0, -3.5]), torch.tensor([-10.0, -4.0])
    expected = [-(2 / beta) * _logsig(-beta * (p - r)) for p, r in zip(policy.tolist(), reference.tolist())]
    torch.testing.assert_close(losses.npo_loss(policy, reference, beta), torch.tensor(expected))


def test_npo_loss_at_reference_is_two_over_beta_log_two():
    for beta in (0.1, 1.0, 2.5):
        value = losses.npo_loss(torch.tensor([-7.0]), torch.tensor([-7.0]), beta)
        assert value.item() == pytest.approx(2 / beta * math.log(2), rel=1e-6)


def test_simnpo_loss_matches_hand_computation():
    beta, delta = 4.5, 0.3
    logps, lengths = torch.tensor([-6.0, -20.0]), torch.tensor([3.0, 5.0])
    expected = [-(2 / beta) * _logsig(beta * (-lp / n - delta)) for lp, n in zip(logps.tolist(), lengths.tolist())]
    torch.testing.assert_close(losses.simnpo_loss(logps, lengths, beta, delta), torch.tensor(expected))


def test_token_log_probs_shift_and_mask_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, 4, IGNORE_INDEX], [IGNORE_INDEX, 1, 2, 6, 0]])
    log_probs, mask = token_log_probs(logits, labels)
    for b in range(2):
        total, n = 0.0, 0
        for t in range(1, 5):
            if labels[b, t] != IGNORE_INDEX:
                lp = torch.log_softmax(logits[b, t - 1], -1)[labels[b, t]].item()
                assert log_probs[b, t - 1].item() == pytest.approx(lp, abs=1e-5)
                total, n = total + lp, n + 1
            else:
                assert log_probs[b, t - 1].item() == 0.0 and not mask[b, t - 1]
        s, count = sequence_log_probs(logits, labels)
        assert s[b].item() == pytest.approx(total, abs=1e-5) and count[b].item() == n


def test_gather_log_probs_chunking_is_exact():
    torch.manual_seed(1)
    logits, targets = torch.randn(5, 3, 11), torch.randint(0, 11, (5, 3))
    full = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(gather_log_probs(logits, targets, chunk_size=2), full)


def test_kl_divergence_per_token_by_hand():
    p_logits, q_logits = torch.tensor([[[0.0, 1.0, 2.0]]]), torch.tensor([[[1.0, 0.0, 0.5]]])
    p, q = p_logits.softmax(-1)[0, 0], q_logits.softmax(-1)[0, 0]
    expected = sum(p[i] * math.log(p[i] / q[i]) for i in range(3))
    assert losses.kl_divergence_per_token(p_logits, q_logits).item() == pytest.approx(float(expected), rel=1e-5)
    assert losses.kl_divergence_per_token(p_logits, p_logits).item() == pytest.approx(0.0, abs=1e-7)
