"""The one error the weight readers raise."""

__all__ = ["WeightsFileError"]


class WeightsFileError(ValueError):
    """A weights file is not what it claims, is damaged, or asks for something unsafe."""
