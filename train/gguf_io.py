"""Reads a llama GGUF into a PyTorch Llama, and writes one back with every metadata key of the base."""
import os

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize, quantize

from model import Llama, LlamaConfig

# Keys that GGUFWriter writes itself.
_WRITER_KEYS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture"}


class GGUFError(Exception):
    """A model file cllm cannot train: shown to the user as one line."""


def _field(reader, key, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def read_config(reader):
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise GGUFError(f"the base model's architecture is {arch!r}; cllm train handles llama models only")
    names = {t.name for t in reader.tensors}
    n_embd = _field(reader, "llama.embedding_length")
    n_head = _field(reader, "llama.attention.head_count")
    vocab = _field(reader, "llama.vocab_size") or len(_field(reader, "tokenizer.ggml.tokens", []))
    rope_dims = _field(reader, "llama.rope.dimension_count", n_embd // n_head)
    if rope_dims != n_embd // n_head:
        raise GGUFError("partial RoPE (rope.dimension_count below the head size) is not supported")
    return LlamaConfig(
        vocab_size=vocab,
        context_length=_field(reader, "llama.context_length"),
        n_embd=n_embd,
        n_layer=_field(reader, "llama.block_count"),
        n_head=n_head,
        n_head_kv=_field(reader, "llama.attention.head_count_kv", n_head),
        n_ff=_field(reader, "llama.feed_forward_length"),
        rms_eps=_field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5),
        rope_base=_field(reader, "llama.rope.freq_base", 10000.0),
        tied_embeddings="output.weight" not in names,
    )


def _parameter_name(tensor_name):
    return tensor_name.replace("blk.", "blocks.", 1)


def _to_float32(tensor):
    if tensor.tensor_type in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
        return np.asarray(tensor.data, dtype=np.float32)
    try:
        return dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError:
        raise GGUFError(f"tensor {tensor.name} has type {tensor.tensor_type.name}, which cllm train cannot read")


def load_model(path):
    """Returns (model, reader): the model in float32, and the reader that write_model copies metadata from."""
    try:
        reader = GGUFReader(path)
    except OSError as err:
        raise GGUFError(f"cannot read {path}: {err.strerror}")
    except ValueError as err:
        raise GGUFError(f"{path} is not a valid GGUF file: {err}")
    cfg = read_config(reader)
    model = Llama(cfg)
    params = dict(model.named_parameters())
    seen = set()
    for tensor in reader.tensors:
        name = _parameter_name(tensor.name)
        if name not in params:
            raise GGUFError(f"{path} has tensor {tensor.name}, which a plain llama does not have")
        data = torch.from_numpy(_to_float32(tensor).copy())
        if data.shape != params[name].shape:
            raise GGUFError(f"tensor {tensor.name} has shape {tuple(data.shape)}, expected {tuple(params[name].shape)}")
        with torch.no_grad():
            params[name].copy_(data)
        seen.add(name)
    missing = set(params) - seen
    if missing:
        raise GGUFError(f"{path} lacks tensors: {', '.join(sorted(missing))}")
    return model, reader


def write_model(model, reader, path):
    """Writes model's weights with the base's metadata, tensor names, order and types; atomically."""
    params = dict(model.named_parameters())
    temporary = path + ".partial"
    writer = GGUFWriter(temporary, _field(reader, "general.architecture"))
    try:
        for key, field in reader.fields.items():
            if key in _WRITER_KEYS:
                continue
            sub_type = field.types[1] if field.types[0] == GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub_type)
        for tensor in reader.tensors:
            data = params[_parameter_name(tensor.name)].detach().float().cpu().numpy()
            kind = tensor.tensor_type
            if kind == GGMLQuantizationType.F32:
                writer.add_tensor(tensor.name, data.astype(np.float32))
            elif kind == GGMLQuantizationType.F16:
                writer.add_tensor(tensor.name, data.astype(np.float16))
            else:
                writer.add_tensor(tensor.name, quantize(data, kind), raw_dtype=kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def bos_token(reader):
    """The token llama.cpp puts before every text it tokenizes, or None where the model adds none."""
    add = _field(reader, "tokenizer.ggml.add_bos_token", True)
    return _field(reader, "tokenizer.ggml.bos_token_id") if add else None
