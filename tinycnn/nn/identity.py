"""Identity: a layer that returns its input (a placeholder, e.g. to remove a model's head)."""

from __future__ import annotations

from .module import Module

__all__ = ["Identity"]


class Identity(Module):
    """Returns its input unchanged. Shapes: any -> same.

    ``model.fc = nn.Identity()`` turns a classifier into a feature extractor.
    Any constructor arguments are accepted and ignored, as in PyTorch.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
