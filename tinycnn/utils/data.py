"""``tinycnn.utils.data``: PyTorch's ``torch.utils.data`` names, so
``from torch.utils.data import DataLoader, Dataset`` becomes
``from tinycnn.utils.data import DataLoader, Dataset``.

``Dataset``, ``TensorDataset``, ``Subset`` and ``random_split`` are PyTorch's map-style
classes (:mod:`tinycnn.data.map_style`): a ``Subset`` here is a view of any data set,
``random_split`` takes a ``generator=``. (``tinycnn.data.Subset`` and
``tinycnn.data.random_split`` are the built-in image sets' own: they copy the arrays
and take ``seed=``.) ``DataLoader`` is :class:`tinycnn.data.DataLoader`.
"""

from ..data.collate import default_collate
from ..data.loader import DataLoader
from ..data.map_style import Dataset, Subset, TensorDataset, random_split

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "default_collate"]
