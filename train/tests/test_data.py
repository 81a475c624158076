"""Trajectory loading, bad input, noisy blocks and the packed batch."""
import json
import os
import random
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from data import DataError, load_sequences, make_batch, noisy_state, rows_of  # noqa: E402
from model import Cache, Llama, LlamaConfig  # noqa: E402


def write_lines(tmp_path, lines):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def record(context, states, prompt_len=None, data_id="data_0"):
    return json.dumps({"data_id": data_id, "jacobian_itr_id": "itr_0", "prompt_ids_len": prompt_len or len(context), "prompt_ids": context,
                       "answer_trajectory_ids": states, "teacher_output_ids": context + states[-1]})


def lines_of_two_prompts():
    return [record([0, 1, 2], [[3, 3], [4, 5]]), "", record([0, 1, 2, 4, 5], [[6, 7]], prompt_len=3), record([0, 9], [[1, 1], [2, 2]], data_id="data_1")]


def test_loads_whole_sequences(tmp_path):
    lines = lines_of_two_prompts()
    sequences = load_sequences(write_lines(tmp_path, lines), vocab_size=10)
    assert [s["tokens"] for s in sequences] == [[0, 1, 2, 4, 5, 6, 7], [0, 9, 2, 2]]
    assert sequences[0]["blocks"] == [(3, [[3, 3], [4, 5]]), (5, [[6, 7]])]


@pytest.mark.parametrize("line, message", [
    ("not json", "t.jsonl:2: not valid JSON"),
    ("[1, 2]", "t.jsonl:2: expected a JSON object"),
    (json.dumps({"data_id": "x", "prompt_ids_len": 1, "prompt_ids": [1]}), "t.jsonl:2: missing field answer_trajectory_ids"),
    (record([0, 1], [[2, 3], [4]]), "t.jsonl:2: prompt_ids and answer_trajectory_ids"),
    (record([0, 1], [[2, 3], [4, 99]]), "t.jsonl:2: token id 99 is out of range for the base model's vocabulary of 10"),
    (record([0, 1], [[2, 3, 4]], data_id="data_1"), "t.jsonl: the blocks are not all of one size"),
])
def test_bad_lines_are_named_by_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path, [record([0, 1], [[2, 3], [4, 5]]), line])
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        load_sequences(path, vocab_size=10)


def test_a_noisy_block_keeps_a_clean_prefix_and_draws_the_rest_from_the_context():
    rng = random.Random(0)
    fixed, context = [1, 2, 3, 4], [7, 8]
    assert noisy_state(fixed, context, 0.5, rng)[:2] == [1, 2]
    assert all(t in context for t in noisy_state(fixed, context, 0.5, rng)[2:])
    assert noisy_state(fixed, context, 0.01, rng)[:3] == [1, 2, 3]  # at least one token is noise
    assert all(t in context for t in noisy_state(fixed, context, 1.0, rng))


def sequence():
    # prompt [0 7 8], then blocks [2 3] (states [1 1], [2 1]) and [5 6] (states [4 4])
    return {"id": "data_0", "tokens": [0, 7, 8, 2, 3, 5, 6], "blocks": [(3, [[1, 1], [2, 1], [2, 3]]), (5, [[4, 4], [5, 6]])]}


def test_packed_row_is_the_whole_sequence_then_states_that_see_the_text_before_their_block():
    batch = make_batch([sequence()], states_per_row=2, rng=random.Random(0), device="cpu", windows=[[0, 4, 4]])
    tokens, positions, mask = batch["tokens"], batch["positions"], batch["mask"]
    assert tokens.shape == (2, 11)
    assert tokens[0, :7].tolist() == [0, 7, 8, 2, 3, 5, 6]
    starts = {tuple(batch["fixed_columns"][0, j].tolist()): j for j in range(2)}
    second = starts[(5, 6)]  # the state of the block at positions 5 and 6
    columns = batch["state_columns"][0, second].tolist()
    assert tokens[0, columns].tolist() == [4, 4] and positions[0, columns].tolist() == [5, 6]
    # It sees the sequence before position 5 and itself, causally; not the rest of the sequence or the other state.
    assert mask[0, columns[1]].tolist() == [True] * 5 + [False] * 2 + [c in columns for c in range(7, 11)]
    assert mask[0, columns[0], columns[1]].item() is False
    # The window is a row of its own, text only, with no states.
    assert tokens[1, :3].tolist() == [0, 4, 4] and batch["text"][1].tolist() == [True] * 3 + [False] * 8
    assert batch["has_states"].tolist() == [True, False]
    assert rows_of(batch, slice(1, None))["tokens"].tolist() == tokens[1:].tolist()


def test_packed_logits_equal_those_of_each_sequence_alone():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=16, context_length=64, n_embd=32, n_layer=2, n_head=4, n_head_kv=2, n_ff=48,
                      rms_eps=1e-5, rope_base=10000.0, tied_embeddings=True)
    model = Llama(cfg).eval()
    batch = make_batch([sequence()], states_per_row=2, rng=random.Random(0), device="cpu", noisy=True)
    with torch.no_grad():
        packed = model(batch["tokens"], batch["positions"], batch["mask"])[0]
        assert torch.allclose(packed[:7], model(torch.tensor([sequence()["tokens"]]))[0], atol=1e-5)
        for j in range(2):
            columns = batch["state_columns"][0, j]
            start = int(batch["fixed_columns"][0, j, 0])
            alone = model(torch.tensor([sequence()["tokens"][:start] + batch["tokens"][0, columns].tolist()]))[0]
            assert torch.allclose(packed[columns], alone[start:], atol=1e-5)


def test_the_cache_gives_the_logits_of_one_whole_pass():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=16, context_length=64, n_embd=32, n_layer=2, n_head=4, n_head_kv=4, n_ff=48,
                      rms_eps=1e-5, rope_base=10000.0, tied_embeddings=True)
    model = Llama(cfg).eval()
    tokens = torch.randint(0, 16, (1, 9))
    with torch.no_grad():
        whole = model(tokens)
        cache = Cache(9)
        first = model(tokens[:, :6], None, None, cache)
        ahead = model(tokens[:, 6:], torch.arange(6, 9)[None], torch.tril(torch.ones(3, 9, dtype=torch.bool), 6)[None], cache, keep=False)
        assert cache.length == 6
        rest = model(tokens[:, 6:], torch.arange(6, 9)[None], torch.tril(torch.ones(3, 9, dtype=torch.bool), 6)[None], cache)
    assert torch.allclose(torch.cat((first, rest), 1), whole, atol=1e-5)
    assert torch.allclose(ahead, rest) and cache.length == 9
