"""Fine-tunes a llama GGUF into a Consistency LLM on Jacobi trajectories, and writes a GGUF back.

    python train/train.py --base BASE.gguf --data trajectories.jsonl -o cllm.gguf [--steps N] [--lr X]
    torchrun --nproc-per-node 2 train/train.py ...      (the same steps over several processes or GPUs)

The loss is the CLLM paper's global consistency loss plus ar_weight times an anchor that keeps the model's
quality: by default the KL from the frozen base model over each prompt's whole sequence and over windows of
real text (--corpus); or the paper's cross-entropy on the teacher output (--ar-target teacher).
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
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import CorpusError, TextTokenizer, Windows, read_documents  # noqa: E402
from data import DataError, batches, load_sequences, make_batch, rows_of  # noqa: E402
from gguf_io import GGUFError, bos_token, load_model, write_model  # noqa: E402
from losses import ar_sum, consistency_mask, consistency_sum, kl_sum  # noqa: E402


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
    p.add_argument("--base", required=True, help="the base model, a llama GGUF: the anchor's reference, and the weights trained unless --init")
    p.add_argument("--data", required=True, help="trajectories from `cllm collect` or train/collect.py (JSONL)")
    p.add_argument("-o", "--output", required=True, help="the GGUF to write")
    p.add_argument("--init", help="start from this model's weights instead of the base's (a second round on a CLLM's own trajectories)")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps; the learning rate anneals over exactly these")
    p.add_argument("--batch", type=int, default=8, help="prompts per step")
    p.add_argument("--states", type=int, default=8, help="block states trained per prompt and step (they share its sequence)")
    p.add_argument("--noisy", action="store_true", help="train on noisy blocks made on the fly from the fixed points (JacobiForcing) instead of the collected states")
    p.add_argument("--refresh", action="store_true", help="with --noisy: replace each noisy block by one Jacobi iteration of the current model on it, so that states stay on-policy")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=None, help="warmup steps (default: 5%% of --steps)")
    p.add_argument("--ar-weight", type=float, default=10.0, help="weight of the anchor against the consistency loss")
    p.add_argument("--ar-target", choices=("base", "teacher"), default="base",
                   help="base: KL from the frozen base model's distribution; teacher: cross-entropy on the text, as the paper")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="of --ar-target teacher (the paper: 0.1)")
    p.add_argument("--corpus", help="real text for the anchor: source files separated by 0x1E (plain or .xz)")
    p.add_argument("--tokenizer", help="the base's tokenizer in Hugging Face format, for --corpus")
    p.add_argument("--windows", type=int, default=2, help="windows of --corpus text per step, half from a file's start")
    p.add_argument("--window-tokens", default="512,1024", help="the shortest and longest window, in tokens")
    p.add_argument("--freeze-embeddings", action="store_true", help="keep the token embeddings (and a tied output layer) as in the base")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data order, the states and the windows")
    args = p.parse_args(argv)
    for name in ("steps", "batch", "states"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be a positive integer")
    if args.lr <= 0 or args.ar_weight < 0 or not 0 <= args.label_smoothing < 1 or args.windows < 0:
        p.error("--lr must be positive, --ar-weight and --windows not negative, and --label-smoothing in [0, 1)")
    if args.refresh and not args.noisy:
        p.error("--refresh refreshes the noisy blocks of --noisy")
    try:
        args.window_tokens = tuple(int(v) for v in args.window_tokens.split(","))
        assert len(args.window_tokens) == 2 and 1 < args.window_tokens[0] <= args.window_tokens[1]
    except (ValueError, AssertionError):
        p.error("--window-tokens takes the shortest and longest window, as 512,1024")
    if args.corpus and not args.tokenizer:
        p.error("--corpus needs --tokenizer, the base model's tokenizer.json")
    for what, path in (("base model", args.base), ("trajectory file", args.data), ("initial model", args.init),
                       ("corpus", args.corpus), ("tokenizer", args.tokenizer)):
        if path is not None and not os.path.isfile(path):
            p.error(f"{what} not found: {path}")
    if not os.access(os.path.dirname(os.path.abspath(args.output)), os.W_OK):
        p.error(f"cannot write {args.output}: its folder does not exist or is not writable")
    return args


def learning_rate(step, args, warmup):
    """Linear warmup, then cosine decay to a tenth of the peak at the last step."""
    if step < warmup:
        return args.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, args.steps - 1 - warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def refresh_states(model, batch):
    """One Jacobi iteration of the current model on every state, without gradients: a block's first token is
    its context's prediction (the fixed point's), token j the model's choice after state[:j]."""
    with torch.no_grad():
        logits = model(batch["tokens"], batch["positions"], batch["mask"])
    rows = torch.arange(logits.shape[0], device=logits.device)[:, None, None]
    chosen = logits.argmax(-1)[rows, batch["state_columns"]]
    first = batch["tokens"][rows, batch["fixed_columns"][:, :, :1]]
    nxt = torch.cat((first, chosen[:, :, :-1]), dim=2)
    tokens = batch["tokens"].clone()
    keep = batch["has_states"][:, None, None].expand_as(nxt)
    tokens[rows.expand_as(nxt)[keep], batch["state_columns"][keep]] = nxt[keep]
    return {**batch, "tokens": tokens}


def loss_sums(model, base, batch, args, autocast):
    """The step's loss terms as (sum, count) pairs: consistency over the states' wrong positions, the anchor over
    the text (the prompts' sequences and the windows)."""
    tokens, width = batch["tokens"], batch["text_width"]
    with autocast:
        logits = model(tokens, batch["positions"], batch["mask"])
        if base is not None:
            with torch.no_grad():
                base_logits = base(tokens[:, :width])
    rows = torch.arange(tokens.shape[0], device=tokens.device)[:, None, None]
    states, fixed = tokens[rows, batch["state_columns"]], tokens[rows, batch["fixed_columns"]]
    mask = consistency_mask(states, fixed) & batch["has_states"][:, None, None]
    consistency = consistency_sum(logits[rows, batch["state_columns"]], logits[rows, batch["fixed_columns"]], mask)
    if base is None:
        anchor = ar_sum(logits[:, :width], tokens[:, :width], batch["text"][:, :width], args.label_smoothing)
    else:
        anchor = kl_sum(logits[:, :width], base_logits, batch["text"][:, :width])
    return consistency, anchor


class Processes:
    """One process, or several under torchrun: each takes its share of the rows of every step's batch, and the
    losses are divided by counts summed over all, so that the gradients are those of one process."""

    def __init__(self, device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = device
        if self.world > 1:
            if device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def total(self, values):
        summed = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(summed)
        return summed.tolist()

    def say(self, text):
        if self.rank == 0:
            print(text, file=sys.stderr, flush=True)


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
    processes = Processes(device)
    device = processes.device
    # bf16 on CUDA, as the paper trains; float32 on CPU, where bf16 is slow and less exact.
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    base, reader = load_model(args.base)
    model = load_model(args.init)[0] if args.init else copy.deepcopy(base)
    sequences = load_sequences(args.data, base.cfg.vocab_size)
    windows = None
    if args.corpus and args.windows:
        windows = Windows(read_documents(args.corpus), TextTokenizer(args.tokenizer, bos_token(reader)), *args.window_tokens, args.seed)
    model.to(device).train()
    base = base.to(device).eval().requires_grad_(False) if args.ar_target == "base" else None
    if args.freeze_embeddings:
        model.token_embd.weight.requires_grad_(False)
    trained = model
    if processes.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    warmup = args.warmup if args.warmup is not None else max(1, args.steps // 20)
    states = "noisy blocks" + (", refreshed" if args.refresh else "") if args.noisy else "collected states"
    processes.say(f"training {args.init or args.base} on {len(sequences)} prompts ({args.data}, {states}): {args.steps} steps of {args.batch} "
                  f"prompts x {args.states} states + {args.windows if windows else 0} text windows, lr {args.lr:g}, anchor {args.ar_target} x {args.ar_weight:g}, "
                  f"{device.type}" + (f", {processes.world} processes" if processes.world > 1 else ""))

    t0 = time.time()
    tokens = 0
    stream = batches(sequences, args.batch, args.seed)
    share = slice(processes.rank, None, processes.world)
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args, warmup)
        chosen, rng = next(stream)
        text = windows.draw(args.windows) if windows else ()
        packed = rows_of(make_batch(chosen, args.states, rng, device, args.noisy, text), share)
        if args.refresh:
            packed = refresh_states(trained, packed)
        (c_sum, c_count), (a_sum, a_count) = loss_sums(model, base, packed, args, autocast)
        c_total, a_total = processes.total([c_count, a_count])
        # Times the world size: DistributedDataParallel averages the processes' gradients.
        loss = processes.world * (c_sum / max(c_total, 1) + args.ar_weight * a_sum / max(a_total, 1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        tokens += int(packed["text"].sum()) + int(packed["has_states"].sum()) * packed["state_columns"][0].numel()
        if step % 10 == 0 or step == args.steps - 1:
            consistency, anchor = processes.total([c_sum.item(), a_sum.item()])
            elapsed = time.time() - t0
            eta = elapsed / (step + 1) * (args.steps - step - 1)
            processes.say(f"step {step + 1}/{args.steps} | consistency {consistency / max(c_total, 1):.4f} | ar {anchor / max(a_total, 1):.4f} | "
                          f"lr {optimizer.param_groups[0]['lr']:.2e} | {tokens * processes.world / elapsed:.0f} tok/s | {eta / 60:.1f} min left")

    if processes.rank == 0:
        trained.cpu().eval()
        write_model(trained, reader, args.output)
    elapsed = time.time() - t0
    processes.say(f"wrote {args.output}: {args.steps} steps, {len(sequences)} prompts in {elapsed / 60:.1f} min")
    if processes.world > 1:
        dist.destroy_process_group()


def interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupt)
    try:
        main()
    except (GGUFError, DataError, CorpusError) as err:
        print(f"cllm: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        # write_model writes to a temporary file and renames it, so nothing half-made is left behind.
        print("cllm: interrupted: nothing was written", file=sys.stderr)
        sys.exit(130)
