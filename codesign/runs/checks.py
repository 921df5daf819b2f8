"""Checks a workload must pass before anything is trained: feature maps its choices can produce, augmentation
that fits the images, training memory the machine has, and chip areas where area is searched or limited."""

from __future__ import annotations

import os
from pathlib import Path

from codesign.config.workload import Workload
from codesign.data.splits import Dataset
from codesign.errors import CodesignError
from codesign.hardware.area import chip_area
from codesign.hardware.target import HardwareTarget
from codesign.network.model import exit_pool_kernel, feature_map_sizes
from codesign.space import SearchSpace


def check_area(workload: Workload, target: HardwareTarget) -> None:
    """Chip area as an objective or a limit needs an accelerator file that states areas."""
    field = (
        "search.objectives"
        if "area" in workload.search.objectives
        else "search.constraints.max_area"
        if workload.search.constraints.max_area is not None
        else None
    )
    if field is not None and chip_area(target) is None:
        raise CodesignError(
            f"{workload.source}: {field}: expected an accelerator whose file states memory areas for chip area "
            f"({target.accelerator_path} states none: give its memories an `area` and its array a `unit_area`)"
        )


def check_augmentation(workload: Workload, dataset: Dataset, space: SearchSpace) -> None:
    """A crop padded by as many pixels as the image is wide can be all padding: no image left to learn from."""
    smallest = min(space.resolutions or (dataset.resolution,))
    padding = workload.augment.crop_padding
    if padding >= smallest:
        raise CodesignError(
            f"{workload.source}: training.augment.crop_padding: expected fewer pixels than the smallest image "
            f"side ({smallest}, {dataset.name}), got {padding}"
        )


def check_feature_maps(workload: Workload, dataset: Dataset, space: SearchSpace) -> None:
    """Every exit sees a map of at least 2x2 that every pooling grid divides into equal windows."""
    sizes = feature_map_sizes(dataset.resolution, [stage.stride for stage in space.stages])
    for index, size in enumerate(sizes):
        if size < 2:
            raise CodesignError(
                f"{workload.source}: space.stages[{index}].stride: expected feature maps of at least 2x2 at every exit, "
                f"but {dataset.name}'s {dataset.resolution}x{dataset.resolution} input is down to {size}x{size} here"
            )
    # every map an exit pools: each stage's output, and an early one's halved by a strided conv head
    pooled = {(size, "space.exit_branches.pool") for size in sizes}
    pooled |= {
        (feature_map_sizes(size, [stride])[0], "space.exit_branches.stride")
        for size in sizes[:-1]
        for stride in space.branches.stride
        if stride > 1
    }
    for size, field_name in sorted(pooled):
        for grid in sorted({*space.branches.pool, space.final_branch.pool}):
            try:
                exit_pool_kernel(size, grid)
            except ValueError as exc:
                raise CodesignError(
                    f"{workload.source}: {field_name}: expected exits whose maps fit every pooling grid ({exc})"
                ) from None


def check_memory(workload: Workload, space: SearchSpace) -> None:
    """The supernet (the largest choice of everything) must fit in memory with its training state. Counted
    on PyTorch's meta device: shapes only, nothing allocated."""
    import torch

    from codesign.network.supernet import Supernet

    try:
        with torch.device("meta"):
            supernet = Supernet(space)
    except (RuntimeError, OverflowError, ValueError) as exc:  # sizes beyond what PyTorch can even describe
        widths = [max(stage.width) for stage in space.stages]
        widest = max(range(len(widths)), key=widths.__getitem__)
        raise CodesignError(
            f"{workload.source}: space.stages[{widest}].width: expected networks that fit in memory, but PyTorch "
            f"cannot even size the largest choice ({str(exc).splitlines()[0][:80]}); choose smaller widths, "
            "expansions or depths"
        ) from None
    per_stage = [sum(p.numel() for p in stage.parameters()) for stage in supernet.stages]
    parameters = sum(p.numel() for p in supernet.parameters())
    needed = parameters * _TRAINING_BYTES_PER_PARAMETER
    available = available_memory()
    if needed > available:
        widest = max(range(len(per_stage)), key=per_stage.__getitem__)
        raise CodesignError(
            f"{workload.source}: space.stages[{widest}].width: expected networks that fit in memory, but the "
            f"largest choice has {parameters:.3g} parameters ({needed / 2**30:.1f} GiB to train) and "
            f"{available / 2**30:.1f} GiB are available; choose smaller widths, expansions or depths"
        )


# float32 weight, gradient and two Adam moments
_TRAINING_BYTES_PER_PARAMETER = 16


def available_memory() -> int:
    """Bytes of memory available now (Linux: MemAvailable), else the machine's physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
