"""The ``tinycnn`` command.

    tinycnn train [options]                 train a model (default: a small CNN on built-in shapes)
    tinycnn eval --checkpoint RUN           re-evaluate a trained model on the test set
    tinycnn predict --checkpoint RUN IMG..  classify image files
    tinycnn info                            versions and the devices this machine offers

Every bad argument or missing file ends in a one-line error, not a traceback
(set TINYCNN_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


class UserError(Exception):
    """A problem with what the user asked for: reported in one line."""


# --------------------------------------------------------------------------- commands
def _train(args) -> int:
    from .runner import RunConfig, run_training

    config = RunConfig(
        dataset=args.dataset, model=args.model, data_dir=args.data_dir, download=args.download, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
        augment=args.augment, val_split=args.val_split, label_smoothing=args.label_smoothing,
        train_size=args.train_size, device=args.device, seed=args.seed, out=args.out, progress=not args.quiet,
    )
    metrics = run_training(config, resume=args.resume)
    if args.quiet:
        print(f"test accuracy {100 * metrics['test_accuracy']:.2f}%")
    return 0


def _eval(args) -> int:
    from . import data
    from .runner import RunConfig, build_transforms, load_checkpoint, load_dataset, model_from_checkpoint
    from .train import evaluate

    checkpoint = load_checkpoint(args.checkpoint)
    meta, saved = checkpoint["meta"], RunConfig(**checkpoint["config"])
    if args.data_dir is not None:
        saved.data_dir = args.data_dir
    saved.download = args.download
    model = model_from_checkpoint(checkpoint, args.device, weights="last" if args.last else "best")
    test_set = load_dataset(saved, train=False)
    _, eval_transform = build_transforms(saved, meta["mean"], meta["std"], meta["image_shape"][1])
    loader = data.DataLoader(test_set, batch_size=args.batch_size, device=args.device, transform=eval_transform)
    result = evaluate(model, loader)
    print(json.dumps({"test_accuracy": result["accuracy"], "test_loss": result["loss"], "images": result["count"]}))
    return 0


def _predict(args) -> int:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from .runner import load_checkpoint, model_from_checkpoint, prepare_images
    from .train import predict

    checkpoint = load_checkpoint(args.checkpoint)
    meta = checkpoint["meta"]
    channels, height, width = meta["image_shape"]
    model = model_from_checkpoint(checkpoint, args.device)
    batch = []
    for name in args.images:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"image file {name!r} does not exist")
        try:
            with Image.open(path) as image:
                image = image.convert("L" if channels == 1 else "RGB")
                # Shrinking averages each output pixel's area (BOX), as a camera pixel does and as
                # MNIST's digits were made; enlarging interpolates (BILINEAR).
                shrink = image.width >= width and image.height >= height
                image = image.resize((width, height), Image.BOX if shrink else Image.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as error:
            raise UserError(f"cannot read {name!r} as an image ({error})") from None
        array = array[None] if channels == 1 else array.transpose(2, 0, 1)
        batch.append(255 - array if args.invert else array)
    probabilities = predict(model, prepare_images(np.stack(batch), meta, args.device))
    classes = meta["classes"]
    top = min(args.top, len(classes))
    for name, probs in zip(args.images, probabilities):
        order = np.argsort(-probs)[:top]
        ranked = ", ".join(f"{classes[i]} {100 * probs[i]:.1f}%" for i in order)
        print(f"{name}: {ranked}")
    return 0


def _info(args) -> int:
    import numpy as np

    from . import __version__, backend, fast

    print(f"tinycnn {__version__}")
    print(f"python  {platform.python_version()} ({sys.executable})")
    print(f"numpy   {np.__version__}")
    print(f"threads {fast.get_num_threads()} CPU workers (TINYCNN_NUM_THREADS)")
    print(f"floor   {fast.describe()}")
    try:
        import cupy

        print(f"cupy    {cupy.__version__}")
    except ImportError:
        print("cupy    not installed (GPU support: pip install 'tinycnn[cuda12]' or 'tinycnn[cuda13]')")
    print(f"cuda    {'available' if backend.cuda_is_available() else 'not available'}")
    return 0


# --------------------------------------------------------------------------- arguments
def _number(kind, minimum, strictly_above: bool = False):
    """An argparse type: a ``kind`` (int or float) of at least ``minimum`` (or above it)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        if value < minimum or (strictly_above and value == minimum):
            bound = "above" if strictly_above else "of at least"
            raise argparse.ArgumentTypeError(f"expected a number {bound} {minimum}, got {value}")
        return value

    return parse


_positive_int = _number(int, 1)
_non_negative_int = _number(int, 0)
_positive_float = _number(float, 0, strictly_above=True)
_non_negative_float = _number(float, 0)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .models import MODELS
    from .runner import AUGMENTATIONS, DATASETS, OPTIMIZERS, SCHEDULES

    parser = _Parser(prog="tinycnn", description="A from-scratch, educational CNN engine.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser("train", help="train a model; with no options, a small CNN on built-in shapes",
                                description="Train a CNN. Defaults depend on --dataset (see README).")
    train.add_argument("--dataset", default="shapes", choices=list(DATASETS), help="data set (default: shapes)")
    train.add_argument("--model", choices=list(MODELS), help="model (default: per data set)")
    train.add_argument("--data-dir", help="folder holding mnist/, fashion-mnist/, cifar10/ (default: $TINYCNN_DATA "
                                          "or ~/.cache/tinycnn)")
    train.add_argument("--download", action="store_true", help="download the data set if missing")
    train.add_argument("--epochs", type=_positive_int)
    train.add_argument("--batch-size", type=_positive_int)
    train.add_argument("--optimizer", choices=list(OPTIMIZERS))
    train.add_argument("--lr", type=_positive_float, help="(peak) learning rate")
    train.add_argument("--momentum", type=_non_negative_float, default=0.9, help="SGD momentum (default 0.9)")
    train.add_argument("--weight-decay", type=_non_negative_float)
    train.add_argument("--schedule", choices=list(SCHEDULES), help="learning-rate schedule")
    train.add_argument("--warmup-epochs", type=_non_negative_int, default=0, help="linear warm-up epochs")
    train.add_argument("--augment", help=f"'none' or a comma list of: {', '.join(AUGMENTATIONS)}")
    train.add_argument("--val-split", type=_non_negative_int, help="training images held out for validation (0: none)")
    train.add_argument("--label-smoothing", type=_non_negative_float, default=0.0)
    train.add_argument("--train-size", type=_positive_int, help="train on only the first N training images")
    train.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="run directory (default: runs/DATASET-MODEL)")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in this checkpoint or run directory")
    train.add_argument("--quiet", action="store_true", help="no progress bar, only the final accuracy")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("eval", help="evaluate a trained model on its test set")
    evaluate.add_argument("--checkpoint", required=True, help="a checkpoint.npz or the run directory holding it")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--download", action="store_true")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--batch-size", type=_positive_int, default=500)
    evaluate.add_argument("--last", action="store_true", help="use the last epoch's weights, not the best on validation")
    evaluate.set_defaults(handler=_eval)

    predict = commands.add_parser("predict", help="classify image files with a trained model")
    predict.add_argument("--checkpoint", required=True, help="a checkpoint.npz or the run directory holding it")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG files, any size or mode")
    predict.add_argument("--top", type=_positive_int, default=3, help="how many classes to show (default 3)")
    predict.add_argument("--invert", action="store_true", help="invert grey levels (dark digits on white paper)")
    predict.add_argument("--device", default="cpu")
    predict.set_defaults(handler=_predict)

    info = commands.add_parser("info", help="show versions and available devices")
    info.set_defaults(handler=_info)
    return parser


def main(argv=None) -> int:
    from .fast import keep_freed_memory
    keep_freed_memory()   # the command's process keeps freed memory for reuse (tinycnn/fast/allocator.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    from .backend import DeviceError
    from .serialization import CheckpointError

    try:
        return args.handler(args)
    except (UserError, CheckpointError, DeviceError, FileNotFoundError, ValueError, OSError) as error:
        if os.environ.get("TINYCNN_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"tinycnn {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tinycnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
