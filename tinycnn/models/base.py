"""What every model of the zoo shares: printing one shows its size."""

from .. import nn


def count_parameters(model) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class ZooModel(nn.Module):
    """Base of the zoo's models; ``print(model)`` starts with its parameter count."""

    def extra_repr(self) -> str:
        return f"{count_parameters(self):,} parameters"
