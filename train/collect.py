"""Jacobi trajectories of many prompts at once, in PyTorch on a CPU or a GPU, in the records of `cllm collect`.

    python train/collect.py --base BASE.gguf --tokenizer TOKENIZER.json --corpus TEXT --per-file 4 -o OUT.jsonl

A batch of prompts is first decoded greedily with a key-value cache. Then every block of every output runs
its Jacobi iterations at once, one pass for all: each block attends to the cached text before it, and starts,
as `cllm collect`'s do, from tokens drawn from its prompt. A block's states end at its fixed point, the
greedy output. --fixed-points-only skips the iterations and writes each block's fixed point alone, for
training on noisy states made on the fly (`train.py --states noisy`).
"""
import argparse
import json
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import CorpusError, TextTokenizer, file_prefixes, read_documents, read_prompts  # noqa: E402
from gguf_io import GGUFError, bos_token, load_model  # noqa: E402
from model import Cache  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="collect.py", description=__doc__.split("\n")[1])
    p.add_argument("--base", required=True, help="the model to collect from, a llama GGUF")
    p.add_argument("--tokenizer", required=True, help="the model's tokenizer in Hugging Face format (tokenizer.json)")
    p.add_argument("--prompts", help="prompts, a JSONL file of {\"prompt\": text} lines")
    p.add_argument("--corpus", help="or source files separated by 0x1E (plain or .xz), cut into prompts")
    p.add_argument("--per-file", type=int, default=4, help="prompts cut from each file of --corpus")
    p.add_argument("--limit", type=int, default=None, help="collect on the first N prompts")
    p.add_argument("-o", "--output", required=True, help="the JSONL to write")
    p.add_argument("--block", type=int, default=16, help="tokens per Jacobi block")
    p.add_argument("--max-tokens", type=int, default=256, help="tokens to generate per prompt (whole blocks)")
    p.add_argument("--batch", type=int, default=32, help="prompts decoded at once")
    p.add_argument("--fixed-points-only", action="store_true", help="write each block's fixed point, without its trajectory")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prompts cut from --corpus and of the blocks' random starts")
    args = p.parse_args(argv)
    if (args.prompts is None) == (args.corpus is None):
        p.error("give --prompts or --corpus")
    return args


def greedy(model, prompts, new_tokens):
    """Greedy continuations of a batch of prompts (left-padded to one length), `new_tokens` each. Returns the
    padded tokens (batch, longest + new_tokens) and the cache of every token but the last."""
    device = next(model.parameters()).device
    longest = max(len(p) for p in prompts)
    pads = torch.tensor([longest - len(p) for p in prompts], device=device)
    tokens = torch.zeros(len(prompts), longest, dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):
        tokens[row, longest - len(prompt):] = torch.tensor(prompt)
    index = torch.arange(longest + new_tokens, device=device)
    real = index[None, :] >= pads[:, None]  # keys that are text, not padding
    positions = (index[None, :] - pads[:, None]).clamp(min=0)
    causal = index[:longest, None] >= index[None, :longest]
    mask = (causal[None] & real[:, None, :longest]) | torch.eye(longest, dtype=torch.bool, device=device)
    cache = Cache(longest + new_tokens)
    logits = model(tokens, positions[:, :longest], mask, cache)
    for step in range(new_tokens):
        chosen = logits[:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat((tokens, chosen), dim=1)
        if step + 1 < new_tokens:
            end = longest + step + 1
            logits = model(chosen, positions[:, end - 1:end], real[:, None, :end], cache)
    return tokens, pads, cache


def jacobi_trajectories(model, tokens, pads, cache, prompt_lengths, n, rng):
    """The Jacobi states of every block of every output in `tokens`, all blocks iterated together. Returns
    states[row][block] (the last one the fixed point) and the count of blocks whose iterations settled
    elsewhere than the greedy output (a numerical near-tie; their fixed point is set to the greedy one)."""
    device = tokens.device
    rows, width = tokens.shape
    answer_start = int(pads[0]) + prompt_lengths[0]  # the same padded index for every row
    blocks = (width - answer_start) // n
    cached = cache.length
    fixed = tokens[:, answer_start:answer_start + blocks * n].view(rows, blocks, n)
    starts = [[rng.choice(tokens[row, answer_start - prompt_lengths[row]:answer_start].tolist()) for _ in range(blocks * n)] for row in range(rows)]
    state = torch.tensor(starts, device=device).view(rows, blocks, n)
    history = [[[s] for s in row] for row in state.tolist()]
    # Block b's tokens sit at the positions after its context: the prompt and the fixed points of blocks < b.
    block_start = (answer_start + torch.arange(blocks, device=device) * n)[None, :].expand(rows, -1)
    positions = (block_start - pads[:, None])[:, :, None] + torch.arange(n, device=device)
    key = torch.arange(cached, device=device)
    sees_text = (key[None, None, :] < block_start[:, :, None]) & (key[None, None, :] >= pads[:, None, None])
    own = torch.arange(n, device=device)
    causal = own[:, None] >= own[None, :]
    same_block = torch.eye(blocks, dtype=torch.bool, device=device)
    own_mask = (same_block[:, None, :, None] & causal[None, :, None, :]).reshape(blocks * n, blocks * n)
    mask = torch.cat((sees_text.repeat_interleave(n, dim=1), own_mask[None].expand(rows, -1, -1)), dim=2)
    done = torch.zeros(rows, blocks, dtype=torch.bool, device=device)
    for _ in range(n + 1):
        logits = model(state.view(rows, -1), positions.view(rows, -1), mask, cache, keep=False)
        # A block's first token is the one its context predicts, the greedy output's; token j follows state[:j].
        nxt = torch.cat((fixed[:, :, :1], logits.argmax(-1).view(rows, blocks, n)[:, :, :-1]), dim=2)
        settled = (nxt == state).all(-1)
        done |= settled
        changed = ~done
        states_now = nxt.tolist()  # one copy from the GPU, not one a block
        for row, block in changed.nonzero().tolist():
            history[row][block].append(states_now[row][block])
        state = torch.where(changed[:, :, None], nxt, state)
        if done.all():
            break
    elsewhere = 0
    fixed_points = fixed.tolist()
    for row in range(rows):
        for block in range(blocks):
            if history[row][block][-1] != fixed_points[row][block]:
                history[row][block].append(fixed_points[row][block])
                elsewhere += 1
    return history, elsewhere


def records_of(data_id, prompt, output, states, n, eos):
    """cllm collect's records of one prompt, its blocks up to the first that holds EOS, less the whole output
    that cllm collect repeats in each (the last block's teacher_output_ids is that output)."""
    blocks = len(output) // n
    for b in range(blocks):
        if eos in output[b * n:(b + 1) * n]:
            blocks = b + 1
            break
    for b in range(blocks):
        context = prompt + output[:b * n]
        trajectory = states[b] if states else [output[b * n:(b + 1) * n]]
        yield {"data_id": f"data_{data_id}", "jacobian_itr_id": f"itr_{b}", "prompt_ids_len": len(prompt), "prompt_ids": context,
               "answer_trajectory_ids": trajectory, "teacher_output_ids": context + trajectory[-1]}


def repetitive(tokens, eos, run=10):
    """`cllm collect`'s cleaning rule: one token `run` times in a row before the first EOS."""
    count = 1
    for a, b in zip(tokens, tokens[1:]):
        if b == eos:
            break
        count = count + 1 if a == b else 1
        if count >= run:
            return True
    return False


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    model, reader = load_model(args.base)
    model.to(device).eval().requires_grad_(False)
    # Exact float32 products on a GPU too: fixed points must be the greedy output that llama.cpp gives.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tokenizer = TextTokenizer(args.tokenizer, bos_token(reader))
    eos = reader.fields["tokenizer.ggml.eos_token_id"].contents()
    texts = read_prompts(args.prompts) if args.prompts else file_prefixes(read_documents(args.corpus), args.per_file, args.seed)
    texts = texts[:args.limit]
    n = args.block
    new_tokens = -(-args.max_tokens // n) * n
    room = model.cfg.context_length - new_tokens
    prompts = [tokenizer.encode(t)[:room] for t in texts]
    # Prompts of like length share a batch: less padding.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    rng = random.Random(args.seed)
    written = dropped = elsewhere = blocks = 0
    t0 = time.time()
    print(f"collecting on {len(prompts)} prompts, block {n}, {new_tokens} tokens each, {device.type}", file=sys.stderr, flush=True)
    with open(args.output + ".partial", "w") as out, torch.no_grad():
        for first in range(0, len(order), args.batch):
            ids = order[first:first + args.batch]
            batch = [prompts[i] for i in ids]
            tokens, pads, cache = greedy(model, batch, new_tokens)
            lengths = [len(p) for p in batch]
            states, off = (None, 0) if args.fixed_points_only else jacobi_trajectories(model, tokens, pads, cache, lengths, n, rng)
            elsewhere += off
            answer_start = tokens.shape[1] - new_tokens
            for row, i in enumerate(ids):
                output = tokens[row, answer_start:].tolist()
                if repetitive(output, eos):
                    dropped += 1
                    continue
                for record in records_of(i, batch[row], output, states[row] if states else None, n, eos):
                    out.write(json.dumps(record) + "\n")
                    blocks += 1
                written += 1
            done = first + len(ids)
            rate = done / (time.time() - t0) * 3600
            print(f"{done}/{len(prompts)} prompts | {blocks} blocks | {rate:.0f} prompts/hour", file=sys.stderr, flush=True)
    os.replace(args.output + ".partial", args.output)
    elapsed = time.time() - t0
    print(f"wrote {args.output}: {written} prompts, {blocks} blocks ({dropped} prompts dropped as repetitive, {elsewhere} blocks "
          f"settled off the greedy output) in {elapsed / 60:.1f} min, {len(prompts) / elapsed * 3600:.0f} prompts/hour", file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        main()
    except (GGUFError, CorpusError) as err:
        print(f"cllm: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("cllm: interrupted: nothing was written", file=sys.stderr)
        sys.exit(130)
