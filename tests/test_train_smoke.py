"""End to end: a small CNN overfits one batch of random images with random labels.

Reaching 100% accuracy on noise means every piece works together: forward
through Conv2d/BatchNorm2d/ReLU/MaxPool2d/Flatten/Linear, the loss, backward
through all of them, and the optimizer's in-place updates.
"""

import numpy as np
import pytest

import tinycnn
from tinycnn import functional as F
from tinycnn import nn, optim

# The layer ops are written on branch 'functional'; skip (not fail) until it is merged.
_NEEDED = ("conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "linear", "leaky_relu",
           "batch_norm", "dropout", "cross_entropy", "relu", "flatten")
_MISSING = [name for name in _NEEDED if not hasattr(F, name)]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"tinycnn.functional lacks {', '.join(_MISSING)}")


def small_cnn():
    """(N, 1, 12, 12) -> (N, 10)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),   # (N, 8, 12, 12)
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),                 # (N, 8, 6, 6)
        nn.Flatten(),                    # (N, 288)
        nn.Linear(8 * 6 * 6, 10),
    )


def accuracy(model, images, labels):
    """Accuracy in eval mode (BatchNorm on its running statistics), then back to training."""
    model.eval()
    with tinycnn.no_grad():
        predictions = model(images).numpy().argmax(axis=1)
    model.train()
    return (predictions == labels.numpy()).mean()


def test_small_cnn_overfits_a_random_batch():
    tinycnn.manual_seed(0)
    rng = np.random.default_rng(0)
    images = tinycnn.tensor(rng.standard_normal((64, 1, 12, 12)).astype(np.float32))
    labels = tinycnn.tensor(rng.integers(0, 10, size=64))
    model = small_cnn()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.01)

    losses = []
    for step in range(300):
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 25 == 24 and accuracy(model, images, labels) == 1.0:
            break
    assert accuracy(model, images, labels) == 1.0, f"loss went {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} steps"
    assert losses[-1] < 0.25 * losses[0]
    assert model[1].num_batches_tracked.item() == len(losses)
    assert all(p.dtype == np.float32 for p in model.parameters())
