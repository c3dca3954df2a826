"""What can go wrong between processes, as exceptions that say so."""

from __future__ import annotations

__all__ = ["DistributedError", "DistributedTimeout", "RanksDisagree"]


class DistributedError(RuntimeError):
    """A collective operation could not be carried out (no MPI, a bad launch, a peer that left)."""


class DistributedTimeout(DistributedError):
    """The other ranks did not join a collective operation in time: one has stopped, raised or hangs."""


class RanksDisagree(DistributedError):
    """The ranks were started with different settings, data or models; the message says which."""
