"""Fine-tuning: start a model from another model's weights, and keep some of them fixed.

Transfer learning in two moves. :func:`load_matching` copies every weight of a
trained model whose *name and shape* match into a new model, so the feature
layers arrive trained while a head for other classes (another shape) stays
freshly initialised. :func:`freeze` then keeps chosen parts (``features``)
fixed, so only the new head learns: parameters named with a given prefix get
``requires_grad = False`` and are left out of the optimizer. As in PyTorch, a
frozen part's batch-norm statistics still follow the new data in training mode.

    tinycnn train --images my_digits --model lenet5 --init-from runs/mnist-lenet5 --freeze features
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["load_matching", "freeze", "weights_from", "LoadReport"]


@dataclass
class LoadReport:
    """What :func:`load_matching` did: names loaded, re-initialised (with both shapes), and left over."""

    loaded: list = field(default_factory=list)
    reinitialised: list = field(default_factory=list)  # (name, shape in the source, shape in the model)
    not_in_source: list = field(default_factory=list)
    not_in_model: list = field(default_factory=list)

    def describe(self, source) -> str:
        lines = [f"init from {source}: loaded {len(self.loaded)} of {len(self.loaded) + len(self.reinitialised) + len(self.not_in_source)} tensors"]
        for name, theirs, ours in self.reinitialised:
            lines.append(f"  re-initialised {name}: {tuple(theirs)} in the source, {tuple(ours)} here")
        if self.not_in_source:
            lines.append(f"  not in the source (initialised fresh): {', '.join(self.not_in_source)}")
        if self.not_in_model:
            lines.append(f"  in the source but not in this model (ignored): {', '.join(self.not_in_model)}")
        return "\n".join(lines)


def load_matching(model, state: dict) -> LoadReport:
    """Copy into ``model`` every entry of ``state`` whose name and shape match its own; returns what happened."""
    own = model.state_dict()
    report = LoadReport()
    merged = dict(own)
    for name, tensor in own.items():
        if name not in state:
            report.not_in_source.append(name)
            continue
        value = state[name]
        shape = tuple(getattr(value, "shape", np.shape(value)))
        if shape == tuple(tensor.shape):
            merged[name] = value
            report.loaded.append(name)
        else:
            report.reinitialised.append((name, shape, tuple(tensor.shape)))
    report.not_in_model = [name for name in state if name not in own]
    if not report.loaded:
        raise ValueError(f"no weight of the source fits this model (none has a matching name and shape); the model "
                         f"expects names like {', '.join(list(own)[:3])}, the source has {', '.join(list(state)[:3])}")
    model.load_state_dict(merged)
    return report


def freeze(model, prefixes) -> list:
    """Keep the parameters whose names start with one of ``prefixes`` fixed; returns their names.

    A prefix names a part of the model (``features``, ``layer1``, ``features.0``),
    matched at a dot boundary.
    """
    if isinstance(prefixes, str):
        prefixes = [p.strip() for p in prefixes.split(",") if p.strip()]
    frozen = []
    named = list(model.named_parameters())
    for prefix in prefixes:
        matched = [(name, p) for name, p in named if name == prefix or name.startswith(prefix + ".")]
        if not matched:
            parts = sorted({name.split(".")[0] for name, _ in named})
            raise ValueError(f"--freeze {prefix}: no parameter of this model is named so; its parts are "
                             f"{', '.join(parts)}")
        for name, param in matched:
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def weights_from(path) -> dict:
    """The weights to start from: a run folder or training checkpoint (its best weights), a ``tinycnn.save``
    file holding a state_dict (or ``{"model": state_dict}``), or a PyTorch ``.pt``/``.pth``/``.safetensors``."""
    from .serialization import load

    path = Path(path)
    if path.suffix in (".pt", ".pth", ".safetensors", ".bin"):
        from . import load_state_dict_file

        return load_state_dict_file(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    saved = load(path)
    if isinstance(saved, dict) and "model" in saved:
        from .runner import checkpoint_weights  # (runner imports this module: imported when needed)

        return checkpoint_weights(saved)
    if isinstance(saved, dict) and saved and all(hasattr(v, "shape") for v in saved.values()):
        return saved
    raise ValueError(f"{path} holds no model weights (a run folder, a training checkpoint or a state_dict file "
                     f"was expected)")
