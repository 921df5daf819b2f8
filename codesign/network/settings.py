"""Typed settings of the network step: training from scratch, the weight-sharing supernet, and fine-tuning.

Plain dataclasses without PyTorch, so a workload can be read and checked without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    # Weight of each exit's loss, earliest first, final classifier last; None = equal weights.
    exit_loss_weights: tuple[float, ...] | None = None
    seed: int = 0


EXIT_TRAINING = ("frozen", "joint")


@dataclass(frozen=True)
class SupernetConfig:
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    random_subnets: int = 2
    distillation: float = 0.5  # weight of the KL term towards the largest network's final exit; 0 = off
    seed: int = 0
    # How strongly the early exits' losses train the shared backbone: their gradient is scaled by this where
    # it enters the backbone (the heads themselves learn at full rate). 1 = joint training; below 1 the
    # backbone stays closer to what its final exit needs.
    exit_gradient: float = 1.0
    # How exit heads learn. "frozen" (the Shallow-Deep Networks recipe): the backbone supernet is trained
    # once without exits (the very checkpoint a static search uses), then the early exit heads learn on its
    # frozen features for `head_epochs`, so a network with its exits off IS the static network and every
    # final exit is exactly as accurate as its static counterpart. "joint": backbone and exits train
    # together (`exit_gradient` applies); the backbone then serves its early exits too, at the cost of
    # its final exit's accuracy against a static backbone.
    exit_training: str = "frozen"
    # Frozen exit heads train until their mean validation loss has not fallen for `head_patience` epochs
    # (learning rate halved after each epoch without improvement), at most `head_epochs` epochs; the best
    # epoch's heads are kept.
    head_epochs: int = 100
    head_patience: int = 4
    head_learning_rate: float = 3e-2  # the heads alone learn faster than the supernet did

    def __post_init__(self) -> None:
        if self.exit_training not in EXIT_TRAINING:
            raise ValueError(f"exit_training must be one of {EXIT_TRAINING}, got {self.exit_training!r}")


@dataclass(frozen=True)
class FinetuneConfig:
    calibration_images: int = 1024
    # Exit-head fine-tuning per candidate during the search (after its quantizers are calibrated): at most
    # `head_steps` steps, checked on validation every `head_check_steps`; it stops after `head_patience`
    # checks without a lower validation loss (learning rate halved at each) and keeps the best heads.
    head_steps: int = 600
    head_check_steps: int = 25
    head_patience: int = 5
    head_learning_rate: float = 1e-2
    head_validation_images: int = 2048  # validation images the checks use (the first ones)
    head_train_images: int = 8192  # training images (a random subset) whose stage outputs the heads learn on
    final_epochs: float = 3.0  # full QAT fine-tuning of each returned network (fractions allowed)
    final_learning_rate: float = 3e-4
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class Augmentation:
    """Training-time data augmentation, done in PyTorch on each batch where it lives (CPU or GPU): a random
    crop of the image padded by `crop_padding` pixels on every side (zeros), and a random horizontal flip.
    Applied in every training loop (supernet, from scratch, exit heads, final fine-tuning), never to
    validation or test images. The default does nothing."""

    crop_padding: int = 0
    flip: bool = False

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip
