"""The two losses of CLLM training (Kou et al. 2024): global consistency and autoregressive."""
import torch
import torch.nn.functional as F


def consistency_mask(states, fixed_point):
    """Which block logits the consistency loss counts: those that predict the first wrong token or a later one.

    states: (batch, k, n) trajectory states; fixed_point: (batch, n). Block logit i sits on token i and predicts
    token i + 1, so there are n - 1 of them (the last one predicts past the block). A state equal to its fixed
    point counts nowhere. Returns (batch, k, n - 1).
    """
    wrong_so_far = torch.cumsum((states != fixed_point.unsqueeze(1)).int(), dim=-1) > 0
    return wrong_so_far[..., 1:]


def consistency_loss(state_logits, fixed_point_logits, mask):
    """Soft cross-entropy from the model's own detached logits on the fixed point to its logits on the states,
    averaged over the masked positions. state_logits (batch, k, n - 1, vocab), fixed_point_logits (batch, n - 1,
    vocab), mask (batch, k, n - 1)."""
    if not mask.any():
        return state_logits.sum() * 0
    target = F.softmax(fixed_point_logits.detach().float(), dim=-1).unsqueeze(1).expand_as(state_logits)
    per_position = -(target * F.log_softmax(state_logits.float(), dim=-1)).sum(-1)
    return per_position[mask].mean()


def predicting(sequence):
    """Positions whose logits predict a next token of the sequence: (batch, time) bool, True on one contiguous
    run per row -> (batch, time - 1)."""
    return sequence[:, :-1] & sequence[:, 1:]


def ar_loss(logits, tokens, sequence, label_smoothing=0.1):
    """Next-token cross-entropy with label smoothing: logits[:, j] against tokens[:, j + 1], wherever both
    tokens belong to the sequence."""
    targets = tokens[:, 1:].masked_fill(~predicting(sequence), -100)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100, label_smoothing=label_smoothing)


def base_kl_loss(logits, base_logits, sequence):
    """KL(base || model) of the next-token distributions over the sequence: keeps the model's whole
    distribution where the base had it, where the AR loss on greedy output sharpens it toward the argmax."""
    where = predicting(sequence)
    log_model = F.log_softmax(logits[:, :-1][where].float(), dim=-1)
    log_base = F.log_softmax(base_logits[:, :-1][where].detach().float(), dim=-1)
    return F.kl_div(log_model, log_base, log_target=True, reduction="batchmean")
