"""A llama in PyTorch that reads llama.cpp's tensors as they are.

llama.cpp's NORM RoPE rotates adjacent pairs (2i, 2i+1) of each head, so with the weights in their GGUF
layout (no Q/K permutation) this computes what llama.cpp computes.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class LlamaConfig:
    vocab_size: int
    context_length: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    rms_eps: float
    rope_base: float
    tied_embeddings: bool

    @property
    def head_dim(self):
        return self.n_embd // self.n_head


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(head_dim, positions, base):
    """cos and sin of every rotation angle: (batch, 1, time, head_dim / 2) for positions (batch, time)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = (positions.float()[..., None] * inv_freq).unsqueeze(1)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    # x: (batch, heads, time, head_dim); rotate each adjacent pair (x[2i], x[2i+1]) by angle i.
    pairs = x.float().unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        kv_dim = cfg.n_head_kv * cfg.head_dim
        self.attn_norm = RMSNorm(cfg.n_embd, cfg.rms_eps)
        self.attn_q = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.attn_k = nn.Linear(cfg.n_embd, kv_dim, bias=False)
        self.attn_v = nn.Linear(cfg.n_embd, kv_dim, bias=False)
        self.attn_output = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.ffn_norm = RMSNorm(cfg.n_embd, cfg.rms_eps)
        self.ffn_gate = nn.Linear(cfg.n_embd, cfg.n_ff, bias=False)
        self.ffn_up = nn.Linear(cfg.n_embd, cfg.n_ff, bias=False)
        self.ffn_down = nn.Linear(cfg.n_ff, cfg.n_embd, bias=False)

    def forward(self, x, cos, sin, mask, past=None):
        """past: this layer's cached (keys, values) of earlier tokens, or None. Returns (x, (keys, values)) with
        the new tokens' keys and values appended."""
        cfg = self.cfg
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = self.attn_q(h).view(b, t, cfg.n_head, cfg.head_dim).transpose(1, 2)
        k = self.attn_k(h).view(b, t, cfg.n_head_kv, cfg.head_dim).transpose(1, 2)
        v = self.attn_v(h).view(b, t, cfg.n_head_kv, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if past is not None:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        gqa = cfg.n_head_kv != cfg.n_head
        if mask is None:
            attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        else:
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1), enable_gqa=gqa)
        x = x + self.attn_output(attn.transpose(1, 2).reshape(b, t, cfg.n_embd))
        h = self.ffn_norm(x)
        return x + self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h)), (k, v)


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.token_embd = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.output_norm = RMSNorm(cfg.n_embd, cfg.rms_eps)
        self.output = None if cfg.tied_embeddings else nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)

    def forward(self, tokens, positions=None, mask=None, cache=None):
        """tokens: (batch, time) ids -> logits (batch, time, vocab).

        By default a causal sequence from position 0. Packed sequences pass their own positions (batch, time)
        and a boolean mask (batch, time, time): True where a query may attend to a key.

        With a cache (a list, empty at first), the tokens follow the cached ones: the mask is then (batch,
        time, cached + time), and the list is given every layer's keys and values, new tokens included, so
        that the next call continues from there. A caller that only looks ahead keeps a copy of the list.
        """
        if positions is None:
            positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
        cos, sin = rope_tables(self.cfg.head_dim, positions, self.cfg.rope_base)
        x = self.token_embd(tokens)
        cached = bool(cache)
        for i, block in enumerate(self.blocks):
            x, present = block(x, cos, sin, mask, cache[i] if cached else None)
            if cache is not None:
                cache[i:i + 1] = [present]
        x = self.output_norm(x)
        weight = self.token_embd.weight if self.output is None else self.output.weight
        return F.linear(x, weight)
