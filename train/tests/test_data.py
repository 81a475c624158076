"""Trajectory loading, bad input, and the packed batch."""
import json
import os
import random
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from data import DataError, load_records, make_batch  # noqa: E402


def write_lines(tmp_path, lines):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def record(prompt, states):
    return json.dumps({"data_id": "data_0", "jacobian_itr_id": "itr_0", "prompt_ids_len": len(prompt), "prompt_ids": prompt,
                       "answer_trajectory_ids": states, "teacher_output_ids": prompt + states[-1]})


def test_loads_records_and_skips_those_without_a_state_before_the_fixed_point(tmp_path):
    path = write_lines(tmp_path, [record([0, 1, 2], [[3, 3], [4, 5]]), "", record([0, 1], [[4, 5]])])
    assert load_records(path, vocab_size=10) == [([0, 1, 2], [[3, 3], [4, 5]], 3)]


@pytest.mark.parametrize("line, message", [
    ("not json", "t.jsonl:2: not valid JSON"),
    ("[1, 2]", "t.jsonl:2: expected a JSON object"),
    (json.dumps({"data_id": "x", "prompt_ids_len": 1, "prompt_ids": [1]}), "t.jsonl:2: missing field answer_trajectory_ids"),
    (record([0, 1], [[2, 3], [4]]), "t.jsonl:2: prompt_ids and answer_trajectory_ids"),
    (record([0, 1], [[2, 3], [4, 99]]), "t.jsonl:2: token id 99 is out of range for the base model's vocabulary of 10"),
])
def test_bad_lines_are_named_by_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path, [record([0, 1], [[2, 3], [4, 5]]), line])
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        load_records(path, vocab_size=10)


def test_packed_batch_gives_each_block_the_context_and_its_own_causal_past():
    prompt, trajectory = [0, 7, 8], [[1, 1], [2, 1], [2, 3]]
    batch = make_batch([(prompt, trajectory, 3)], context=4, states_per_record=2, rng=random.Random(0), device="cpu")
    tokens, positions, mask = batch["tokens"][0], batch["positions"][0], batch["mask"][0]
    # [pad, context 0 7 8, fixed point 2 3, two states]
    assert tokens[:6].tolist() == [0, 0, 7, 8, 2, 3]
    assert sorted([tokens[6:8].tolist(), tokens[8:10].tolist()]) == [[1, 1], [2, 1]]
    assert positions.tolist() == [0, 0, 1, 2, 3, 4, 3, 4, 3, 4]
    # The second state's tokens see the context and themselves, never the padding, the fixed point or the other state.
    assert mask[9].tolist() == [False, True, True, True, False, False, False, False, True, True]
    assert mask[4].tolist() == [False, True, True, True, True, False, False, False, False, False]
    assert batch["teacher"][0].tolist() == [False, True, True, True, True, True, False, False, False, False]


def test_packed_logits_equal_those_of_each_sequence_alone():
    from model import Llama, LlamaConfig
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=16, context_length=64, n_embd=32, n_layer=2, n_head=4, n_head_kv=2, n_ff=48,
                      rms_eps=1e-5, rope_base=10000.0, tied_embeddings=True)
    model = Llama(cfg).eval()
    prompt, trajectory = [0, 5, 6, 7], [[1, 2, 3], [9, 9, 3]]
    batch = make_batch([(prompt, trajectory, 2)], context=6, states_per_record=1, rng=random.Random(0), device="cpu")
    with torch.no_grad():
        packed = model(batch["tokens"], batch["positions"], batch["mask"])[0]
        alone_fixed = model(torch.tensor([prompt + trajectory[1]]))[0]
        alone_state = model(torch.tensor([prompt + trajectory[0]]))[0]
    assert torch.allclose(packed[2:9], alone_fixed, atol=1e-5)
    assert torch.allclose(packed[9:12], alone_state[4:], atol=1e-5)


def test_replay_is_the_start_of_the_original_prompt_and_sees_only_itself():
    prompt, trajectory = [0, 7, 8, 9, 4, 4], [[1, 1], [2, 3]]  # a 4-token prompt, then an earlier fixed point
    batch = make_batch([(prompt, trajectory, 4)], context=3, states_per_record=1, rng=random.Random(0), device="cpu", replay=5)
    tokens, mask = batch["tokens"][0], batch["mask"][0]
    assert batch["start"] == 8
    assert tokens[:5].tolist() == [0, 0, 7, 8, 9]
    assert batch["replay"][0].tolist() == [False] + [True] * 4 + [False] * 7
    assert batch["positions"][0, 1:5].tolist() == [0, 1, 2, 3]
    assert mask[4, :5].tolist() == [False, True, True, True, True] and not mask[4, 5:].any()
    assert not mask[5:, 1:5].any()  # nothing else sees the replay
