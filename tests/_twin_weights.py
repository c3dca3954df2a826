"""Deterministic weights for the torchvision twins, from NumPy alone (no torch, no tinycnn).

tests/fixtures/make_torchvision_fixtures.py loads these weights into torchvision's models and
stores their outputs; tests/test_models_zoo.py makes the same weights again, loads them into
tinycnn's twins and compares. Both sides need only a state_dict's keys and shapes: each
tensor comes from its own generator, seeded by the CRC-32 of its key, so a key always gets
the same values whatever the model's other keys are.

* conv and linear weights (2-D and more): uniform in [-1, 1) * sqrt(3 / fan_in) (unit
  variance over fan_in inputs, so activations keep about unit size; fan_in = the product of
  all dimensions but the first). The uniform numbers are drawn in float32 (VGG's 100M-weight
  layer takes a second, not five) and scaled in float64;
* biases and batch norm shifts (1-D ``bias``): normal, std 0.1;
* batch norm scales (1-D ``weight``): uniform in [0.5, 1.5];
* running means: normal, std 0.1; running variances: uniform in [0.5, 1.5] (positive);
* ``num_batches_tracked``: 0 (an int64 scalar).
"""

import zlib

import numpy as np


def twin_weight(key: str, shape) -> np.ndarray:
    """The value of one state_dict entry (float64, or int64 for ``num_batches_tracked``)."""
    shape = tuple(int(n) for n in shape)
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    rng = np.random.default_rng(zlib.crc32(key.encode("utf-8")))
    if key.endswith("running_var") or (key.endswith("weight") and len(shape) == 1):
        return rng.uniform(0.5, 1.5, shape)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        unit = rng.random(shape, dtype=np.float32).astype(np.float64)   # [0, 1)
        unit *= 2.0
        unit -= 1.0
        unit *= np.sqrt(3.0 / fan_in)
        return unit
    return 0.1 * rng.standard_normal(shape)   # bias, running_mean


def twin_weights(shapes) -> dict:
    """``{key: array}`` for every ``(key, shape)`` of ``shapes`` (a dict or a list of pairs), in order."""
    items = shapes.items() if hasattr(shapes, "items") else shapes
    return {key: twin_weight(key, shape) for key, shape in items}


def twin_input(seed: int, shape) -> np.ndarray:
    """The float64 input batch of a fixture: standard normal from ``seed``."""
    return np.random.default_rng(seed).standard_normal(tuple(shape))
