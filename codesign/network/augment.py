"""Random crop with padding and horizontal flip of a batch, on the batch's own device, reproducible from a
CPU generator (the random draws are made on the CPU, so a run gives the same crops on any device)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from codesign.network.settings import Augmentation


def augment_batch(
    images: torch.Tensor, augmentation: Augmentation | None, generator: torch.Generator
) -> torch.Tensor:
    """`images` (N x C x H x W) cropped and flipped at random per image; unchanged without augmentation."""
    if augmentation is None or not augmentation.active:
        return images
    n, _, height, width = images.shape
    out = images
    pad = augmentation.crop_padding
    if pad > 0:
        padded = F.pad(images, (pad, pad, pad, pad))
        top = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
        left = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
        rows = (top[:, None] + torch.arange(height, device=images.device)[None, :])[:, None, :, None]
        cols = (left[:, None] + torch.arange(width, device=images.device)[None, :])[:, None, None, :]
        batch = torch.arange(n, device=images.device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
        out = padded[batch, channels, rows, cols]
    if augmentation.flip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(images.device)
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out
