"""The trainer's losses on hand-made tensors."""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from losses import ar_sum, consistency_mask, consistency_sum, kl_sum  # noqa: E402


def test_mask_counts_from_the_first_wrong_token_through_the_last_position():
    fixed_point = torch.tensor([5, 6, 7, 8, 9])
    states = torch.tensor([[5, 6, 1, 2, 9], [5, 6, 7, 8, 9], [0, 6, 7, 8, 9], [5, 6, 7, 8, 0]])
    # Block logit i sits on token i: it has seen a wrong token from the first wrong one on. The last logit,
    # which predicts the next block's first token, counts too.
    assert consistency_mask(states, fixed_point).tolist() == [
        [False, False, True, True, True], [False] * 5, [True] * 5, [False, False, False, False, True]]


def test_consistency_is_zero_when_the_state_is_the_fixed_point():
    fixed_point = torch.tensor([[1, 2, 3, 4]])
    teacher = torch.randn(1, 4, 10)
    student = torch.randn(1, 4, 10, requires_grad=True)
    total, count = consistency_sum(student, teacher, consistency_mask(fixed_point.clone(), fixed_point))
    total.backward()
    assert (total.item(), count) == (0, 0)
    assert torch.count_nonzero(student.grad) == 0


def test_consistency_is_the_soft_cross_entropy_summed_over_the_masked_positions_only():
    teacher = torch.randn(1, 3, 10)
    student = torch.randn(1, 3, 10)
    mask = torch.tensor([[False, True, True]])
    expected = -(teacher.softmax(-1) * student.log_softmax(-1)).sum(-1)[0, 1:].sum()
    total, count = consistency_sum(student, teacher, mask)
    assert torch.allclose(total, expected) and count == 2
    changed = student.clone()
    changed[0, 0, 0] = 100  # what the unmasked position holds never matters
    assert torch.allclose(consistency_sum(changed, teacher, mask)[0], expected)


def test_consistency_sends_no_gradient_to_the_teacher():
    teacher = torch.randn(1, 2, 6, requires_grad=True)
    student = torch.randn(1, 2, 6, requires_grad=True)
    consistency_sum(student, teacher, torch.tensor([[True, True]]))[0].backward()
    assert teacher.grad is None and student.grad is not None


def test_ar_counts_next_tokens_inside_the_sequence_with_optional_label_smoothing():
    vocab = 4
    tokens = torch.tensor([[0, 1, 2, 3, 1]])
    sequence = torch.tensor([[False, True, True, True, False]])  # padding, a 3-token sequence, something else
    logits = torch.zeros(1, 5, vocab)
    logits[0, 1, 2] = 5.0  # right about token 2
    logits[0, 2, 0] = 5.0  # wrong about token 3
    total, count = ar_sum(logits, tokens, sequence)
    right = -torch.log_softmax(logits[0, 1], -1)[2]
    wrong = -torch.log_softmax(logits[0, 2], -1)[3]
    assert torch.allclose(total, right + wrong) and count == 2
    smoothed, count = ar_sum(torch.zeros(1, 5, vocab), tokens, sequence, label_smoothing=0.1)
    assert math.isclose(smoothed.item() / count, math.log(vocab), rel_tol=1e-6)


def test_kl_is_zero_for_the_base_itself_and_counts_only_the_sequence():
    sequence = torch.tensor([[False, True, True, True, False]])
    base = torch.randn(1, 5, 7)
    assert kl_sum(base.clone(), base, sequence)[0].abs().item() < 1e-6
    changed = base.clone()
    changed[0, 0] += 3.0  # padding: not counted
    changed[0, 3] += 3.0  # the last token of the sequence predicts past it: not counted
    assert kl_sum(changed, base, sequence)[0].abs().item() < 1e-6
    changed[0, 2, 1] += 3.0
    assert kl_sum(changed, base, sequence)[0].item() > 0.01
