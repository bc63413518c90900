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


def read_safetensors(path):
    """Reads a safetensors file (F32 / F64 tensors) into name -> torch tensor, and its metadata."""
    dtypes = {"F32": torch.float32, "F64": torch.float64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if v["dtype"] not in dtypes:
            raise ValueError(f"{path}: tensor '{k}' is {v['dtype']}; this reader takes F32 and F64")
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(data[a:b]), dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out, header.get("__metadata__", {})
