"""The trainer's losses on hand-made tensors."""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from losses import ar_loss, base_kl_loss, consistency_loss, consistency_mask  # noqa: E402


def test_mask_counts_from_the_logit_that_predicts_the_first_wrong_token():
    fixed_point = torch.tensor([[5, 6, 7, 8, 9]])
    states = torch.tensor([[[5, 6, 1, 2, 9], [5, 6, 7, 8, 9], [0, 6, 7, 8, 9]]])
    mask = consistency_mask(states, fixed_point)
    # Block logit i predicts token i + 1: the first state is wrong from token 2 on, so logits 1.. count.
    assert mask.tolist() == [[[False, True, True, True], [False, False, False, False], [True, True, True, True]]]


def test_consistency_loss_is_zero_when_the_state_is_the_fixed_point():
    fixed_point = torch.tensor([[1, 2, 3, 4]])
    states = fixed_point.unsqueeze(1).clone()
    teacher = torch.randn(1, 3, 10)
    student = torch.randn(1, 1, 3, 10, requires_grad=True)
    loss = consistency_loss(student, teacher, consistency_mask(states, fixed_point))
    loss.backward()
    assert loss.item() == 0
    assert torch.count_nonzero(student.grad) == 0


def test_consistency_loss_is_the_soft_cross_entropy_over_the_masked_positions_only():
    teacher = torch.randn(1, 3, 10)
    student = torch.randn(1, 1, 3, 10)
    mask = torch.tensor([[[False, True, True]]])
    expected = -(teacher.softmax(-1) * student[:, 0].log_softmax(-1)).sum(-1)[0, 1:].mean()
    assert torch.allclose(consistency_loss(student, teacher, mask), expected)
    # What the unmasked position holds never matters.
    changed = student.clone()
    changed[0, 0, 0] = 100
    assert torch.allclose(consistency_loss(changed, teacher, mask), expected)


def test_consistency_loss_sends_no_gradient_to_the_teacher():
    teacher = torch.randn(1, 2, 6, requires_grad=True)
    student = torch.randn(1, 1, 2, 6, requires_grad=True)
    consistency_loss(student, teacher, torch.tensor([[[True, True]]])).backward()
    assert teacher.grad is None
    assert student.grad is not None


def test_ar_loss_counts_next_tokens_inside_the_sequence_with_label_smoothing():
    vocab = 4
    tokens = torch.tensor([[0, 1, 2, 3, 1]])
    sequence = torch.tensor([[False, True, True, True, False]])  # padding, then a 3-token sequence, then another part
    logits = torch.zeros(1, 5, vocab)
    logits[0, 1, 2] = 5.0  # right about token 2
    logits[0, 2, 0] = 5.0  # wrong about token 3
    loss = ar_loss(logits, tokens, sequence, label_smoothing=0.0)
    right = -torch.log_softmax(logits[0, 1], -1)[2]
    wrong = -torch.log_softmax(logits[0, 2], -1)[3]
    assert torch.allclose(loss, (right + wrong) / 2)
    smoothed = ar_loss(torch.zeros(1, 5, vocab), tokens, sequence, label_smoothing=0.1)
    assert math.isclose(smoothed.item(), math.log(vocab), rel_tol=1e-6)


def test_base_kl_is_zero_for_the_base_itself_and_counts_only_the_sequence():
    sequence = torch.tensor([[False, True, True, True, False]])
    base = torch.randn(1, 5, 7)
    assert base_kl_loss(base.clone(), base, sequence).abs().item() < 1e-6
    changed = base.clone()
    changed[0, 0] += 3.0  # padding: not counted
    changed[0, 3] += 3.0  # the last token of the sequence predicts past it: not counted
    assert base_kl_loss(changed, base, sequence).abs().item() < 1e-6
    changed[0, 2, 1] += 3.0
    assert base_kl_loss(changed, base, sequence).item() > 0.01
