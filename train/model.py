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

    def forward(self, x, cos, sin, mask, cache=None, layer=0, keep=True):
        cfg = self.cfg
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = self.attn_q(h).view(b, t, cfg.n_head, cfg.head_dim).transpose(1, 2)
        k = self.attn_k(h).view(b, t, cfg.n_head_kv, cfg.head_dim).transpose(1, 2)
        v = self.attn_v(h).view(b, t, cfg.n_head_kv, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.attend(layer, k, v, keep)
        gqa = cfg.n_head_kv != cfg.n_head
        if mask is None:
            attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        else:
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1), enable_gqa=gqa)
        x = x + self.attn_output(attn.transpose(1, 2).reshape(b, t, cfg.n_embd))
        h = self.ffn_norm(x)
        return x + self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h))


class Cache:
    """Every layer's keys and values of the tokens decoded so far, in buffers with room for `capacity`
    tokens, written in place: growing a cache by concatenation would copy all of it at every token."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.length = 0
        self.keys, self.values = [], []

    def attend(self, layer, k, v, keep):
        """The keys and values a layer's new tokens attend to: the cached ones, then their own. keep stores
        the new ones (the model then advances `length`); otherwise the pass only looks ahead."""
        if layer == len(self.keys):
            shape = (*k.shape[:2], self.capacity, k.shape[3])
            self.keys.append(k.new_empty(shape))
            self.values.append(v.new_empty(shape))
        old, new = self.length, self.length + k.shape[2]
        if not keep:
            return torch.cat((self.keys[layer][:, :, :old], k), 2), torch.cat((self.values[layer][:, :, :old], v), 2)
        self.keys[layer][:, :, old:new] = k
        self.values[layer][:, :, old:new] = v
        return self.keys[layer][:, :, :new], self.values[layer][:, :, :new]


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.token_embd = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.output_norm = RMSNorm(cfg.n_embd, cfg.rms_eps)
        self.output = None if cfg.tied_embeddings else nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)

    def forward(self, tokens, positions=None, mask=None, cache=None, keep=True):
        """tokens: (batch, time) ids -> logits (batch, time, vocab).

        By default a causal sequence from position 0. Packed sequences pass their own positions (batch, time)
        and a boolean mask (batch, time, time): True where a query may attend to a key.

        With a Cache, the tokens follow the cached ones: the mask is then (batch, time, cached + time), and
        the tokens are added to the cache unless keep is False.
        """
        if positions is None:
            positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
        cos, sin = rope_tables(self.cfg.head_dim, positions, self.cfg.rope_base)
        x = self.token_embd(tokens)
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache, layer, keep)
        if cache is not None and keep:
            cache.length += tokens.shape[1]
        x = self.output_norm(x)
        weight = self.token_embd.weight if self.output is None else self.output.weight
        return F.linear(x, weight)
