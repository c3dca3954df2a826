"""Data: image data sets, the DataLoader, and batch transforms.

    from tinycnn.data import MNIST, DataLoader, Compose, ToFloat, Normalize, MNIST_MEAN, MNIST_STD

    train = MNIST(root="../shared/data", train=True)          # images (60000, 1, 28, 28) uint8
    loader = DataLoader(train, batch_size=128, shuffle=True, device="cuda",
                        transform=Compose([ToFloat(), Normalize(MNIST_MEAN, MNIST_STD)]))
    for images, labels in loader:                              # Tensors on the GPU
        ...

Modules, one concept each: ``dataset`` (the common base class, Subset, random_split),
``map_style`` (PyTorch's Dataset, TensorDataset, Subset, random_split: see
``tinycnn.utils.data``), ``collate`` (samples -> a batch),
``shapes`` (the built-in drawn set), ``mnist`` / ``cifar`` (the real sets), ``folder`` and ``images`` (your own images), ``idx``
(MNIST's file format), ``paths`` (where files are looked for), ``download`` and
``checksum`` (verified downloads), ``loader``, ``transforms`` and ``affine``.
"""

from . import map_style
from .cifar import CIFAR10, CIFAR10_MEAN, CIFAR10_STD
from .collate import default_collate
from .dataset import ImageDataset, Subset, random_split, stratified_split
from .folder import ImageFolder, ImageFolderError, folder_layout
from .images import ImageReadError, read_image
from .download import download_file
from .errors import ChecksumError, CorruptFileError, DatasetNotFoundError, DownloadError
from .loader import DataLoader
from .mnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST, MNIST_MEAN, MNIST_STD, FashionMNIST
from .paths import default_data_dir
from .shapes import SHAPES_MEAN, SHAPES_STD, Shapes
from .transforms import (
    Compose, Cutout, Normalize, RandomAffine, RandomCrop, RandomHorizontalFlip, RandomRotation, RandomScale,
    RandomTranslation, ToFloat,
)

__all__ = [
    "ImageDataset", "Subset", "random_split", "stratified_split", "ImageFolder", "ImageFolderError", "folder_layout", "read_image",
    "ImageReadError", "Shapes", "MNIST", "FashionMNIST", "CIFAR10",
    "DataLoader", "default_collate", "map_style", "Compose", "ToFloat", "Normalize", "RandomCrop", "RandomHorizontalFlip", "RandomAffine",
    "RandomRotation", "RandomScale", "RandomTranslation", "Cutout",
    "download_file", "default_data_dir",
    "DatasetNotFoundError", "CorruptFileError", "ChecksumError", "DownloadError",
    "MNIST_MEAN", "MNIST_STD", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "CIFAR10_MEAN", "CIFAR10_STD",
    "SHAPES_MEAN", "SHAPES_STD",
]
