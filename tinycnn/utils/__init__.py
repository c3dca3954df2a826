"""``tinycnn.utils``: PyTorch's ``torch.utils`` path. Only ``tinycnn.utils.data`` lives here."""

from . import data  # noqa: F401
