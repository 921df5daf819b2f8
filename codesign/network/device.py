"""Where tensors live: `auto` (CUDA when this machine has it, else the CPU), `cpu`, `cuda` or `cuda:N`.

Training, batch-norm recalibration, fine-tuning and logits run on the device; everything that leaves the
network step (stored weights, logits, ONNX export) is on the CPU. Results on the CPU are the same whatever
the device setting; on a GPU they may differ within floating-point noise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from codesign.errors import CodesignError

if TYPE_CHECKING:
    import torch

DEVICE_FORMAT = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DEVICE_HELP = "auto, cpu, cuda or cuda:N"


def check_device_name(name: object, source: str) -> str:
    """The device setting as written (no PyTorch needed), or a one-line error naming `source`."""
    if not isinstance(name, str) or not DEVICE_FORMAT.match(name):
        raise CodesignError(f"{source} {name!r}: value: expected {DEVICE_HELP}")
    return name


def resolve_device(name: str, source: str = "--device") -> torch.device:
    """The device a setting names on this machine; asking for CUDA where there is none is a one-line error."""
    import torch

    check_device_name(name, source)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise CodesignError(
            f"{source} {name!r}: value: expected a device this machine has, but PyTorch sees no CUDA GPU "
            f"(torch {torch.__version__}); use cpu or auto"
        )
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise CodesignError(
            f"{source} {name!r}: value: expected a CUDA device index below {torch.cuda.device_count()}"
        )
    return torch.device("cuda", index)


def worker_device(name: str, worker_index: int, gpus: int) -> str:
    """The device worker `worker_index` of a local pool uses: with `auto` or `cuda` on a machine with several
    GPUs, one GPU per worker in turn; an explicit `cuda:N` or `cpu` is used as given."""
    if name in ("auto", "cuda") and gpus > 1:
        return f"cuda:{worker_index % gpus}"
    return name
