"""Step: an architecture's weights. Trained from scratch, or inherited from the supernet: calibrated, and
its heads fine-tuned until validation stops improving; on a static backbone, the backbone and final head
are exactly the static network's and only the early heads learn. Each function takes what it needs; the
inherited architecture comes back as the model it was fitted in (built once, used by the next steps)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from codesign.data.splits import Dataset, Split
from codesign.evaluation.settings import EvaluationSettings
from codesign.files import atomic_torch_save, read_torch_weights
from codesign.network.finetune import StageOutputs, calibrate, finetune_heads
from codesign.network.model import build_model
from codesign.network.supernet import inherit
from codesign.network.training import train_architecture
from codesign.spec import CandidateSpec


def kept(
    path: Path | None, fit: Callable[[], dict[str, torch.Tensor]], shared: Path | None = None
) -> dict[str, torch.Tensor]:
    """Weights read back from `path` (or the `shared` folder) when they are kept there; else fitted now (`fit`)
    and kept there, written whole (None: not kept)."""
    state = read_kept(path, shared)
    if state is None:
        state = fit()
        keep(state, path, shared)
    return state


def read_kept(path: Path | None, shared: Path | None) -> dict[str, torch.Tensor] | None:
    """Weights kept at `path`, else under the same name in `shared` (the folder every run of the same
    settings shares: their file names say what produced them), then linked into `path` so that the run
    folder holds every weight it used; None: kept in neither."""
    if path is None:
        return None
    state = read_torch_weights(path)
    if state is None and shared is not None and (state := read_torch_weights(shared / path.name)) is not None:
        _linked(shared / path.name, path)
    return state


def keep(state: dict[str, torch.Tensor], path: Path | None, shared: Path | None) -> None:
    """Fitted weights written whole to `path`, and linked into the `shared` folder for later runs."""
    if path is None:
        return
    atomic_torch_save(state, path)
    if shared is not None:
        _linked(path, shared / path.name)


def _linked(source: Path, target: Path) -> None:
    """`target` made the same file as `source` (a hard link, a copy across file systems), appearing whole."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        os.link(source, scratch)
    except OSError:
        try:
            shutil.copyfile(source, scratch)
        except OSError as exc:  # a full disk: name the file being written, not the one read
            scratch.unlink(missing_ok=True)
            raise OSError(exc.errno, exc.strerror, str(target)) from None
    os.replace(scratch, target)


def static_key(static: CandidateSpec) -> str:
    """What a static network's fitted weights depend on in its own spec."""
    return repr(
        (static.stages, static.resolution, static.branches[-1], static.in_channels, static.num_classes)
    )


def static_path(folder: Path | None, key: str, tag: str) -> Path | None:
    """Where the static network `key` is kept in `folder` under `tag` (None: not kept)."""
    if folder is None or not tag:
        return None
    return folder / f"static-{hashlib.sha256(f'{key}|{tag}'.encode()).hexdigest()[:20]}.pt"


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def early_heads(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's early exit heads (every head but the final classifier's)."""
    final = str(len(model.stages) - 1)  # type: ignore[arg-type]
    return [head for name, head in model.heads.items() if name != final]  # type: ignore[union-attr]


def fit_heads(
    model: torch.nn.Module,
    train: Split,
    val: Split,
    settings: EvaluationSettings,
    heads: list[torch.nn.Module] | None = None,
    tune: bool = True,
    shared: StageOutputs | None = None,
) -> torch.nn.Module:
    """Calibrate (`heads` only, or the whole network) and fine-tune the heads (`heads`, or every head) until
    their validation loss stops falling; the model itself, fitted. `shared`: backbone outputs kept for (or
    from) another fitting on the same frozen backbone."""
    config = settings.finetune
    calibrate(model, train, config.calibration_images, only=heads)
    if tune:
        finetune_heads(model, train, val, config, settings.augmentation, trained=heads, shared=shared)
    return model


def scratch_weights(
    architecture: CandidateSpec,
    dataset: Dataset,
    train: Split,
    settings: EvaluationSettings,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """The architecture trained from scratch with every exit's loss (`train`: the training split at its
    resolution)."""
    resized = Dataset(dataset.name, train, dataset.val, dataset.test, dataset.num_classes)
    return train_architecture(
        architecture, resized, settings.training, device=device, augmentation=settings.augmentation
    ).state_dict


def static_weights(
    static: CandidateSpec,
    supernet_state: dict[str, torch.Tensor],
    train: Split,
    val: Split,
    settings: EvaluationSettings,
    device: torch.device,
    shared: StageOutputs | None = None,
) -> dict[str, torch.Tensor]:
    """A static network (exits off) inherited, calibrated and its final head fine-tuned: the same weights in
    an early-exit search as in the static search. `shared`: its backbone's outputs kept for the early heads."""
    model = inherit(build_model(static), supernet_state).to(device)
    return cpu_state(fit_heads(model, train, val, settings, shared=shared))


def inherited_model(
    architecture: CandidateSpec,
    supernet_state: dict[str, torch.Tensor],
    train: Split,
    val: Split,
    settings: EvaluationSettings,
    device: torch.device,
    static_state: dict[str, torch.Tensor] | None = None,
    shared: StageOutputs | None = None,
) -> torch.nn.Module:
    """The architecture's model with its weights from the supernet (on `device`, inference behaviour). Joint
    (`static_state` None): every head calibrated and fine-tuned on the shared backbone. On a static backbone:
    `static_state` (`static_weights` of its static network) loaded, then only the early heads calibrated and
    fine-tuned on it, frozen (on the backbone outputs `shared` keeps, when it kept them while the static
    network was fitted)."""
    model = inherit(build_model(architecture), supernet_state).to(device)
    if static_state is None:
        return fit_heads(model, train, val, settings)
    model.load_state_dict(static_state, strict=False)
    early = early_heads(model)
    if not early:
        return model.eval()
    # a static space calibrates its unused early heads too: uncalibrated quantizers lack the buffers the
    # architecture's state needs to load into any of its candidates
    return fit_heads(model, train, val, settings, early, tune=settings.early_exits, shared=shared)
