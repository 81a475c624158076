"""Jacobi trajectories (the JSONL of `cllm collect` or train/collect.py) as training examples."""
import json
import random

import torch

REQUIRED = ("data_id", "prompt_ids_len", "prompt_ids", "answer_trajectory_ids", "teacher_output_ids")


class DataError(Exception):
    """A trajectory file cllm cannot train on: shown to the user as one line."""


def load_sequences(path, vocab_size):
    """The prompts of a trajectory file, each as {"tokens": prompt and whole greedy output, "blocks": [(start,
    states)]}: a block's states end at its fixed point, which sits in tokens at start .. start + n. Records of
    one prompt follow each other, as both collectors write them; their ids are checked against the vocabulary."""
    sequences = []
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
            context, states, prompt_len = record["prompt_ids"], record["answer_trajectory_ids"], record["prompt_ids_len"]
            if not _ids(context) or not isinstance(states, list) or not states or not all(_ids(s) and len(s) == len(states[0]) for s in states):
                raise DataError(f"{where}: prompt_ids and answer_trajectory_ids must be token id lists, the states of one length")
            if not isinstance(prompt_len, int) or not 0 < prompt_len <= len(context):
                raise DataError(f"{where}: prompt_ids_len must be a length within prompt_ids")
            largest = max(max(context), *(max(s) for s in states))
            if largest >= vocab_size:
                raise DataError(f"{where}: token id {largest} is out of range for the base model's vocabulary of {vocab_size}: were these trajectories collected with another model?")
            teacher = context + states[-1]
            current = sequences[-1] if sequences else None
            if current is None or current["id"] != record["data_id"] or teacher[:len(current["tokens"])] != current["tokens"][:len(teacher)]:
                current = {"id": record["data_id"], "tokens": [], "blocks": []}
                sequences.append(current)
            if len(teacher) > len(current["tokens"]):
                current["tokens"] = teacher
            current["blocks"].append((len(context), states))
    if not sequences:
        raise DataError(f"{path}: no records")
    n = len(sequences[0]["blocks"][0][1][0])
    if any(len(states[0]) != n for s in sequences for _, states in s["blocks"]):
        raise DataError(f"{path}: the blocks are not all of one size")
    return sequences


def _ids(value):
    return isinstance(value, list) and len(value) > 0 and all(isinstance(t, int) and t >= 0 for t in value)


def noisy_state(fixed_point, context, noise, rng):
    """JacobiForcing's noisy block: the fixed point's first tokens kept, the rest (a share `noise` of the
    block, at least one token) drawn from the context's text, as a Jacobi decoder's first guesses are."""
    n = len(fixed_point)
    clean = min(n - 1, round(n * (1 - noise)))
    return fixed_point[:clean] + [rng.choice(context) for _ in range(n - clean)]


def choose_states(sequence, k, rng, noisy):
    """k (block start, state) pairs of one sequence. From a trajectory: a random state before the fixed point.
    Noisy: the k states take noise levels spread over (0, 1], one in each k-th, so that every row trains on
    blocks from nearly right to all wrong: the progressive schedule of JacobiForcing."""
    blocks = sequence["blocks"] if noisy else [b for b in sequence["blocks"] if len(b[1]) > 1]
    if not blocks:
        return []
    picked = rng.sample(blocks, k) if len(blocks) >= k else blocks + rng.choices(blocks, k=k - len(blocks))
    chosen = []
    for j, (start, states) in enumerate(picked):
        if noisy:
            chosen.append((start, noisy_state(states[-1], sequence["tokens"][:start], (j + rng.random()) / k, rng)))
        else:
            chosen.append((start, rng.choice(states[:-1])))
    return chosen


def make_batch(sequences, states_per_row, rng, device, noisy=False, windows=()):
    """One step's examples, packed so that each prompt's whole sequence is evaluated once for all its blocks.

    A row is [prompt and greedy output, state 1, ..., state k]: the sequence at its real positions, causal;
    each state at its block's positions, attending to the sequence before its block and causally to itself.
    The fixed point's logits, the consistency loss's target, are the sequence's own at the block's positions.
    Windows of real text follow as rows of their own, with no states. Rows are right-padded. Returns the
    tensors and, per state, the columns of its tokens and of its fixed point.
    """
    k = states_per_row
    rows = [(s["tokens"], choose_states(s, k, rng, noisy)) for s in sequences]
    rows = [(tokens, chosen) for tokens, chosen in rows if chosen] + [(list(w), []) for w in windows]
    if not rows:
        raise DataError("no block with a state before its fixed point")
    n = next((len(chosen[0][1]) for _, chosen in rows if chosen), 1)
    width = max(len(tokens) + len(chosen) * n for tokens, chosen in rows)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)
    positions = torch.zeros_like(tokens)
    segment = torch.full_like(tokens, -1)  # -1 padding, 0 the text, j the j-th state
    sees_until = torch.full_like(tokens, width)  # a state sees the text before its block only
    state_columns = torch.zeros(len(rows), k, n, dtype=torch.long)
    fixed_columns = torch.zeros_like(state_columns)
    has_states = torch.zeros(len(rows), dtype=torch.bool)
    for row, (sequence, chosen) in enumerate(rows):
        t = len(sequence)
        tokens[row, :t] = torch.tensor(sequence)
        positions[row, :t] = torch.arange(t)
        segment[row, :t] = 0
        has_states[row] = bool(chosen)
        for j, (start, state) in enumerate(chosen):
            columns = torch.arange(t + j * n, t + (j + 1) * n)
            tokens[row, columns] = torch.tensor(state)
            positions[row, columns] = torch.arange(start, start + n)
            segment[row, columns] = j + 1
            sees_until[row, columns] = start
            state_columns[row, j] = columns
            fixed_columns[row, j] = torch.arange(start, start + n)
    # The mask, rows x width x width, is made where it is used: on a GPU, it would take longer to copy there.
    segment, sees_until = segment.to(device), sees_until.to(device)
    index = torch.arange(width, device=device)
    causal = index[None, :, None] >= index[None, None, :]
    query, key = segment[:, :, None], segment[:, None, :]
    sees_text = (key == 0) & (index[None, None, :] < sees_until[:, :, None])
    mask = causal & (key >= 0) & (sees_text | (key == query))
    mask |= torch.eye(width, dtype=torch.bool, device=device)  # a padding row attends to itself, so that it stays finite
    return {
        "tokens": tokens.to(device),
        "positions": positions.to(device),
        "mask": mask,
        "text": segment == 0,
        "text_width": max(len(tokens) for tokens, _ in rows),
        "has_states": has_states.to(device),
        "state_columns": state_columns.to(device),
        "fixed_columns": fixed_columns.to(device),
    }


def rows_of(batch, rows):
    """The rows `rows` (a slice) of a packed batch: one process's share of a step over several."""
    return {key: value[rows] if torch.is_tensor(value) else value for key, value in batch.items()}


def batches(sequences, batch_size, seed):
    """Endless shuffled passes over the sequences, batch_size at a time."""
    rng = random.Random(seed)
    order = []
    while True:
        if len(order) < batch_size:
            extra = list(range(len(sequences)))
            rng.shuffle(extra)
            order += extra
        yield [sequences[i] for i in order[:batch_size]], rng
        order = order[batch_size:]
