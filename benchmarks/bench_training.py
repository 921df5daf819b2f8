"""Training throughput: supernet training against a plain PyTorch training loop on the same data and device.

For a workload's space (default: the CIFAR-10 MobileNetV2 preset, on synthetic data of CIFAR-10's shape
unless the dataset is found locally), in one run, interleaved:

* supernet training steps as `codesign` runs them (`supernet_step`: the largest network, the smallest and
  `random_subnets` random ones, with distillation), images/s;
* a plain training loop of the largest sub-network: the same layers as ordinary `nn.Conv2d` /
  `nn.BatchNorm2d` modules of its sizes (no weight slicing), cross-entropy on every exit, images/s;
* the ratio per sub-network forward/backward pass (supernet step / passes per step, against one plain
  step of the largest network): the issue's target is <= 1.2;
* the weight-sharing overhead proper: a supernet step against plain steps of exactly the same sub-networks
  (same losses, distillation included);
* evaluation: candidate logits (the quantized largest network, inference) images/s;
* what a full supernet training of the workload takes on this device at the measured speed.

    .venv/bin/python benchmarks/bench_training.py                       # CIFAR-10 MobileNetV2 preset
    .venv/bin/python benchmarks/bench_training.py --workload fashion_mnist --steps 20
    .venv/bin/python benchmarks/bench_training.py --device cuda         # on a GPU
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from codesign.config.workload import load_workload
from codesign.data.registry import load_dataset
from codesign.data.splits import Dataset, Split
from codesign.errors import CodesignError
from codesign.hardware.target import load_hardware
from codesign.network.device import resolve_device
from codesign.network.layers import ElasticConvBN
from codesign.network.model import build_model
from codesign.network.supernet import Supernet, extreme_candidate, random_candidate, supernet_step
from codesign.network.training import exit_logits
from codesign.runs.setup import prepare_space
from codesign.spec import CandidateSpec

# input shape and classes of the datasets, for synthetic stand-ins where the files are not here
SHAPES = {
    "digits": ((1, 8, 8), 10),
    "fashion-mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "svhn": ((3, 32, 32), 10),
}


class FixedConvBN(nn.Module):
    """One elastic layer frozen at one sub-network's sizes: plain `nn.Conv2d` + `nn.BatchNorm2d` (+ ReLU)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, act: bool, depthwise: bool):
        super().__init__()
        groups = cout if depthwise else 1
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x: torch.Tensor, *_: object, **__: object) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return F.relu(y) if self.act else y


def materialize(net: Supernet, spec: CandidateSpec, x: torch.Tensor) -> Supernet:
    """A copy of the supernet whose elastic layers that `spec` uses are plain layers of its sizes."""
    calls: dict[str, tuple[int, int, int, int, bool, bool]] = {}
    hooks = []
    for name, module in net.named_modules():
        if isinstance(module, ElasticConvBN):

            def record(module: nn.Module, args: tuple, kwargs: dict, name: str = name) -> None:
                values = dict(zip(("x", "cout", "kernel", "stride", "act"), args, strict=False), **kwargs)
                cin = values["x"].shape[1]
                cout = cin if module.depthwise else values["cout"]
                if name in calls:
                    raise RuntimeError(f"{name} is called twice in one forward pass")
                calls[name] = (cin, cout, values["kernel"], values["stride"], values["act"], module.depthwise)

            hooks.append(module.register_forward_pre_hook(record, with_kwargs=True))
    with torch.no_grad():
        net.eval()
        net(x[:2], spec)
    for hook in hooks:
        hook.remove()
    plain = copy.deepcopy(net)
    for name, sizes in calls.items():
        parent_name, _, child = name.rpartition(".")
        parent = plain.get_submodule(parent_name) if parent_name else plain
        setattr(parent, child, FixedConvBN(*sizes))
    return plain


def plain_step(
    model: Supernet,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: CandidateSpec,
    soft: torch.Tensor | None,
    distillation: float,
) -> torch.Tensor:
    outputs = model(x, spec)
    loss = sum(F.cross_entropy(o, y) for o in outputs)
    if soft is not None and distillation > 0:
        loss = loss + distillation * sum(
            F.kl_div(F.log_softmax(o, dim=-1), soft, reduction="batchmean") for o in outputs
        )
    loss.backward()
    return outputs[-1].detach()


def timed(fn, device: torch.device) -> float:  # noqa: ANN001
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure_step(
    net: Supernet,
    plain_largest: Supernet,
    x: torch.Tensor,
    y: torch.Tensor,
    largest: CandidateSpec,
    subnets: list[CandidateSpec],
    distillation: float,
    device: torch.device,
) -> tuple[float, float, float]:
    """Seconds of: one supernet step; one plain step of the largest network; plain steps of the same
    sub-networks as the supernet step (same losses)."""
    net.train()
    plain_largest.train()
    supernet = timed(lambda: supernet_step(net, x, y, largest, subnets, distillation), device)
    net.zero_grad(set_to_none=True)
    plain = timed(lambda: plain_step(plain_largest, x, y, largest, None, 0.0), device)
    plain_largest.zero_grad(set_to_none=True)
    copies = [materialize(net, spec, x).to(device).train() for spec in [largest, *subnets]]

    def same_subnets() -> None:
        soft = F.softmax(plain_step(copies[0], x, y, largest, None, 0.0), dim=-1)
        for model, spec in zip(copies[1:], subnets, strict=True):
            plain_step(model, x, y, spec, soft, distillation)

    same = timed(same_subnets, device)
    net.train()
    return supernet, plain, same


def data_for(
    workload_name: str, data_dir: Path | None, images: int
) -> tuple[torch.Tensor, torch.Tensor, str]:
    workload = load_workload(workload_name)
    try:
        dataset = load_dataset(workload.dataset, seed=0, data_dir=data_dir)
        x, y = dataset.train.images[:images], dataset.train.labels[:images]
        return x, y, f"{workload.dataset} training images"
    except CodesignError:
        (shape, classes) = SHAPES[workload.dataset]
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(images, *shape, generator=generator)
        y = torch.randint(0, classes, (images,), generator=generator)
        return x, y, f"synthetic data of {workload.dataset}'s shape {shape} (the files are not here)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="cifar10_mobilenetv2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=6, help="timed steps of each kind (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: all cores)")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    workload = load_workload(args.workload)
    config = workload.supernet
    batch = config.batch_size
    x_all, y_all, what = data_for(args.workload, args.data_dir, batch * (args.steps + 1))
    classes = int(y_all.max()) + 1
    stand_in = Split(x_all[:classes], y_all[:classes])  # only its shape matters here
    dataset = Dataset(workload.dataset, stand_in, stand_in, stand_in, classes)
    space = prepare_space(workload, dataset, load_hardware(workload.accelerator))
    net = Supernet(space, config.exit_gradient).to(device)
    largest, smallest = extreme_candidate(space, True), extreme_candidate(space, False)
    rng = random.Random(0)
    x_all, y_all = x_all.to(device), y_all.to(device)
    plain_largest = materialize(net, largest, x_all).to(device)
    print(
        f"{args.workload}: {what}; batch {batch}; device {device} ({torch.get_num_threads()} CPU threads); "
        f"supernet steps: largest + smallest + {config.random_subnets} random, distillation {config.distillation}"
    )
    supernet_times, plain_times, same_times = [], [], []
    passes = 2 + config.random_subnets
    for step in range(args.steps + 1):
        x = x_all[step * batch : (step + 1) * batch]
        y = y_all[step * batch : (step + 1) * batch]
        subnets = [smallest, *(random_candidate(space, rng) for _ in range(config.random_subnets))]
        times = measure_step(net, plain_largest, x, y, largest, subnets, config.distillation, device)
        if step > 0:  # the first step warms up allocators and kernels
            supernet_times.append(times[0])
            plain_times.append(times[1])
            same_times.append(times[2])
    s, p, q = (statistics.median(v) for v in (supernet_times, plain_times, same_times))
    print(
        f"supernet step            {s * 1e3:9.1f} ms  {batch / s:9.0f} images/s ({passes} sub-network passes per step)"
    )
    print(f"plain step, largest net  {p * 1e3:9.1f} ms  {batch / p:9.0f} images/s")
    print(f"plain steps, same nets   {q * 1e3:9.1f} ms")
    print(
        f"per sub-network forward/backward pass: supernet {s / passes * 1e3:.1f} ms vs plain largest {p * 1e3:.1f} ms: "
        f"ratio {s / passes / p:.2f} (target <= 1.2)"
    )
    print(f"weight-sharing overhead (supernet step / plain steps of the same sub-networks): {s / q:.2f}")
    model = build_model(largest).to(device)
    eval_images = x_all[: min(len(x_all), 1024)]
    split = Split(eval_images, y_all[: len(eval_images)])
    exit_logits(model, split)  # warm-up
    seconds = timed(lambda: exit_logits(model, split), device)
    print(
        f"evaluation (quantized largest network, all exits, batches of 512): {len(eval_images) / seconds:,.0f} images/s"
    )
    train_images = {
        "cifar10": 45000,
        "cifar100": 45000,
        "svhn": 68257,
        "fashion-mnist": 55000,
        "digits": 1078,
    }[workload.dataset]
    epoch = train_images / batch * s
    print(
        f"full supernet training of {args.workload}: {config.epochs} epochs x {train_images} images at this speed: "
        f"{config.epochs * epoch / 3600:.1f} h ({epoch / 60:.1f} min per epoch)"
    )


if __name__ == "__main__":
    main()
