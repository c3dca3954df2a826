"""One training run, end to end: what ``tinycnn train`` does.

:func:`run_training` takes a :class:`RunConfig`, then

1. loads the data set and holds out a seeded validation split from its training part;
2. builds the model, the optimizer and the learning-rate schedule;
3. trains with :func:`tinycnn.train.fit`, saving a checkpoint after every epoch
   (weights, buffers, optimizer and schedule state, epoch, RNG state, config);
4. reloads the weights that did best on validation, evaluates the test set once;
5. writes ``history.json``, ``metrics.json`` and the plots into the run directory.

Resuming from the checkpoint of epoch k gives the same final weights, on the
CPU, as a run that was never interrupted: the shuffle order depends only on
(seed, epoch), and the random generator's state is saved with the weights.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backend, data, models, optim, viz
from .data import transforms as T
from .serialization import CheckpointError, atomic_write, load, save
from .train import FitState, evaluate, fit

__all__ = ["RunConfig", "DATASETS", "run_training", "load_checkpoint", "build_model", "prepare_images"]

# Per data set: how to load it, and the default recipe of the command.
DATASETS = {
    "shapes": dict(model="small_cnn", epochs=6, batch_size=64, optimizer="adam", lr=1e-2, weight_decay=0.0,
                   schedule="onecycle", val_split=500, augment="none", train_size=6000),
    "mnist": dict(model="lenet5", epochs=15, batch_size=128, optimizer="sgd", lr=0.05, weight_decay=5e-4,
                  schedule="cosine", val_split=5000, augment="translate"),
    "fashion-mnist": dict(model="lenet5", epochs=20, batch_size=128, optimizer="sgd", lr=0.05, weight_decay=5e-4,
                          schedule="cosine", val_split=5000, augment="none"),
    "cifar10": dict(model="resnet20", epochs=182, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=1e-4,
                    schedule="multistep", val_split=5000, augment="crop,flip"),
}

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw")
SCHEDULES = ("none", "step", "multistep", "cosine", "onecycle")
AUGMENTATIONS = ("crop", "flip", "rotate", "scale", "translate", "cutout")


@dataclass
class RunConfig:
    """The settings of one run (``None`` takes the data set's default from ``DATASETS``)."""

    dataset: str = "shapes"
    model: str | None = None
    data_dir: str | None = None
    download: bool = False
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: str | None = None
    warmup_epochs: int = 0
    augment: str | None = None
    val_split: int | None = None
    label_smoothing: float = 0.0
    train_size: int | None = None  # use only this many training images (quick runs, lessons)
    device: str = "cpu"
    seed: int = 0
    out: str | None = None
    progress: bool = True

    def resolved(self) -> "RunConfig":
        """A copy with every ``None`` replaced by the data set's default, and checked."""
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        defaults = DATASETS[self.dataset]
        values = {k: (defaults[k] if v is None and k in defaults else v) for k, v in dataclasses.asdict(self).items()}
        config = RunConfig(**values)
        if config.out is None:
            config.out = str(Path("runs") / f"{config.dataset}-{config.model}")
        config.check()
        return config

    def check(self) -> None:
        if self.model.lower().replace("-", "_") not in models.MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(models.MODELS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        for name in _augment_names(self.augment):
            if name not in AUGMENTATIONS:
                raise ValueError(f"unknown augmentation {name!r}; choose from none or a comma list of {', '.join(AUGMENTATIONS)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.val_split < 0:
            raise ValueError(f"val_split must be 0 or more images, got {self.val_split}")
        backend.parse_device(self.device)


def _augment_names(augment: str) -> list:
    return [] if augment in (None, "", "none") else [a.strip() for a in augment.split(",") if a.strip()]


# --------------------------------------------------------------------------- data
def load_dataset(config: RunConfig, train: bool):
    """The training or test part of the configured data set."""
    name = config.dataset
    if name == "shapes":  # drawn on the fly: draw only as many as the run uses
        return data.Shapes(train=train, n=config.train_size if train else 2000, seed=config.seed)
    cls = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST, "cifar10": data.CIFAR10}[name]
    return cls(root=config.data_dir, train=train, download=config.download)


def channel_stats(images: np.ndarray) -> tuple:
    """Per-channel mean and std of uint8 images (N, C, H, W), on the [0, 1] scale."""
    scaled = images.astype(np.float64) / 255.0
    return tuple(scaled.mean(axis=(0, 2, 3)).tolist()), tuple(scaled.std(axis=(0, 2, 3)).tolist())


def build_transforms(config: RunConfig, mean, std, image_size: int):
    """(train transform, eval transform): to float in [0, 1], (augment), normalise.

    Augmentation runs before normalisation, so the pixels it brings in (padding,
    shifted-in borders) are black, as in the data, not the mean colour.
    """
    augment = []
    for name in _augment_names(config.augment):
        augment.append({
            "crop": lambda: T.RandomCrop(image_size, padding=4 if image_size >= 32 else 2),
            "flip": lambda: T.RandomHorizontalFlip(),
            "rotate": lambda: T.RandomRotation(15),
            "scale": lambda: T.RandomScale((0.9, 1.1)),
            "translate": lambda: T.RandomTranslation(2 / image_size),  # up to 2 pixels each way
            "cutout": lambda: T.Cutout(image_size // 4),
        }[name]())
    return T.Compose([T.ToFloat(), *augment, T.Normalize(mean, std)]), T.Compose([T.ToFloat(), T.Normalize(mean, std)])


# --------------------------------------------------------------------------- model, optimizer, schedule
def build_model(name: str, num_classes: int, in_channels: int, image_size: int):
    kwargs = {"input_size": image_size} if name in ("lenet5", "small_cnn") else {}
    return models.get_model(name, num_classes=num_classes, in_channels=in_channels, **kwargs)


def build_optimizer(config: RunConfig, model):
    params = model.parameters()
    if config.optimizer in ("sgd", "nesterov"):
        return optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                         nesterov=config.optimizer == "nesterov")
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def build_schedule(config: RunConfig, optimizer, steps_per_epoch: int):
    """(scheduler or None, stepped per batch?)."""
    S = optim.lr_scheduler
    epochs, warmup = config.epochs, min(config.warmup_epochs, config.epochs - 1)
    if config.schedule == "onecycle":
        return S.OneCycleLR(optimizer, max_lr=config.lr, epochs=epochs, steps_per_epoch=steps_per_epoch), True
    main_epochs = epochs - warmup
    if config.schedule == "none":
        schedule = None
    elif config.schedule == "step":
        schedule = S.StepLR(optimizer, step_size=max(1, main_epochs // 3), gamma=0.1)
    elif config.schedule == "multistep":  # He et al.: divide by 10 at 50% and 75% of training
        # (never at epoch 0: a run of 1 epoch would otherwise start at lr / 100)
        milestones = sorted({max(1, main_epochs // 2), max(1, (3 * main_epochs) // 4)})
        schedule = S.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    else:
        schedule = S.CosineAnnealingLR(optimizer, T_max=main_epochs)
    if warmup > 0:
        warm = S.LinearLR(optimizer, start_factor=0.1, total_iters=warmup)
        if schedule is None:
            return warm, False
        return S.SequentialLR(optimizer, [warm, schedule], milestones=[warmup]), False
    return schedule, False


# --------------------------------------------------------------------------- checkpoints
def _checkpoint(config, model, optimizer, scheduler, state: FitState, meta: dict) -> dict:
    return {
        "config": dataclasses.asdict(config),
        "meta": meta,  # classes, image shape, normalisation: what eval and predict need
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "fit_state": state.state_dict(),
        "rng": backend.get_rng_state(),
    }


def load_checkpoint(path) -> dict:
    """Read a run's checkpoint (a file, or a run directory holding ``checkpoint.npz``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    checkpoint = load(path)
    missing = [k for k in ("config", "meta", "model") if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} is a tinycnn file but not a training checkpoint (missing {', '.join(missing)})")
    return checkpoint


def model_from_checkpoint(checkpoint: dict, device: str = "cpu", weights: str = "best"):
    """Rebuild the checkpoint's model and load its weights (the best on validation by default)."""
    meta = checkpoint["meta"]
    model = build_model(checkpoint["config"]["model"], len(meta["classes"]), meta["image_shape"][0], meta["image_shape"][1])
    best = checkpoint.get("fit_state", {}).get("best_state")
    state = best if weights == "best" and best is not None else checkpoint["model"]
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"the checkpoint's weights do not fit model {checkpoint['config']['model']!r}: {error}") from None
    return model.to(device)


def prepare_images(images_uint8: np.ndarray, meta: dict, device: str = "cpu"):
    """uint8 images (N, C, H, W) -> normalised float32 Tensor, as the model was trained."""
    from .tensor import Tensor

    xp = backend.array_module(device)
    batch = backend.to_device(images_uint8, device)
    _, eval_transform = build_transforms(RunConfig(augment="none"), meta["mean"], meta["std"], meta["image_shape"][1])
    return Tensor.from_op(eval_transform(batch).astype(xp.float32), None)


# --------------------------------------------------------------------------- the run
def run_training(config: RunConfig, resume=None) -> dict:
    """Train as configured (or continue the checkpoint ``resume``); returns the test metrics."""
    checkpoint = None
    if resume is not None:
        checkpoint = load_checkpoint(resume)
        saved = RunConfig(**checkpoint["config"])
        if config.model is not None and config.model != saved.model:
            raise CheckpointError(f"cannot resume: the checkpoint trained model {saved.model!r}, not {config.model!r}")
        if config.dataset != saved.dataset and config.dataset != "shapes":
            raise CheckpointError(f"cannot resume: the checkpoint trained on {saved.dataset!r}, not {config.dataset!r}")
        # keep the checkpoint's recipe; a larger --epochs extends the run, --out/--device may change
        if config.epochs is not None and config.epochs != saved.epochs and saved.schedule == "onecycle":
            raise CheckpointError(f"cannot resume with --epochs {config.epochs}: this run's one-cycle schedule "
                                  f"was laid out for {saved.epochs} epochs")
        saved.epochs = config.epochs or saved.epochs
        saved.out = config.out or saved.out
        saved.device, saved.progress = config.device, config.progress
        config = saved
    config = config.resolved()
    out_dir = Path(config.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    backend.manual_seed(config.seed)

    train_full = load_dataset(config, train=True)
    test_set = load_dataset(config, train=False)
    if config.train_size is not None and config.train_size < len(train_full):
        train_full = data.Subset(train_full, np.arange(config.train_size))
    if config.val_split >= len(train_full):
        raise ValueError(f"val_split {config.val_split} leaves no training images (the training set has {len(train_full)})")
    if config.val_split > 0:
        train_set, val_set = data.random_split(train_full, [len(train_full) - config.val_split, config.val_split],
                                               seed=config.seed)
    else:
        train_set, val_set = train_full, None
    image_shape = tuple(int(n) for n in train_set.images.shape[1:])
    mean, std = channel_stats(train_set.images)
    meta = {"classes": list(train_full.classes), "image_shape": list(image_shape), "mean": list(mean), "std": list(std),
            "dataset": config.dataset, "model": config.model}
    train_transform, eval_transform = build_transforms(config, mean, std, image_shape[1])
    loader = dict(batch_size=config.batch_size, device=config.device)
    train_loader = data.DataLoader(train_set, shuffle=True, seed=config.seed, transform=train_transform, **loader)
    val_loader = data.DataLoader(val_set, transform=eval_transform, **loader) if val_set is not None else None
    test_loader = data.DataLoader(test_set, transform=eval_transform, **loader)

    model = build_model(config.model, len(train_full.classes), image_shape[0], image_shape[1]).to(config.device)
    optimizer = build_optimizer(config, model)
    scheduler, per_batch = build_schedule(config, optimizer, len(train_loader))
    state = FitState()
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None and checkpoint.get("scheduler") is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        state = FitState.from_state_dict(checkpoint["fit_state"])
        backend.set_rng_state(checkpoint["rng"])

    checkpoint_path = out_dir / "checkpoint.npz"
    n_params = models.count_parameters(model)
    if config.progress:
        print(f"{config.model}: {n_params:,} parameters | {config.dataset}: {len(train_set):,} train, "
              f"{len(val_set) if val_set else 0:,} val, {len(test_set):,} test | device {config.device}")

    def save_checkpoint(fit_state):
        save(_checkpoint(config, model, optimizer, scheduler, fit_state, meta), checkpoint_path)

    start = time.perf_counter()
    state = fit(model, train_loader, optimizer, config.epochs, val_loader=val_loader, scheduler=scheduler,
                step_scheduler_per_batch=per_batch, state=state, on_epoch_end=save_checkpoint,
                progress=config.progress, loss_fn=_loss(config))
    train_seconds = sum(record["seconds"] for record in state.history)
    if state.epoch == 0 or not state.history:
        raise RuntimeError("no epoch was trained")

    test = evaluate(model, test_loader, return_predictions=True)
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "epochs": state.epoch,
        "best_epoch": state.best_epoch or state.epoch,
        "best_val_accuracy": state.best_val_accuracy if state.best_epoch else None,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - start,
        "images_per_second": float(np.mean([r["images_per_second"] for r in state.history])),
        "model": config.model,
        "parameters": n_params,
        "dataset": config.dataset,
        "device": config.device,
    }
    _write_json(out_dir / "history.json", state.history)
    _write_json(out_dir / "metrics.json", metrics)
    _plots(out_dir, state.history, test, test_set, meta)
    if config.progress:
        print(f"test accuracy {100 * test['accuracy']:.2f}%  test loss {test['loss']:.4f}  "
              f"({state.epoch} epochs, {train_seconds:.1f}s training)  -> {out_dir}")
    return metrics


def _loss(config: RunConfig):
    from .functional import cross_entropy

    if config.label_smoothing == 0:
        return cross_entropy
    return lambda logits, target: cross_entropy(logits, target, label_smoothing=config.label_smoothing)


def _write_json(path: Path, value) -> None:
    text = json.dumps(value, indent=2)
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def _plots(out_dir: Path, history, test: dict, test_set, meta: dict) -> None:
    viz.plot_history(history, out_dir / "curves.png", title=f"{meta['model']} on {meta['dataset']}")
    viz.plot_confusion_matrix(test["labels"], test["predictions"], meta["classes"], out_dir / "confusion_matrix.png")
    # a grid of test images: the mistakes first, then correct ones
    wrong = np.flatnonzero(test["predictions"] != test["labels"])
    right = np.flatnonzero(test["predictions"] == test["labels"])
    shown = np.concatenate([wrong[:18], right[: 36 - min(len(wrong), 18)]])
    viz.plot_predictions(test_set.images[shown], test["labels"][shown], test["predictions"][shown], meta["classes"],
                         out_dir / "predictions.png", probs=test["probabilities"][shown].max(axis=1))
