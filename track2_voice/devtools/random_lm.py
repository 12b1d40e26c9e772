"""A random LM in the safetensors layout, written tensor by tensor: the exact names and
shapes come from a model built on the meta device (no memory), the values are drawn one
tensor at a time, so memory stays at the largest tensor even for the 7B model.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

ST_DTYPES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
HEADER_ALIGN = 8  # safetensors pads its JSON header to a multiple of 8 bytes


def lm_tensors(lm_kwargs: dict[str, Any], dtype_name: str) -> list[tuple[str, tuple, str]]:
    """(name, shape, init) for every tensor of the LM, from a model built on the meta
    device: exact names and shapes, no memory. ``init`` is how to fill it (see ``_fill``)."""
    import torch
    from moshi.models.loaders import get_moshi_lm

    dtype = getattr(torch, dtype_name)
    lm = get_moshi_lm(None, lm_kwargs=lm_kwargs, device="meta", dtype=dtype)
    how: dict[str, str] = {}
    for mod_name, mod in lm.named_modules():
        kind = type(mod).__name__
        for p_name, _ in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if p_name == "bias":
                how[full] = "zeros"
            elif "Embedding" in kind:
                how[full] = "normal"
            elif "Norm" in kind:
                how[full] = "ones"
            else:
                how[full] = "fan_in"
    return [(k, tuple(v.shape), how.get(k, "zeros")) for k, v in lm.state_dict().items()]


def _fill(shape: tuple, init: str, dtype, gen):
    """Values like torch's defaults: Linear uniform(+-1/sqrt(fan_in)), Embedding N(0, 1),
    norms 1, biases 0 (activations stay finite through 32 random layers)."""
    import torch

    if init == "ones":
        return torch.ones(shape, dtype=dtype)
    if init == "zeros":
        return torch.zeros(shape, dtype=dtype)
    if init == "normal":
        return torch.randn(shape, generator=gen).to(dtype)
    bound = 1.0 / math.sqrt(shape[-1] if len(shape) > 1 else 1)
    return (torch.rand(shape, generator=gen) * (2 * bound) - bound).to(dtype)


def safetensors_header(tensors: list[tuple[str, tuple, str]], dtype_name: str) -> bytes:
    """The 8-byte length + JSON header of a safetensors file holding ``tensors`` in order."""
    itemsize = 4 if dtype_name == "float32" else 2
    meta: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in tensors:
        size = math.prod(shape) * itemsize
        meta[name] = {
            "dtype": ST_DTYPES[dtype_name],
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    header = json.dumps(meta, separators=(",", ":")).encode()
    header += b" " * (-len(header) % HEADER_ALIGN)
    return struct.pack("<Q", len(header)) + header


def write_lm(path: Path, lm_kwargs: dict[str, Any], dtype_name: str, seed: int) -> int:
    """Stream the LM's random weights into ``path``; returns the bytes written."""
    import torch

    dtype = getattr(torch, dtype_name)
    tensors = lm_tensors(lm_kwargs, dtype_name)
    gen = torch.Generator().manual_seed(seed)
    with open(path, "wb") as f:
        f.write(safetensors_header(tensors, dtype_name))
        for _, shape, init in tensors:
            t = _fill(shape, init, dtype, gen).contiguous()
            view = t.view(torch.int16) if t.element_size() == 2 else t
            f.write(view.numpy().tobytes())
    return path.stat().st_size
