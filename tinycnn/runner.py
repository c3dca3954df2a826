"""One training run, end to end: what ``tinycnn train`` does.

:func:`run_training` takes a :class:`~tinycnn.config.RunConfig` and goes through five steps:

1. :func:`plan_run`: settle the settings and the run folder: a new run, or the
   continuation of a checkpoint (``resume``), perhaps extended to more epochs;
2. :func:`prepare_data`: load the data set, hold out a seeded validation split,
   measure the normalisation statistics, make the loaders;
3. :func:`build_training`: the model, the optimizer and the learning-rate
   schedule, restored from the checkpoint when resuming;
4. :func:`train`: :func:`tinycnn.train.fit`, saving a checkpoint after every epoch
   (weights, buffers, optimizer and schedule state, epoch, RNG state, settings);
5. :func:`report`: evaluate the weights that did best on validation on the test
   set, once, and write ``history.json``, ``metrics.json`` and the plots.

Resuming from the checkpoint of epoch k gives the same final weights, on the
CPU, as a run that was never interrupted: the shuffle order depends only on
(seed, epoch), and the random generator's state is saved with the weights.

What resuming may change, and what extending a run means, is decided in
:func:`plan_run` (and documented in the README): a resumed run writes into the
folder the user named, never the one recorded in the checkpoint; a run folder
holding a checkpoint is replaced only with ``overwrite``; a new ``epochs`` total
re-plans the schedule over that total from the epoch reached.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backend, data, finetune, models, optim, viz
from .config import AUGMENTATIONS, CHANGEABLE, DATASETS, FIXED, OPTIMIZERS, SCHEDULES, RunConfig, augment_names
from .data import transforms as T
from .run_folder import RunFolder, RunFolderError, holds_run, next_free
from .serialization import CheckpointError, atomic_write, load, save
from .train import FitState, TrainingDiverged, evaluate, fit

__all__ = ["RunConfig", "DATASETS", "OPTIMIZERS", "SCHEDULES", "AUGMENTATIONS", "RunFailed", "Plan",
           "run_training", "plan_run", "prepare_data", "build_training", "train", "report",
           "load_checkpoint", "build_model", "prepare_images", "loss_function", "save_model"]


class RunFailed(RuntimeError):
    """Training stopped (diverged, or a file could not be written); the message says what survived."""


# --------------------------------------------------------------------------- the run
def run_training(config: RunConfig, resume=None, overwrite: bool = False) -> dict:
    """Train as configured, or continue the run saved in ``resume``; returns the test metrics.

    ``resume`` is a run folder or its ``checkpoint.npz``; ``overwrite`` lets a new
    run replace the run held by its folder (``config.out``).
    """
    plan = plan_run(config, resume, overwrite)                  # 1. settings and folder
    group = join_ranks(plan)                                     #    (--distributed: the ranks agree on them)
    writer = group is None or group.rank == 0                   # only rank 0 writes into the run folder
    with RunFolder(plan.folder) if writer else _NotWriting(plan.folder) as folder:
        if plan.replaces_run and writer:
            folder.clear()
        backend.manual_seed(plan.config.seed)
        run_data = prepare_data(plan.config, plan.checkpoint)    # 2. data
        parts = build_training(plan, run_data)                   # 3. model, optimizer, schedule
        if group is not None:
            distribute(plan, run_data, parts, group)             #    each rank its shares; gradients averaged
        state = train(plan, run_data, parts, folder, group)      # 4. epochs, with checkpoints
        return report(plan, run_data, parts, state, folder, group)  # 5. test once, write the results


# --------------------------------------------------------------------------- 1. the plan
@dataclass
class Plan:
    """What :func:`run_training` will do.

    Attributes:
        config: the run's settings, every field filled.
        folder: where it writes (the folder the user named; never only the checkpoint's record).
        checkpoint: the checkpoint it continues, or None for a new run.
        planned_epochs: when resuming with a new ``epochs`` total, the total the
            schedule was laid out for until now (it is then re-planned); else None.
        replaces_run: a new run with ``overwrite`` into a folder holding a run.
    """

    config: RunConfig
    folder: Path
    checkpoint: dict | None = None
    planned_epochs: int | None = None
    replaces_run: bool = False


def plan_run(config: RunConfig, resume=None, overwrite: bool = False) -> Plan:
    """Check what was asked against what exists, and say where the run goes. Refuses, with what to
    do instead, a run that would replace another run, or a resume that would change its recipe."""
    if resume is None:
        config = config.resolved()
        folder = Path(config.out) if config.out is not None else next_free(config.default_out())
        if holds_run(folder) and not overwrite:
            raise RunFolderError(f"{folder} already holds a run ({_describe_run(folder)}); to continue it use "
                                 f"--resume {folder}, to replace it add --overwrite, or choose another --out")
        config.out = str(folder)
        return Plan(config, folder, replaces_run=holds_run(folder))

    checkpoint = load_checkpoint(resume)
    resumed_from = Path(resume) if Path(resume).is_dir() else Path(resume).parent
    names = {f.name for f in dataclasses.fields(RunConfig)}
    saved = RunConfig(**{k: v for k, v in checkpoint["config"].items() if k in names})
    given = config.given()
    for f in dataclasses.fields(RunConfig):
        if f.name not in given:
            continue
        rule, asked, had = f.metadata["on_resume"], given[f.name], getattr(saved, f.name)
        if rule == FIXED and _normalised(f.name, asked) != _normalised(f.name, had):
            option = f.metadata["flag"] or "--" + f.name.replace("_", "-")
            raise CheckpointError(
                f"cannot resume with {option} {asked}: the run in {resumed_from} trained with {f.name} {had!r}, and "
                f"resuming continues a run as it was planned (only --epochs, --out, --data-dir, --device and --quiet "
                f"may change); to train with other settings, start a new run with another --out")
        if rule == CHANGEABLE:
            setattr(saved, f.name, asked)
    if "progress" not in given:
        saved.progress = True
    if "download" not in given:
        saved.download = False
    if "distributed" not in given:  # like the progress bar: how this invocation runs, not the recipe
        saved.distributed = False

    done, planned = int(checkpoint["fit_state"]["epoch"]), saved.epochs
    target = config.epochs if config.epochs is not None else planned
    if target <= done:
        if config.epochs is None:
            raise CheckpointError(f"the run in {resumed_from} has already trained all its {planned} epochs; to train it "
                                  f"further, give a larger total, e.g. --epochs {done + max(1, done // 2)} (the "
                                  f"schedule is then re-planned over the new total)")
        raise CheckpointError(f"cannot resume with --epochs {target}: the run in {resumed_from} has already trained "
                              f"{done} epochs; give a total above {done} to extend it")
    saved.epochs = target

    folder = Path(config.out) if config.out is not None else resumed_from
    elsewhere = folder.resolve() != resumed_from.resolve()
    if elsewhere and holds_run(folder) and not overwrite:
        raise RunFolderError(f"{folder} already holds a run ({_describe_run(folder)}); resuming "
                             f"{resumed_from} into it would replace it: add --overwrite, or choose another --out")
    saved.out = str(folder)
    saved = saved.resolved()
    return Plan(saved, folder, checkpoint, planned_epochs=planned if target != planned else None,
                replaces_run=elsewhere and holds_run(folder))


def _normalised(name: str, value):
    if name == "augment":
        return sorted(augment_names(value))
    if name == "model" and isinstance(value, str):
        return value.lower().replace("-", "_")
    return value


def _describe_run(folder: Path) -> str:
    try:
        checkpoint = load(folder / "checkpoint.npz")
        config, epoch = checkpoint["config"], checkpoint["fit_state"]["epoch"]
        return f"{config['model']} on {config['dataset']}, epoch {epoch} of {config['epochs']}"
    except Exception:  # a damaged checkpoint is still a run not to clobber
        return "its checkpoint.npz"


# --------------------------------------------------------------------------- 1b. the ranks (--distributed)
def join_ranks(plan: Plan):
    """With ``--distributed``: join the ranks mpiexec started and check they all run this plan; else None.

    A run started by ``mpiexec -n N`` (N > 1) without ``--distributed`` is refused: every
    process would train its own copy into the same folder.
    """
    from . import distributed

    config = plan.config
    if not config.distributed:
        if distributed.launched_size() > 1:
            raise RunFailed(f"started by mpiexec as one of {distributed.launched_size()} processes, but without "
                            f"--distributed: each would train its own copy into {plan.folder}; add --distributed")
        return None
    group = distributed.init(device=config.device)
    config.device = group.device        # cuda -> this rank's cuda:K
    if group.rank != 0:
        config.progress = False         # one progress bar, one set of messages: rank 0's
    recipe = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
              if f.metadata["on_resume"] != CHANGEABLE}
    recipe["resumed from epoch"] = plan.checkpoint["fit_state"]["epoch"] if plan.checkpoint is not None else 0
    distributed.check_ranks_agree(group, "configuration", recipe)  # also: no rank creates files before all planned
    if config.progress:
        print(f"distributed: {group.size} ranks ({group.backend_name}; {distributed.mpi_library() or 'no MPI'}), "
              f"{config.batch_size} images per step in all")
    return group


def distribute(plan: Plan, run_data: "RunData", parts: "TrainingParts", group) -> None:
    """Shard the loaders, check every rank has the same data and model, and wrap the model for data parallelism."""
    from . import distributed

    config = plan.config
    distributed.check_ranks_agree(group, "data", {k: run_data.meta[k] for k in (
        "classes", "image_shape", "train_images", "mean", "std")})
    distributed.check_ranks_agree(group, "model", distributed.model_signature(parts.model))
    last = len(run_data.train_set) % config.batch_size
    if 0 < last < group.size:
        raise RunFailed(f"the last training batch holds {last} image(s) ({len(run_data.train_set)} images, --batch-size "
                        f"{config.batch_size}), fewer than the {group.size} ranks, so a rank would have none: choose a "
                        f"--batch-size that leaves at least {group.size} images in the last batch")
    for loader in (run_data.train_loader, run_data.val_loader):   # the test set: rank 0 alone, in report()
        if loader is not None:
            loader.set_shard(group.rank, group.size)
    model = parts.model
    if config.sync_batchnorm:
        model = distributed.SyncBatchNorm.convert_sync_batchnorm(model, group)   # shares the parameters
    parts.model = distributed.DistributedDataParallel(model, group)
    if group.rank > 0:  # augmentation and dropout draw differently on each rank (rank 0 keeps the run's own stream)
        seed = np.random.SeedSequence([config.seed, group.rank, parts.state.epoch]).generate_state(1)[0]
        backend.manual_seed(int(seed))


class _NotWriting:
    """The run folder as a rank other than 0 sees it: it knows the paths and writes nothing."""

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoint = self.path / "checkpoint.npz"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


# --------------------------------------------------------------------------- 2. data
@dataclass
class RunData:
    """The data of a run: the three parts, their loaders, and what eval and predict need (``meta``)."""

    train_set: data.ImageDataset
    val_set: data.ImageDataset | None
    test_set: data.ImageDataset
    train_loader: data.DataLoader
    val_loader: data.DataLoader | None
    test_loader: data.DataLoader
    meta: dict


def load_dataset(config: RunConfig, train: bool):
    """The training or test part of a built-in data set."""
    name = config.dataset
    if name == "shapes":  # drawn on the fly: draw only as many as the run uses
        return data.Shapes(train=train, n=config.train_size if train else 2000, seed=config.seed)
    cls = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST, "cifar10": data.CIFAR10}[name]
    return cls(root=config.data_dir, train=train, download=config.download)


def load_image_folder(config: RunConfig):
    """(training images, test images or None) of ``--images DIR``: its train/ and test/ (or val/), or the
    whole folder (the test part is then held out by :func:`prepare_data`)."""
    layout = data.folder_layout(config.images)
    options = dict(image_size=config.image_size, resize=config.resize, strict=config.strict,
                   progress=None if config.progress else False)  # None: a bar for large folders
    train_full = data.ImageFolder(layout["train"], channels=config.channels, **options)
    test_set = None
    if layout["test"] is not None:
        test_set = data.ImageFolder(layout["test"], channels=int(train_full.images.shape[1]),
                                    classes=train_full.classes, **options)
    return train_full, test_set


def _held_out_count(config_value, n: int, classes: int) -> int:
    """A configured count, or 10% of ``n`` (at least one image per class) when not configured."""
    return config_value if config_value is not None else max(classes, round(0.1 * n))


def prepare_data(config: RunConfig, checkpoint: dict | None = None) -> RunData:
    """Load the data, split off validation (seeded), and make the loaders.

    Own images (``config.images``) are split by class (each part keeps the class
    shares); without a test folder a test part is held out the same way first.
    Resuming, the data must be the data the run trained on: the same classes and
    number of training images (when the data has moved, pass its new ``data_dir``).
    """
    try:
        if config.dataset == "images":
            train_full, test_set = load_image_folder(config)
        else:
            train_full, test_set = load_dataset(config, train=True), load_dataset(config, train=False)
    except FileNotFoundError as error:
        if checkpoint is None:
            raise
        raise FileNotFoundError(f"{error} (resuming: if the data has moved, say where it is now with "
                                f"--data-dir)") from None
    split = data.stratified_split if config.dataset == "images" else data.random_split
    if test_set is None:  # own images without a test/ folder
        n_test = _held_out_count(None, len(train_full), len(train_full.classes))
        train_full, test_set = _split(train_full, n_test, config.seed + 1, split, "test")
    if config.train_size is not None and config.train_size < len(train_full):
        train_full = data.Subset(train_full, np.arange(config.train_size))
    n_val = _held_out_count(config.val_split, len(train_full), len(train_full.classes))
    if n_val > 0:
        train_set, val_set = _split(train_full, n_val, config.seed, split, "validation")
    else:
        train_set, val_set = train_full, None
    image_shape = tuple(int(n) for n in train_set.images.shape[1:])
    mean, std = channel_stats(train_set.images)
    meta = {"classes": list(train_full.classes), "image_shape": list(image_shape), "mean": list(mean),
            "std": list(std), "dataset": config.dataset, "model": config.model, "train_images": len(train_set),
            "resize": config.resize, "background": border_colour(train_set.images),
            "model_args": model_arguments(config.model, image_shape[1])}
    if checkpoint is not None:
        _check_same_data(checkpoint["meta"], meta, config)
        meta["model_args"] = checkpoint["meta"].get("model_args", meta["model_args"])  # resume the model it built
    train_transform, eval_transform = build_transforms(config, mean, std, image_shape[1])
    loader = dict(batch_size=config.batch_size, device=config.device)
    return RunData(
        train_set, val_set, test_set,
        train_loader=data.DataLoader(train_set, shuffle=True, seed=config.seed, transform=train_transform, **loader),
        val_loader=data.DataLoader(val_set, transform=eval_transform, **loader) if val_set is not None else None,
        test_loader=data.DataLoader(test_set, transform=eval_transform, **loader),
        meta=meta,
    )


def _split(dataset, held_out: int, seed: int, split, part: str):
    if held_out >= len(dataset):
        raise ValueError(f"the {part} split of {held_out} images leaves no training images (there are "
                         f"{len(dataset)})")
    if split is data.random_split:
        return split(dataset, [len(dataset) - held_out, held_out], seed=seed)
    return split(dataset, held_out, seed=seed)


def border_colour(images: np.ndarray) -> list:
    """The median colour of the images' outermost pixels, per channel: what a picture's background is
    (black for MNIST's digits). ``predict`` composites transparent inputs onto it."""
    c = images.shape[1]
    border = np.concatenate([images[:, :, 0, :], images[:, :, -1, :], images[:, :, :, 0], images[:, :, :, -1]],
                            axis=2)
    return [int(v) for v in np.median(border.transpose(1, 0, 2).reshape(c, -1), axis=1)]


def _check_same_data(saved: dict, found: dict, config: RunConfig) -> None:
    where = f"the data found{f' in {config.data_dir}' if config.data_dir else ''}"
    for key, what in (("classes", "classes"), ("image_shape", "image shape"), ("train_images", "training images")):
        if key in saved and saved[key] != found[key]:
            shown = (lambda v: len(v)) if key == "classes" and len(found[key]) > 8 else (lambda v: v)
            raise CheckpointError(f"cannot resume: {where} has {what} {shown(found[key])}, the run trained with "
                                  f"{shown(saved[key])}; point --data-dir at the data the run was trained on")


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
    for name in augment_names(config.augment):
        augment.append({
            "crop": lambda: T.RandomCrop(image_size, padding=4 if image_size >= 32 else 2),
            "flip": lambda: T.RandomHorizontalFlip(),
            "rotate": lambda: T.RandomRotation(15),
            "scale": lambda: T.RandomScale((0.9, 1.1)),
            "translate": lambda: T.RandomTranslation(2 / image_size),  # up to 2 pixels each way
            "cutout": lambda: T.Cutout(image_size // 4),
        }[name]())
    return T.Compose([T.ToFloat(), *augment, T.Normalize(mean, std)]), T.Compose([T.ToFloat(), T.Normalize(mean, std)])


# --------------------------------------------------------------------------- 3. model, optimizer, schedule
@dataclass
class TrainingParts:
    """The model and what updates it; ``state`` is the progress so far (from the checkpoint when resuming)."""

    model: object
    optimizer: optim.Optimizer
    scheduler: object
    per_batch: bool
    state: FitState
    started: float = 0.0  # time.perf_counter() when training started


def build_training(plan: Plan, run_data: RunData) -> TrainingParts:
    """Build the model, optimizer and schedule; when resuming, load their state from the checkpoint.

    A resumed run whose ``epochs`` total changed gets its schedule laid out again
    for the new total, as if the run had been planned that long, and moved on to
    the epoch reached: the optimizer keeps its momentum, only the learning rates
    follow the new plan.
    """
    config, checkpoint, meta = plan.config, plan.checkpoint, run_data.meta
    model = build_model(config.model, len(meta["classes"]), meta["image_shape"][0], meta["image_shape"][1],
                        meta["model_args"])
    if checkpoint is None and config.init_from is not None:  # fine-tuning: the matching weights of another model
        report = finetune.load_matching(model, finetune.weights_from(config.init_from))
        if config.progress:
            print(report.describe(config.init_from))
    model = model.to(config.device)
    if config.freeze:
        frozen = finetune.freeze(model, config.freeze)
        if config.progress and checkpoint is None:
            print(f"frozen: {len(frozen)} parameters ({config.freeze}); "
                  f"{sum(1 for p in model.parameters() if p.requires_grad)} train")
    optimizer = build_optimizer(config, model)
    if checkpoint is None:
        scheduler, per_batch = build_schedule(config, optimizer, len(run_data.train_loader))
        return TrainingParts(model, optimizer, scheduler, per_batch, FitState())

    model.load_state_dict(checkpoint["model"])
    state = FitState.from_state_dict(checkpoint["fit_state"])
    if plan.planned_epochs is None:  # the same plan: continue it exactly
        # (the schedule first: making one sets the optimizer's rates, which the saved state then overrides)
        scheduler, per_batch = build_schedule(config, optimizer, len(run_data.train_loader))
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None and checkpoint.get("scheduler") is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
    else:  # a new total: the trained state with a fresh optimizer's settings, and the new plan stepped to now
        fresh_groups = optimizer.state_dict()["param_groups"]
        optimizer.load_state_dict({"state": checkpoint["optimizer"]["state"], "param_groups": fresh_groups})
        scheduler, per_batch = build_schedule(config, optimizer, len(run_data.train_loader))
        steps_taken = state.epoch * (len(run_data.train_loader) if per_batch else 1)
        for _ in range(steps_taken if scheduler is not None else 0):
            scheduler.step()
        if config.progress:
            print(f"extending the run from {plan.planned_epochs} to {config.epochs} epochs: the {config.schedule} "
                  f"schedule is re-planned over {config.epochs} epochs; epoch {state.epoch + 1} starts at lr "
                  f"{optimizer.param_groups[0]['lr']:.4g}")
    backend.set_rng_state(checkpoint["rng"])
    return TrainingParts(model, optimizer, scheduler, per_batch, state)


# Images this size or smaller get the ImageNet twins' 32x32 adaptation (a stride-1 stem without
# its max pooling); at 224 pixels the stem's 4x downsampling is what the ImageNet models expect.
SMALL_INPUT_MAX_SIZE = 64


def model_arguments(name: str, image_size: int) -> dict:
    """The keyword arguments (beyond classes and channels) ``tinycnn train`` builds zoo model ``name``
    with for ``image_size``-pixel images; the checkpoint records them so that ``eval``, ``predict``,
    ``export`` and ``--resume`` rebuild the very same model."""
    key = name.lower().replace("-", "_")
    if key in ("lenet5", "small_cnn"):
        return {"input_size": int(image_size)}
    if key in models.TAKES_SMALL_INPUT:
        return {"small_input": int(image_size) <= SMALL_INPUT_MAX_SIZE}
    return {}


def build_model(name: str, num_classes: int, in_channels: int, image_size: int, model_args: dict | None = None):
    """Zoo model ``name`` for ``(in_channels, image_size, image_size)`` images; ``model_args`` (as a
    checkpoint recorded them) or else :func:`model_arguments` give its other keyword arguments."""
    kwargs = model_arguments(name, image_size) if model_args is None else dict(model_args)
    return models.get_model(name, num_classes=num_classes, in_channels=in_channels, **kwargs)


def build_optimizer(config: RunConfig, model):
    params = [p for p in model.parameters() if p.requires_grad]  # frozen parts (--freeze) are not updated
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


def loss_function(config: RunConfig):
    """Cross-entropy, with the configured label smoothing."""
    from .functional import cross_entropy

    if config.label_smoothing == 0:
        return cross_entropy
    return lambda logits, target: cross_entropy(logits, target, label_smoothing=config.label_smoothing)


# --------------------------------------------------------------------------- 4. training
def train(plan: Plan, run_data: RunData, parts: TrainingParts, folder: RunFolder, group=None) -> FitState:
    """Run the remaining epochs, saving a checkpoint after each (with ``group``: rank 0 saves).

    Raises :class:`RunFailed` when the loss diverges or a checkpoint cannot be
    written; the message names the epoch or the file, and the checkpoint that survived.
    """
    config = plan.config
    if config.progress:
        print(f"{config.model}: {models.count_parameters(parts.model):,} parameters | {config.dataset}: "
              f"{len(run_data.train_set):,} train, {len(run_data.val_set) if run_data.val_set else 0:,} val, "
              f"{len(run_data.test_set):,} test | device {config.device} | run folder {folder.path}")
    saved_epoch = parts.state.epoch if plan.checkpoint is not None else 0
    parts.started = time.perf_counter()

    def save_checkpoint(fit_state):
        nonlocal saved_epoch
        if group is not None and group.rank != 0:
            return
        folder.remove_debris()
        try:
            save(_checkpoint(config, parts, fit_state, run_data.meta), folder.checkpoint)
        except OSError as error:
            raise RunFailed(f"cannot save the checkpoint of epoch {fit_state.epoch}: {error}; "
                            f"{_what_survived(folder, saved_epoch)}") from None
        saved_epoch = fit_state.epoch

    try:
        return fit(parts.model, run_data.train_loader, parts.optimizer, config.epochs, val_loader=run_data.val_loader,
                   scheduler=parts.scheduler, step_scheduler_per_batch=parts.per_batch, state=parts.state,
                   on_epoch_end=save_checkpoint, progress=config.progress, loss_fn=loss_function(config), comm=group)
    except TrainingDiverged as diverged:
        rate = parts.optimizer.param_groups[0]["lr"]
        raise RunFailed(f"{diverged}; {_what_survived(folder, saved_epoch)}. A loss that explodes usually means too "
                        f"high a learning rate: try a smaller --lr (this run's peak is {config.lr:g}; the rate was "
                        f"{rate:.3g} when it diverged)") from None


def _what_survived(folder: RunFolder, saved_epoch: int) -> str:
    if saved_epoch > 0:
        return f"the checkpoint of epoch {saved_epoch} ({folder.checkpoint}) is intact"
    return "no epoch had finished, so no checkpoint was written"


def _checkpoint(config: RunConfig, parts: TrainingParts, state: FitState, meta: dict) -> dict:
    return {
        "config": dataclasses.asdict(config),
        "meta": meta,  # classes, image shape, normalisation: what eval and predict need
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else None,
        "fit_state": state.state_dict(),
        "rng": backend.get_rng_state(),
    }


# --------------------------------------------------------------------------- 5. results
def report(plan: Plan, run_data: RunData, parts: TrainingParts, state: FitState, folder: RunFolder,
           group=None) -> dict:
    """Evaluate the test set once (with the best weights, which ``fit`` restored) and write the results.

    With ``group``, rank 0 does this alone (the plots need every prediction) and sends
    the metrics to the others, so every rank returns them.
    """
    if state.epoch == 0 or not state.history:
        raise RuntimeError("no epoch was trained")
    if group is not None:
        metrics = _report(plan, run_data, parts, state, folder) if group.rank == 0 else None
        sent = group.all_gather_bytes(json.dumps(metrics).encode("utf-8"), what="sending the test metrics")[0]
        return json.loads(sent) | {"ranks": group.size}
    return _report(plan, run_data, parts, state, folder)


def _report(plan: Plan, run_data: RunData, parts: TrainingParts, state: FitState, folder: RunFolder) -> dict:
    config = plan.config
    train_seconds = sum(record["seconds"] for record in state.history)
    test = evaluate(parts.model, run_data.test_loader, return_predictions=True)
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "epochs": state.epoch,
        "best_epoch": state.best_epoch or state.epoch,
        "best_val_accuracy": state.best_val_accuracy if state.best_epoch else None,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - parts.started,
        "images_per_second": float(np.mean([r["images_per_second"] for r in state.history])),
        "model": config.model,
        "parameters": models.count_parameters(parts.model),
        "dataset": config.dataset,
        "device": config.device,
    }
    try:
        write_json(folder.path / "history.json", state.history)
        write_json(folder.path / "metrics.json", metrics)
        _plots(folder.path, state.history, test, run_data.test_set, run_data.meta)
    except OSError as error:
        raise RunFailed(f"{error}; training finished and {_what_survived(folder, state.epoch)} (the test accuracy "
                        f"was {100 * test['accuracy']:.2f}%)") from None
    if config.progress:
        print(f"test accuracy {100 * test['accuracy']:.2f}%  test loss {test['loss']:.4f}  "
              f"({state.epoch} epochs, {train_seconds:.1f}s training)  -> {folder.path}")
    return metrics


def write_json(path: Path, value) -> None:
    """Write strict JSON: a nan or inf (a loss that overflowed) is written as null."""
    text = json.dumps(json_safe(value), indent=2, allow_nan=False)
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def json_safe(value):
    """``value`` with every nan and inf (a diverged loss) as None: strict JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _plots(out_dir: Path, history, test: dict, test_set, meta: dict) -> None:
    viz.plot_history(history, out_dir / "curves.png", title=f"{meta['model']} on {meta['dataset']}")
    viz.plot_confusion_matrix(test["labels"], test["predictions"], meta["classes"], out_dir / "confusion_matrix.png")
    # a grid of test images: the mistakes first, then correct ones
    wrong = np.flatnonzero(test["predictions"] != test["labels"])
    right = np.flatnonzero(test["predictions"] == test["labels"])
    shown = np.concatenate([wrong[:18], right[: 36 - min(len(wrong), 18)]])
    viz.plot_predictions(test_set.images[shown], test["labels"][shown], test["predictions"][shown], meta["classes"],
                         out_dir / "predictions.png", probs=test["probabilities"][shown].max(axis=1))


# --------------------------------------------------------------------------- checkpoints, for eval and predict
def load_checkpoint(path) -> dict:
    """Read a run's checkpoint (a file, or a run directory holding ``checkpoint.npz``)."""
    path = Path(path)
    if path.is_dir():
        if not (path / "checkpoint.npz").is_file():
            raise CheckpointError(f"{path} holds no checkpoint.npz: give a run folder written by tinycnn train, "
                                  f"or a checkpoint file")
        path = path / "checkpoint.npz"
    checkpoint = load(path)
    missing = [k for k in ("config", "meta", "model") if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} is a tinycnn file but not a model checkpoint (missing {', '.join(missing)}): "
                              f"weights saved with tinycnn.save do not say how to prepare an image for them; save "
                              f"the model with tinycnn.save_model(path, model, name=..., classes=..., mean=..., "
                              f"std=..., image_shape=...)")
    return checkpoint


def save_model(path, model, *, name: str, classes, mean, std, image_shape, resize: str = "crop",
               background=None, model_args: dict | None = None) -> Path:
    """Save a model trained in Python so that ``tinycnn predict``, ``eval`` and ``export`` can use it.

    A checkpoint must say how to prepare an image for the model: ``name`` (its zoo
    name, e.g. ``"lenet5"``, to rebuild it), ``classes`` (index = label),
    ``image_shape`` (C, H, W), the normalisation ``mean`` and ``std`` per channel
    on the [0, 1] scale, the ``resize`` policy and the ``background`` colour
    transparent inputs are put on (default black). ``model_args``: the keyword
    arguments the model was built with beyond classes and channels (e.g.
    ``{"small_input": True}``); by default the twins' ``small_input`` as the model
    holds it, else what ``tinycnn train`` would use for that image size.
    """
    image_shape = [int(n) for n in image_shape]
    if model_args is None:
        model_args = model_arguments(name, image_shape[1])
        if hasattr(model, "small_input"):
            model_args["small_input"] = bool(model.small_input)
    meta = {"classes": [str(c) for c in classes], "image_shape": image_shape, "mean": [float(m) for m in mean],
            "std": [float(s) for s in std], "dataset": "custom", "model": name, "resize": resize,
            "background": [int(v) for v in (background if background is not None else [0] * image_shape[0])],
            "model_args": dict(model_args)}
    if len(meta["mean"]) != image_shape[0] or len(meta["std"]) != image_shape[0]:
        raise ValueError(f"save_model: mean and std need one value per channel ({image_shape[0]}), got "
                         f"{len(meta['mean'])} and {len(meta['std'])}")
    checkpoint = {"config": {"model": name, "dataset": "custom", "resize": resize}, "meta": meta,
                  "model": model.state_dict()}
    model_from_checkpoint(checkpoint)  # refuses now, not at predict time, weights that do not fit the name
    return save(checkpoint, path)


def checkpoint_weights(checkpoint: dict, weights: str = "best") -> dict:
    """The state_dict of a checkpoint: the weights that did best on validation (``"best"``, when the
    run kept them), else the last epoch's (``"last"``)."""
    best = (checkpoint.get("fit_state") or {}).get("best_state")
    return best if weights == "best" and best is not None else checkpoint["model"]


def model_from_checkpoint(checkpoint: dict, device: str = "cpu", weights: str = "best"):
    """Rebuild the checkpoint's model and load its weights (the best on validation by default)."""
    meta, name = checkpoint["meta"], checkpoint["config"]["model"]
    try:
        model = build_model(name, len(meta["classes"]), meta["image_shape"][0], meta["image_shape"][1],
                            meta.get("model_args"))  # older checkpoints have none: derived from the image size
    except TypeError as error:   # arguments recorded for another model
        raise CheckpointError(f"the checkpoint's model arguments {meta.get('model_args')} do not fit model "
                              f"{name!r}: {error}") from None
    state = checkpoint_weights(checkpoint, weights)
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
