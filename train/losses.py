"""The losses of CLLM training (Kou et al. 2024): global consistency, and an anchor that keeps the model's
quality. Each returns a sum over the positions it counts and their number, so that a step over several
processes averages over the whole batch, as one process would."""
import torch
import torch.nn.functional as F


def consistency_mask(states, fixed_point):
    """Which block logits the consistency loss counts: those at the first wrong token of a state and after.

    states, fixed_point: (..., n). Block logit i sits on token i and predicts the token after it, the last one
    the next block's first token (a sliding decoder reuses it). A logit that saw only right tokens is the fixed
    point's own, so it counts nowhere.
    """
    return torch.cumsum((states != fixed_point).int(), dim=-1) > 0


def consistency_sum(state_logits, fixed_point_logits, mask):
    """Soft cross-entropy from the model's own detached logits on the fixed point to its logits on the states,
    over the masked positions. Logits (..., vocab), mask (...)."""
    target = F.softmax(fixed_point_logits[mask].detach().float(), dim=-1)
    return -(target * F.log_softmax(state_logits[mask].float(), dim=-1)).sum(), int(mask.sum())


def predicting(sequence):
    """Positions whose logits predict a next token of the sequence: (batch, time) bool, True on one contiguous
    run per row -> (batch, time - 1)."""
    return sequence[:, :-1] & sequence[:, 1:]


def ar_sum(logits, tokens, sequence, label_smoothing=0.0):
    """Next-token cross-entropy: logits[:, j] against tokens[:, j + 1], wherever both belong to the sequence."""
    where = predicting(sequence)
    loss = F.cross_entropy(logits[:, :-1][where].float(), tokens[:, 1:][where], label_smoothing=label_smoothing, reduction="sum")
    return loss, int(where.sum())


def kl_sum(logits, base_logits, sequence):
    """KL(base || model) of the next-token distributions over the sequence: keeps the model's whole
    distribution where the base had it, where cross-entropy on greedy output would sharpen it to the argmax."""
    where = predicting(sequence)
    log_model = F.log_softmax(logits[:, :-1][where].float(), dim=-1)
    log_base = F.log_softmax(base_logits[:, :-1][where].detach().float(), dim=-1)
    return F.kl_div(log_model, log_base, log_target=True, reduction="sum"), int(where.sum())
