"""Memory figures of a PyTorch training step, for the bench peers:
peak RSS of the process, and the bytes autograd saves for backward during one
forward pass (torch.autograd.graph.saved_tensors_hooks), counted once per
storage and without the model's parameters (frozen or trained) or the batch:
the counterpart of lorakit's planned activations (src/graph/cost.ts)."""
import resource

import torch


def peak_rss_bytes():
    """This process's peak resident memory. Linux: VmHWM, the high-water mark of
    this program's own address space. Not ru_maxrss there: it keeps the RSS of
    the process that forked it (here the benchmark's Node process, gigabytes
    after lorakit's run) as a floor across exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # ru_maxrss is KiB on Linux


def saved_for_backward_bytes(forward, exclude):
    """forward(): builds the loss; exclude: tensors whose storage is not counted."""
    skip = {t.storage().data_ptr() for t in exclude}
    seen = {}

    def pack(t):
        s = t.storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.size() * s.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = forward()
    loss.backward()
    return sum(seen.values()), len(seen)
