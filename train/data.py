"""Jacobi trajectories from `cllm collect` (JSONL, one block a line) as training examples."""
import json
import random

import torch

REQUIRED = ("data_id", "prompt_ids_len", "prompt_ids", "answer_trajectory_ids", "teacher_output_ids")


class DataError(Exception):
    """A trajectory file cllm cannot train on: shown to the user as one line."""


def load_records(path, vocab_size):
    """Every record with at least one state before its fixed point, as (prompt_ids, states, prompt length),
    checked against the model's vocabulary."""
    records = []
    try:
        lines = open(path, encoding="utf-8")
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}")
    with lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{where}: not valid JSON ({err.msg}); expected the JSONL of `cllm collect`")
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object, the record of one block")
            missing = [key for key in REQUIRED if key not in record]
            if missing:
                raise DataError(f"{where}: missing field {missing[0]}")
            prompt, states, prompt_len = record["prompt_ids"], record["answer_trajectory_ids"], record["prompt_ids_len"]
            if not _ids(prompt) or not isinstance(states, list) or not states or not all(_ids(s) and len(s) == len(states[0]) for s in states):
                raise DataError(f"{where}: prompt_ids and answer_trajectory_ids must be token id lists, the states of one length")
            if not isinstance(prompt_len, int) or not 0 < prompt_len <= len(prompt):
                raise DataError(f"{where}: prompt_ids_len must be a length within prompt_ids")
            largest = max(max(prompt), *(max(s) for s in states))
            if largest >= vocab_size:
                raise DataError(f"{where}: token id {largest} is out of range for the base model's vocabulary of {vocab_size}: were these trajectories collected with another model?")
            if len(states) > 1:
                records.append((prompt, states, prompt_len))
    if not records:
        raise DataError(f"{path}: no record with a state before its fixed point")
    return records


def _ids(value):
    return isinstance(value, list) and len(value) > 0 and all(isinstance(t, int) and t >= 0 for t in value)


def make_batch(records, context, states_per_record, rng, device, replay=0, late_states=False):
    """One step's examples, packed so that a record's context is evaluated once for all its blocks.

    Each row is [replay, context, fixed point, state 1, ..., state k]. The context is the record's prompt_ids
    cut to its last `context` tokens (the first, BOS, kept: the model attends to it everywhere); the fixed
    point and k random non-final states each attend to the context and causally to themselves, at the
    positions that follow the context, as if each came right after it. The replay is the first `replay`
    tokens of the record's original prompt, real text, attending only to itself. Replay and context are
    left-padded to their full width. late_states takes the states from the second half of each trajectory
    only, those with fewer wrong tokens, which look like the drafts a decoder feeds after its first steps.
    """
    n = len(records[0][1][0])
    k = states_per_record
    start = replay + context  # where the blocks begin
    width = start + (1 + k) * n
    tokens = torch.zeros(len(records), width, dtype=torch.long)
    positions = torch.zeros_like(tokens)
    segment = torch.full_like(tokens, -1)  # -1 padding, 0 context, 1 fixed point, 2..k+1 states, k+2 replay
    for row, (prompt, trajectory, prompt_len) in enumerate(records):
        if replay:
            real = prompt[: min(prompt_len, replay)]
            tokens[row, replay - len(real):replay] = torch.tensor(real)
            positions[row, replay - len(real):replay] = torch.arange(len(real))
            segment[row, replay - len(real):replay] = k + 2
        if len(prompt) > context:
            prompt = prompt[:1] + prompt[len(prompt) - context + 1:]
        c = len(prompt)
        earlier = trajectory[len(trajectory) // 2 if late_states else 0:-1] or trajectory[:-1]
        chosen = rng.sample(earlier, k) if len(earlier) >= k else earlier + rng.choices(earlier, k=k - len(earlier))
        tokens[row, start - c:] = torch.tensor(prompt + trajectory[-1] + sum(chosen, []))
        positions[row, start - c:start] = torch.arange(c)
        positions[row, start:] = torch.arange(c, c + n).repeat(1 + k)
        segment[row, start - c:start] = 0
        segment[row, start:] = torch.arange(1, k + 2).repeat_interleave(n)
    index = torch.arange(width)
    causal = index[None, :, None] >= index[None, None, :]
    query, key = segment[:, :, None], segment[:, None, :]
    mask = causal & (key >= 0) & ((key == 0) | (key == query))
    mask |= torch.eye(width, dtype=torch.bool)  # a padding row attends to itself, so that it stays finite
    return {
        "tokens": tokens.to(device),
        "positions": positions.to(device),
        "mask": mask.to(device),
        # the teacher sequence (context + fixed point), where the AR loss counts
        "teacher": ((segment == 0) | (segment == 1)).to(device),
        "replay": (segment == k + 2).to(device),
        "start": start,
        "n": n,
        "k": k,
    }


def batches(records, batch_size, seed):
    """Endless shuffled passes over the records, batch_size at a time."""
    rng = random.Random(seed)
    order = []
    while True:
        if len(order) < batch_size:
            extra = list(range(len(records)))
            rng.shuffle(extra)
            order += extra
        yield [records[i] for i in order[:batch_size]], rng
        order = order[batch_size:]
