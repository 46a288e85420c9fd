"""Training-time augmentation of streamed images: random crop with padding, horizontal flip.

The two torchvision's CIFAR recipes use (`transforms.v2.RandomCrop(32, padding=4)`,
`RandomHorizontalFlip()`), written out because those draw from the global RNG: here every
draw comes from the generator the loop seeds per sample and epoch, so an augmented epoch is
the same whichever worker reads a sample and wherever a run resumes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Augment:
    def __init__(self, crop_padding: int = 0, flip: bool = False) -> None:
        self.padding, self.flip = crop_padding, flip

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """x: one image, uint8 [channels, height, width]."""
        if self.padding:
            p, (h, w) = self.padding, x.shape[-2:]
            padded = F.pad(x, (p, p, p, p))  # zeros, as torchvision's default fill
            top, left = torch.randint(0, 2 * p + 1, (2,), generator=g).tolist()
            x = padded[:, top : top + h, left : left + w]
        if self.flip and torch.rand((), generator=g) < 0.5:
            x = x.flip(-1)
        return x.contiguous()
