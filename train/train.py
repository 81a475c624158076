"""Fine-tunes a llama GGUF into a Consistency LLM on Jacobi trajectories, and writes a GGUF back.

    python train/train.py --base BASE.gguf --data trajectories.jsonl -o cllm.gguf [--steps N] [--lr X]

The loss is the CLLM paper's global consistency loss plus ar_weight times an AR loss that keeps the model's
quality: the paper's cross-entropy on the teacher output (--ar-target teacher), or by default the KL from the
frozen base model on it, plus plain cross-entropy on the start of each record's original prompt (--replay).
"""
import argparse
import copy
import math
import os
import random
import signal
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import DataError, batches, load_records, make_batch  # noqa: E402
from gguf_io import GGUFError, load_model, write_model  # noqa: E402
from losses import ar_loss, base_kl_loss, consistency_loss, consistency_mask  # noqa: E402


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, as every cllm command gives them."""

    def error(self, message):
        print(f"cllm: {message}", file=sys.stderr)
        sys.exit(2)


class DefaultsShown(argparse.HelpFormatter):
    """The help names each option's default, the one place it is set (`cllm train` passes options through)."""

    def _get_help_string(self, action):
        shown = action.default not in (None, argparse.SUPPRESS) and action.default is not False and "%(default)" not in (action.help or "")
        return f"{action.help or ''} (default: %(default)s)".lstrip() if shown else action.help


def parse_args(argv=None):
    p = OneLineParser(prog="cllm train", description=__doc__.split("\n")[1], formatter_class=DefaultsShown)
    p.add_argument("--base", required=True, help="the base model, a llama GGUF")
    p.add_argument("--data", required=True, help="trajectories from `cllm collect` (JSONL)")
    p.add_argument("-o", "--output", required=True, help="the GGUF to write")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps")
    p.add_argument("--batch", type=int, default=8, help="records per step")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=None, help="warmup steps (default: 5%% of --steps)")
    p.add_argument("--ar-weight", type=float, default=10.0, help="weight of the AR loss against the consistency loss")
    p.add_argument("--ar-target", choices=("teacher", "base"), default="base",
                   help="teacher: cross-entropy on the teacher output, as the paper; base: KL from the frozen base model's distribution")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="of the AR loss on the teacher output")
    p.add_argument("--context", type=int, default=128, help="tokens of text before a block that a training example keeps")
    p.add_argument("--replay", type=int, default=128, help="tokens of each record's original prompt (real text) trained on with plain cross-entropy, weighted as the AR loss")
    p.add_argument("--late-states", action="store_true", help="train on the second half of each trajectory only (fewer wrong tokens)")
    p.add_argument("--freeze-embeddings", action="store_true", help="keep the token embeddings (and a tied output layer) as in the base")
    p.add_argument("--states", type=int, default=4, help="trajectory states trained per record and step (they share its context)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping")
    p.add_argument("--save-every", type=int, default=0, help="also write a complete GGUF every N steps, as OUTPUT-stepN.gguf")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data order and the choice of states")
    args = p.parse_args(argv)
    for name in ("steps", "batch", "context", "states"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be a positive integer")
    if args.replay < 0 or args.save_every < 0:
        p.error("--replay and --save-every must be 0 or more")
    if args.lr <= 0 or args.ar_weight < 0 or not 0 <= args.label_smoothing < 1:
        p.error("--lr must be positive, --ar-weight not negative, and --label-smoothing in [0, 1)")
    for what, path in (("base model", args.base), ("trajectory file", args.data)):
        if not os.path.isfile(path):
            p.error(f"{what} not found: {path}")
    if not os.access(os.path.dirname(os.path.abspath(args.output)), os.W_OK):
        p.error(f"cannot write {args.output}: its folder does not exist or is not writable")
    return args


def learning_rate(step, args, warmup):
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return args.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, args.steps - warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_step(model, base, batch, ar_weight, label_smoothing, autocast):
    """The CLLM loss on one packed batch: consistency + ar_weight * AR (against the frozen base, if given)."""
    tokens, start, n, k = batch["tokens"], batch["start"], batch["n"], batch["k"]
    teacher = start + n  # replay, context and fixed point: all that comes before the states
    with autocast:
        logits = model(tokens, batch["positions"], batch["mask"])
        if base is not None:
            with torch.no_grad():
                base_logits = base(tokens[:, :teacher], batch["positions"][:, :teacher], batch["mask"][:, :teacher, :teacher])
    blocks = tokens[:, start:].unflatten(1, (1 + k, n))
    block_logits = logits[:, start:].unflatten(1, (1 + k, n))[:, :, : n - 1]
    mask = consistency_mask(blocks[:, 1:], blocks[:, 0])
    consistency = consistency_loss(block_logits[:, 1:], block_logits[:, 0], mask)
    if base is None:
        ar = ar_loss(logits, tokens, batch["teacher"], label_smoothing)
    else:
        ar = base_kl_loss(logits[:, :teacher], base_logits, batch["teacher"][:, :teacher])
    # Real text keeps the model's quality on real text: the trajectories' contexts are mostly its own output.
    replay = ar_loss(logits, tokens, batch["replay"], label_smoothing=0.0) if batch["replay"].any() else torch.zeros((), device=logits.device)
    return consistency + ar_weight * (ar + replay), consistency, ar, replay


def checkpoint_path(output, step):
    stem, extension = os.path.splitext(output)
    return f"{stem}-step{step}{extension or '.gguf'}"


def main(argv=None):
    args = parse_args(argv)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise GGUFError("--device cuda: this torch build sees no CUDA device")
    # bf16 on CUDA, as the paper trains; float32 on CPU, where bf16 is slow and less exact.
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    model, reader = load_model(args.base)
    records = load_records(args.data, model.cfg.vocab_size)
    model.to(device).train()
    base = copy.deepcopy(model).eval().requires_grad_(False) if args.ar_target == "base" else None
    if args.freeze_embeddings:
        model.token_embd.weight.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    warmup = args.warmup if args.warmup is not None else max(1, args.steps // 20)
    print(f"training {args.base} on {len(records)} trajectories ({args.data}): {args.steps} steps of {args.batch}, "
          f"lr {args.lr:g}, AR weight {args.ar_weight:g} ({args.ar_target}), context {args.context}, {device.type}", file=sys.stderr, flush=True)

    t0 = time.time()
    tokens = 0
    stream = batches(records, args.batch, args.seed)
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args, warmup)
        batch, rng = next(stream)
        packed = make_batch(batch, args.context, args.states, rng, device, args.replay, args.late_states)
        loss, consistency, ar, replay = train_step(model, base, packed, args.ar_weight, args.label_smoothing, autocast)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        tokens += int((packed["positions"] > 0).sum())
        if args.save_every and (step + 1) % args.save_every == 0 and step + 1 < args.steps:
            write_model(model, reader, checkpoint_path(args.output, step + 1))
        if step % 10 == 0 or step == args.steps - 1:
            elapsed = time.time() - t0
            eta = elapsed / (step + 1) * (args.steps - step - 1)
            print(f"step {step + 1}/{args.steps} | consistency {consistency.item():.4f} | ar {ar.item():.4f} | replay {replay.item():.4f} | "
                  f"lr {optimizer.param_groups[0]['lr']:.2e} | {tokens / elapsed:.0f} tok/s | {eta / 60:.1f} min left",
                  file=sys.stderr, flush=True)

    model.cpu().eval()
    write_model(model, reader, args.output)
    elapsed = time.time() - t0
    print(f"wrote {args.output}: {args.steps} steps, {len(records)} trajectories, {tokens} tokens "
          f"in {elapsed / 60:.1f} min", file=sys.stderr, flush=True)


def interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupt)
    try:
        main()
    except (GGUFError, DataError) as err:
        print(f"cllm: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        # write_model writes to a temporary file and renames it, so nothing half-made is left behind.
        print("cllm: interrupted: nothing was written", file=sys.stderr)
        sys.exit(130)
