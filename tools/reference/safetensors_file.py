"""The safetensors writer the reference scripts share (no `safetensors` package
needed): u64 header length, JSON header with {"format": "pt"} metadata and
sorted tensor names, header padded with spaces to 8 bytes, raw little-endian data."""
import json
import struct

import torch

ST_DTYPE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def tensor_bytes(t, dtype="F32"):
    t = t.detach().to(ST_DTYPE[dtype]).contiguous()
    if dtype == "BF16":
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, dtype="F32"):
    """Writes `tensors` (name -> torch tensor) stored as `dtype`; returns the data size in bytes."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = tensor_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off
