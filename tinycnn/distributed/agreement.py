"""Check at the start that every rank is about to run the same training.

Ranks started with different options (a different ``--batch-size`` on one node),
different data (another copy of MNIST) or a different model would not fail:
they would all-reduce gradients that do not belong together and train
nonsense. So before the first step each rank sends a description of what it
is about to do, and every rank compares them; a difference stops the run with
a message that names the rank, the setting and both values.
"""

from __future__ import annotations

import json

from .errors import RanksDisagree

__all__ = ["check_ranks_agree", "model_signature"]


def model_signature(model) -> dict:
    """``{parameter or buffer name: "shape dtype"}``: what must match for gradients to line up."""
    return {name: f"{tuple(t.shape)} {t.dtype}" for name, t in model._state_tensors()}


def check_ranks_agree(group, what: str, description: dict) -> None:
    """Raise :class:`RanksDisagree` unless every rank passed an equal ``description`` (JSON-able values)."""
    mine = json.dumps(description, default=str)
    gathered = group.all_gather_bytes(mine.encode("utf-8"), what=f"comparing the {what} of the ranks")
    reference = json.loads(gathered[0])
    for other_rank, text in enumerate(gathered):
        other = json.loads(text)
        if other == reference:
            continue
        keys = list(reference) + [key for key in other if key not in reference]   # in the model's order
        differences = [f"{key} is {reference.get(key, '(absent)')!r} on rank 0 but {other.get(key, '(absent)')!r} on "
                       f"rank {other_rank}" for key in keys if reference.get(key) != other.get(key)]
        shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
        raise RanksDisagree(f"the ranks do not agree on the {what}: {shown}. Every rank must be started with the same "
                            f"command and see the same data")
