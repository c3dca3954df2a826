"""``tinycnn.Generator``: a random source of its own, seeded apart from the global one.

PyTorch code seeds a data order without touching the model's randomness::

    g = torch.Generator().manual_seed(0)
    loader = DataLoader(dataset, batch_size=64, shuffle=True, generator=g)
    train, val = random_split(dataset, [0.9, 0.1], generator=g)

Here a Generator wraps a NumPy ``Generator`` (it draws on the CPU; what it draws is moved
to the device afterwards), so the same seed gives the same numbers on every device.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Generator"]


class Generator:
    """A seeded random source. ``Generator().manual_seed(n)`` returns the generator itself."""

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = int(np.random.SeedSequence().entropy % 2**63)   # unseeded: fresh entropy, as PyTorch
        self.rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> "Generator":
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Generator.manual_seed expects an int, got {type(seed).__name__}")
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def draw_seed(self) -> int:
        """A 63-bit integer from this generator: how a loader or a split takes its seed from it."""
        return int(self.rng.integers(2**63))

    def get_state(self) -> dict:
        return {"seed": self._seed, "numpy": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self._seed = state["seed"]
        self.rng.bit_generator.state = state["numpy"]

    def __repr__(self) -> str:
        return f"Generator(seed={self._seed})"
