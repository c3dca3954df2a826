"""The settings of one training run, stated once.

:class:`RunConfig` lists every setting of ``tinycnn train``. Each field says, in
one place, its default, its help text, what values it accepts and what may
happen to it when a run is resumed; the command's argument parser
(:mod:`tinycnn.cli`) is built from these fields, so a new setting is one new
field here.

Every field's default is ``None``, meaning "not given": :meth:`RunConfig.resolved`
fills it from the data set's recipe (``DATASETS``) or from the field's own
default. Knowing what was given is what lets a resumed run tell an option the
user asked for from one they left alone.

What a resumed run does with a given option (``on_resume``):

``CHANGEABLE``  where and how the run is carried out (data folder, device,
                output folder, progress bar): honoured.
``EPOCHS``      the length: a new total re-plans the schedule (see runner).
``FIXED``       the recipe (data set, model, optimizer, learning rate, ...):
                resuming continues the run exactly as planned, so a different
                value is refused, saying so.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RunConfig", "DATASETS", "OPTIMIZERS", "SCHEDULES", "AUGMENTATIONS", "CHANGEABLE", "EPOCHS", "FIXED",
           "Number", "augment_names"]

# Per data set: the default recipe of the command.
DATASETS = {
    "shapes": dict(model="small_cnn", epochs=6, batch_size=64, optimizer="adam", lr=1e-2, weight_decay=0.0,
                   schedule="onecycle", val_split=500, augment="none", train_size=6000),
    "mnist": dict(model="lenet5", epochs=15, batch_size=128, optimizer="sgd", lr=0.05, weight_decay=5e-4,
                  schedule="cosine", val_split=5000, augment="translate"),
    "fashion-mnist": dict(model="lenet5", epochs=20, batch_size=128, optimizer="sgd", lr=0.05, weight_decay=5e-4,
                          schedule="cosine", val_split=5000, augment="none"),
    "cifar10": dict(model="resnet20", epochs=182, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=1e-4,
                    schedule="multistep", val_split=5000, augment="crop,flip"),
    # your own images (--images DIR): validation and, without a test/ folder, test are 10% each, by class
    "images": dict(model="small_cnn", epochs=15, batch_size=32, optimizer="adam", lr=3e-3, weight_decay=0.0,
                   schedule="onecycle", augment="crop"),
}

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw")
SCHEDULES = ("none", "step", "multistep", "cosine", "onecycle")
AUGMENTATIONS = ("crop", "flip", "rotate", "scale", "translate", "cutout")

CHANGEABLE, EPOCHS, FIXED = "changeable", "epochs", "fixed"


class Number:
    """A finite int or float within bounds; parses command-line text and checks API values.

    ``Number(float, above=0)`` accepts 0.05 and refuses 0, -1, ``nan`` and ``inf``,
    whose only effect in training would be a run that diverges or never moves.
    """

    def __init__(self, kind, at_least=None, above=None, below=None):
        self.kind, self.at_least, self.above, self.below = kind, at_least, above, below

    def describe(self) -> str:
        words = ["a whole number" if self.kind is int else "a finite number"]
        if self.at_least is not None:
            words.append(f"of at least {self.at_least}")
        if self.above is not None:
            words.append(f"above {self.above}")
        if self.below is not None:
            words.append(f"{'and ' if len(words) > 1 else ''}below {self.below}")
        return " ".join(words)

    def problem(self, value) -> str | None:
        """None if ``value`` is acceptable, else what is wrong with it."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.kind is int and value != int(value)):
            return f"expected {self.describe()}, got {value!r}"
        if not math.isfinite(value) or (self.at_least is not None and value < self.at_least) \
                or (self.above is not None and value <= self.above) or (self.below is not None and value >= self.below):
            return f"expected {self.describe()}, got {value}"
        return None

    def __call__(self, text: str):
        """argparse's ``type=``: the value of ``text``, or an error argparse prints in one line."""
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}") from None
        problem = self.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value


def setting(help: str, *, on_resume: str, default=None, type=None, choices=None, flag=None, metavar=None):
    """A :class:`RunConfig` field: ``None`` until given; everything the parser and the resume rules need."""
    return field(default=None, metadata=dict(help=help, on_resume=on_resume, default=default, type=type,
                                             choices=choices, flag=flag, metavar=metavar))


@dataclass
class RunConfig:
    """The settings of one run. ``None`` means "not given": the data set's recipe or the default applies."""

    dataset: str | None = setting("data set (default: shapes; images with --images)", on_resume=FIXED,
                                  default="shapes", choices=tuple(DATASETS))
    images: str | None = setting("a folder of your own images: one sub-folder per class (or train/ and test/ "
                                 "holding them)", on_resume=CHANGEABLE, metavar="DIR")
    image_size: int | None = setting("--images: the side images are resized to (default 32)", on_resume=FIXED,
                                     default=32, type=Number(int, at_least=8))
    channels: int | None = setting("--images: 1 (grey) or 3 (RGB) (default: 1 if every image is grey)",
                                   on_resume=FIXED, type=Number(int, at_least=1), choices=(1, 3))
    resize: str | None = setting("--images: crop (shorter side to the size, centre crop; default) or stretch",
                                 on_resume=FIXED, default="crop", choices=("crop", "stretch"))
    strict: bool | None = setting("--images: stop at an unreadable file instead of skipping it", on_resume=CHANGEABLE,
                                  default=False)
    model: str | None = setting("model (default: per data set)", on_resume=FIXED)
    data_dir: str | None = setting("folder holding mnist/, fashion-mnist/, cifar10/ (default: $TINYCNN_DATA or "
                                   "~/.cache/tinycnn)", on_resume=CHANGEABLE)
    download: bool | None = setting("download the data set if missing", on_resume=CHANGEABLE, default=False)
    epochs: int | None = setting("epochs in all (on --resume: a new total re-plans the schedule)", on_resume=EPOCHS,
                                 type=Number(int, at_least=1))
    batch_size: int | None = setting("images per step", on_resume=FIXED, type=Number(int, at_least=1))
    optimizer: str | None = setting("update rule", on_resume=FIXED, choices=OPTIMIZERS)
    lr: float | None = setting("(peak) learning rate", on_resume=FIXED, type=Number(float, above=0))
    momentum: float | None = setting("SGD momentum (default 0.9)", on_resume=FIXED, default=0.9,
                                     type=Number(float, at_least=0))
    weight_decay: float | None = setting("L2 weight decay", on_resume=FIXED, type=Number(float, at_least=0))
    schedule: str | None = setting("learning-rate schedule", on_resume=FIXED, choices=SCHEDULES)
    warmup_epochs: int | None = setting("linear warm-up epochs (default 0)", on_resume=FIXED, default=0,
                                        type=Number(int, at_least=0))
    augment: str | None = setting(f"'none' or a comma list of: {', '.join(AUGMENTATIONS)}", on_resume=FIXED)
    val_split: int | None = setting("training images held out for validation (0: none)", on_resume=FIXED,
                                    type=Number(int, at_least=0))
    label_smoothing: float | None = setting("label smoothing (default 0)", on_resume=FIXED, default=0.0,
                                            type=Number(float, at_least=0, below=1))
    train_size: int | None = setting("train on only the first N training images", on_resume=FIXED,
                                     type=Number(int, at_least=1))
    device: str | None = setting("cpu, cuda or cuda:N (default: cpu)", on_resume=CHANGEABLE, default="cpu")
    seed: int | None = setting("random seed (default 0)", on_resume=FIXED, default=0, type=int)
    init_from: str | None = setting("start from the weights of this run folder or checkpoint (fine-tuning): every "
                                    "weight whose name and shape match is loaded", on_resume=FIXED, metavar="RUN")
    freeze: str | None = setting("comma list of parameter-name prefixes kept fixed while training, e.g. features",
                                 on_resume=FIXED, metavar="PREFIXES")
    out: str | None = setting("run folder (default: runs/DATASET-MODEL, numbered -2, -3, ... if that holds a run)",
                              on_resume=CHANGEABLE)
    progress: bool | None = setting("no progress bar, only the final accuracy", on_resume=CHANGEABLE, default=True,
                                    flag="--quiet")
    distributed: bool | None = setting("train on every process `mpiexec -n N` started (data parallelism): --batch-size "
                                       "is the global batch, each rank takes its share", on_resume=CHANGEABLE,
                                       default=False)
    sync_batchnorm: bool | None = setting("--distributed: batch norm statistics over the whole global batch "
                                          "(SyncBatchNorm), not each rank's share", on_resume=FIXED, default=False)

    def given(self) -> dict:
        """The settings that were given (not ``None``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def resolved(self) -> "RunConfig":
        """A copy with every unset field filled (recipe of the data set, then the field's default), checked."""
        dataset = self.dataset if self.dataset is not None else ("images" if self.images is not None else "shapes")
        if (dataset == "images") != (self.images is not None):
            raise ValueError("--images DIR trains on a folder of your own images; it does not combine with "
                             f"--dataset {dataset}" if self.images is not None else
                             "--dataset images needs the folder: --images DIR")
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
        recipe = DATASETS[dataset]
        values = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                value = recipe.get(f.name, f.metadata["default"])
            values[f.name] = value
        values["dataset"] = dataset
        config = RunConfig(**values)
        config.check()
        return config

    def check(self) -> None:
        """Refuse values the command line would refuse (for configs made in Python)."""
        from . import backend, models

        if self.model.lower().replace("-", "_") not in models.MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(models.MODELS)}")
        for f in dataclasses.fields(self):
            value, choices, kind = getattr(self, f.name), f.metadata["choices"], f.metadata["type"]
            if choices and value is not None and value not in choices:
                raise ValueError(f"unknown {f.name} {value!r}; choose one of {', '.join(choices)}")
            if isinstance(kind, Number) and value is not None:
                problem = kind.problem(value)
                if problem:
                    raise ValueError(f"{f.name}: {problem}")
        for name in augment_names(self.augment):
            if name not in AUGMENTATIONS:
                raise ValueError(f"unknown augmentation {name!r}; choose from none or a comma list of "
                                 f"{', '.join(AUGMENTATIONS)}")
        backend.parse_device(self.device)

    def default_out(self) -> Path:
        """``runs/DATASET-MODEL`` (``runs/FOLDER-MODEL`` for own images): the run folder when ``out`` is not given."""
        name = Path(self.images).resolve().name if self.dataset == "images" else self.dataset
        return Path("runs") / f"{name}-{self.model}"


def augment_names(augment: str | None) -> list:
    """``"crop, flip"`` -> ``["crop", "flip"]``; ``None``, ``""`` and ``"none"`` -> ``[]``."""
    return [] if augment in (None, "", "none") else [a.strip() for a in augment.split(",") if a.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one command-line option per :class:`RunConfig` field (``--batch-size`` for ``batch_size``)."""
    from .models import MODELS

    for f in dataclasses.fields(RunConfig):
        meta = f.metadata
        name = meta["flag"] or "--" + f.name.replace("_", "-")
        if isinstance(meta["default"], bool):
            # a flag; ``progress`` is switched off by --quiet
            parser.add_argument(name, dest=f.name, action="store_false" if f.name == "progress" else "store_true",
                                default=None, help=meta["help"])
            continue
        choices = list(MODELS) if f.name == "model" else meta["choices"]
        parser.add_argument(name, dest=f.name, type=meta["type"], choices=list(choices) if choices else None,
                            metavar=meta["metavar"], help=meta["help"])


def from_arguments(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` of parsed arguments: only the options given are set."""
    return RunConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)})
