"""LeNet-5, with ReLU and max pooling.

Source: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to
document recognition", Proc. IEEE 86(11), 1998. The classic net reads 32x32 images; MNIST's
28x28 digits are padded by 2 pixels on each side to match, as in the paper. The modern
variant used here swaps the scaled tanh for ReLU, subsampling for max pooling, and the RBF
output layer for a plain linear layer (61,706 parameters for 10 classes).

    input (N, C, 28, 28) -> conv 5x5, 6 maps, pad 2 -> (N, 6, 28, 28) -> pool -> (N, 6, 14, 14)
    -> conv 5x5, 16 maps -> (N, 16, 10, 10) -> pool -> (N, 16, 5, 5) -> flatten (N, 400)
    -> linear 120 -> linear 84 -> linear num_classes
"""

from .. import nn
from .base import ZooModel


class LeNet5(ZooModel):
    """LeNet-5 for (N, in_channels, input_size, input_size) images, input_size 28 or 32."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28):
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"lenet5: input_size must be 28 (padded to 32) or 32, got {input_size}")
        padding = (32 - input_size) // 2  # the classic net sees 32x32
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> LeNet5:
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling; 61,706 parameters for 10 classes."""
    return LeNet5(num_classes, in_channels, input_size)
