"""The ``tinycnn`` command.

    tinycnn train [options]                 train a model (default: a small CNN on built-in shapes)
    tinycnn eval --checkpoint RUN           re-evaluate a trained model on the test set
    tinycnn predict --checkpoint RUN PATH.. classify image files and folders
    tinycnn export --checkpoint RUN --onnx F  write the model as an ONNX file
    tinycnn explore RUN                     a web page to look inside a trained model
    tinycnn info                            versions and the devices this machine offers

Every bad argument or missing file ends in a one-line error, not a traceback
(set TINYCNN_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

from .config import Number


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


class UserError(Exception):
    """A problem with what the user asked for: reported in one line."""


# --------------------------------------------------------------------------- commands
def _train(args) -> int:
    from .config import from_arguments
    from .runner import run_training

    metrics = run_training(from_arguments(args), resume=args.resume, overwrite=args.overwrite)
    from .distributed import rank

    if args.progress is False and rank() == 0:  # --quiet (with --distributed: rank 0 speaks for all)
        print(f"test accuracy {100 * metrics['test_accuracy']:.2f}%")
    return 0


def _eval(args) -> int:
    from . import data
    from .runner import RunConfig, build_transforms, load_checkpoint, model_from_checkpoint, prepare_data
    from .train import evaluate

    checkpoint = load_checkpoint(args.checkpoint)
    saved, meta = RunConfig(**checkpoint["config"]), checkpoint["meta"]
    model = model_from_checkpoint(checkpoint, args.device, weights="last" if args.last else "best")
    if saved.dataset == "custom":  # a model saved with save_model: evaluate it on a labelled folder, all of it
        if args.images is None:
            raise UserError(f"{args.checkpoint} records no data set (a model saved with save_model): give a "
                            f"labelled folder to evaluate it on with --images DIR")
        channels, size = meta["image_shape"][:2]
        test_set = data.ImageFolder(args.images, image_size=size, channels=channels, resize=meta["resize"],
                                    classes=meta["classes"])
    else:
        for name in ("data_dir", "images"):  # data that has moved since training
            if getattr(args, name) is not None:
                setattr(saved, name, getattr(args, name))
        saved.download, saved.progress = args.download, False
        test_set = prepare_data(saved).test_set  # the same test part as in training (own images: the same split)
    _, eval_transform = build_transforms(saved, meta["mean"], meta["std"], meta["image_shape"][1])
    loader = data.DataLoader(test_set, batch_size=args.batch_size, device=args.device, transform=eval_transform)
    result = evaluate(model, loader)
    print(json.dumps({"test_accuracy": result["accuracy"], "test_loss": result["loss"], "images": result["count"]}))
    return 0


def _predict(args) -> int:
    from .predict_files import classify_files, collect_inputs, polarity_warning
    from .runner import load_checkpoint, model_from_checkpoint

    checkpoint = load_checkpoint(args.checkpoint)
    meta = checkpoint["meta"]
    classes = meta["classes"]
    model = model_from_checkpoint(checkpoint, args.device)
    items = classify_files(model, meta, collect_inputs(args.paths, classes), args.device, args.invert, args.top)
    for item in items:
        if item.error is not None:
            print(f"{item.path}: error: {item.error}")
        else:
            print(f"{item.path}: " + ", ".join(f"{name} {100 * p:.1f}%" for name, p in item.top))
    warning = polarity_warning(items, meta, args.invert)
    if warning:
        print(warning, file=sys.stderr)
    labelled = [item for item in items if item.label is not None and item.error is None]
    if labelled:
        _labelled_summary(labelled, classes, args.confusion_matrix)
    if args.csv:
        _write_csv(args.csv, items, args.top)
    if args.json:
        _write_json(args.json, items)
    failed = sum(item.error is not None for item in items)
    if failed:
        print(f"tinycnn predict: {failed} of {len(items)} inputs could not be classified (see their lines)",
              file=sys.stderr)
        return 1
    return 0


def _labelled_summary(labelled, classes, confusion_path) -> None:
    import numpy as np

    from . import viz

    truth = np.array([classes.index(item.label) for item in labelled])
    guess = np.array([classes.index(item.top[0][0]) for item in labelled])
    print(f"accuracy {100 * np.mean(truth == guess):.2f}% on {len(labelled)} labelled images")
    viz.plot_confusion_matrix(truth, guess, classes, confusion_path)
    print(f"confusion matrix -> {confusion_path}")


def _write_csv(path, items, top) -> None:
    import csv
    import io

    from .atomic import atomic_write

    text = io.StringIO()
    writer = csv.writer(text)
    header = ["file", "label", "prediction", "probability"]
    for rank in range(2, top + 1):
        header += [f"class_{rank}", f"probability_{rank}"]
    writer.writerow(header + ["error"])
    for item in items:
        ranked = [value for name, p in item.top for value in (name, f"{p:.6f}")]
        ranked += [""] * (2 * top - len(ranked))
        writer.writerow([str(item.path), item.label or "", *ranked, item.error or ""])
    atomic_write(path, lambda file: file.write(text.getvalue().encode("utf-8")))


def _write_json(path, items) -> None:
    from .runner import write_json

    write_json(path, [{"file": str(item.path), "label": item.label, "error": item.error,
                       "top": [{"class": name, "probability": p} for name, p in item.top]} for item in items])


def _export(args) -> int:
    from .io import export_onnx
    from .runner import load_checkpoint, model_from_checkpoint

    checkpoint = load_checkpoint(args.checkpoint)
    meta = checkpoint["meta"]
    model = model_from_checkpoint(checkpoint, "cpu", weights="last" if args.last else "best")
    # The file records how to prepare an image, so it can be used without tinycnn.
    metadata = {key: json.dumps(meta.get(key)) for key in ("classes", "image_shape", "mean", "std", "resize",
                                                           "background")}
    metadata["input"] = "pixels / 255" if not args.no_normalize else "(pixels / 255 - mean) / std"
    path = export_onnx(model, args.onnx, input_shape=meta["image_shape"], opset=args.opset,
                       normalize=None if args.no_normalize else (meta["mean"], meta["std"]), metadata=metadata)
    channels, height, width = meta["image_shape"]
    print(f"{path}: {checkpoint['config']['model']}, input 'input' (batch, {channels}, {height}, {width}) "
          f"{'normalised' if args.no_normalize else 'pixels / 255'}, output 'output' (batch, {len(meta['classes'])}) "
          f"logits for {', '.join(meta['classes'])}")
    return 0


def _explore(args) -> int:
    from .explore import serve

    serve(args.checkpoint, host=args.host, port=args.port, device=args.device, data_dir=args.data_dir,
          images=args.images, weights="last" if args.last else "best", open_browser=args.open, quiet=not args.verbose)
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
    from .distributed import launched_size, mpi_library

    library = mpi_library()
    print(f"mpi     {library or 'not installed (many machines: pip install tinycnn[mpi])'}")
    size = launched_size()
    print(f"world   {size} process{'es' if size > 1 else ''} "
          f"({'started by mpiexec' if size > 1 else 'not started by mpiexec'}; train with --distributed)")
    return 0


# --------------------------------------------------------------------------- arguments
_positive_int = Number(int, at_least=1)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .config import add_arguments

    parser = _Parser(prog="tinycnn", description="A from-scratch, educational CNN engine.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser("train", help="train a model; with no options, a small CNN on built-in shapes",
                                description="Train a CNN. Defaults depend on --dataset (see README).")
    add_arguments(train)  # one option per RunConfig field (tinycnn/config.py)
    train.add_argument("--resume", metavar="RUN", help="continue the run in this run folder (or checkpoint file); "
                                                       "it writes there, or into --out")
    train.add_argument("--overwrite", action="store_true", help="let this run replace the run its --out folder holds")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("eval", help="evaluate a trained model on its test set")
    evaluate.add_argument("--checkpoint", required=True, help="a checkpoint.npz or the run directory holding it")
    evaluate.add_argument("--data-dir", help="where the data set is now, if it has moved")
    evaluate.add_argument("--images", metavar="DIR", help="where the run's image folder is now, if it has moved (a "
                                                          "model saved with save_model: the labelled folder to use)")
    evaluate.add_argument("--download", action="store_true")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--batch-size", type=_positive_int, default=500)
    evaluate.add_argument("--last", action="store_true", help="use the last epoch's weights, not the best on validation")
    evaluate.set_defaults(handler=_eval)

    predict = commands.add_parser("predict", help="classify image files and folders with a trained model")
    predict.add_argument("--checkpoint", required=True, help="a run folder or its checkpoint.npz")
    predict.add_argument("paths", nargs="+", metavar="PATH",
                         help="image files (PNG, JPEG, BMP, GIF, WebP, TIFF; any size or mode) and folders (searched "
                              "recursively; sub-folders named after classes give accuracy)")
    predict.add_argument("--top", type=_positive_int, default=3, help="how many classes to show (default 3)")
    predict.add_argument("--invert", action="store_true", help="invert grey levels (dark digits on white paper)")
    predict.add_argument("--csv", metavar="FILE", help="write every result (file, top classes, probabilities) as CSV")
    predict.add_argument("--json", metavar="FILE", help="write every result as JSON")
    predict.add_argument("--confusion-matrix", metavar="FILE", default="confusion_matrix.png",
                         help="where a labelled folder's confusion matrix goes (default confusion_matrix.png)")
    predict.add_argument("--device", default="cpu")
    predict.set_defaults(handler=_predict)

    export = commands.add_parser("export", help="write a trained model as an ONNX file (pip install 'tinycnn[onnx]')")
    export.add_argument("--checkpoint", required=True, help="a run folder or its checkpoint.npz")
    export.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    export.add_argument("--no-normalize", action="store_true",
                        help="leave the input normalisation out: the file then takes normalised images, not pixels/255")
    export.add_argument("--opset", type=Number(int, at_least=13), default=17, help="ONNX opset (default 17)")
    export.add_argument("--last", action="store_true", help="the last epoch's weights, not the best on validation")
    export.set_defaults(handler=_export)

    explore = commands.add_parser("explore", help="a web page to look inside a trained model: draw or upload an "
                                                  "image, see every layer's feature maps, saliency and Grad-CAM",
                                  description="Serve a page (on this machine only, by default) that shows what a "
                                              "trained model does with an image, layer by layer.")
    explore.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT", help="a run folder or its checkpoint.npz")
    explore.add_argument("--port", type=Number(int, at_least=0, below=65536), default=8000,
                         help="the port to listen on (default 8000; 0 picks a free one)")
    explore.add_argument("--host", default="127.0.0.1",
                         help="the address to listen on (default 127.0.0.1: this machine only; another address "
                              "makes the page reachable from the network, without a password)")
    explore.add_argument("--device", default="cpu")
    explore.add_argument("--data-dir", help="where the run's data set is now, if it has moved (for its test images)")
    explore.add_argument("--images", metavar="DIR", help="where the run's image folder is now, if it has moved")
    explore.add_argument("--last", action="store_true", help="the last epoch's weights, not the best on validation")
    explore.add_argument("--open", action="store_true", help="open the page in the default web browser")
    explore.add_argument("--verbose", action="store_true", help="log every request")
    explore.set_defaults(handler=_explore)

    info = commands.add_parser("info", help="show versions and available devices")
    info.set_defaults(handler=_info)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    from .backend import DeviceError
    from .env import flag
    from . import fast
    from .fast import keep_freed_memory
    from .runner import RunFailed
    from .serialization import CheckpointError
    from .distributed import DistributedError

    debug = False
    try:
        debug = flag("TINYCNN_DEBUG", False, "1: show tracebacks")
        fast.enabled(), fast.get_num_threads()  # the other settings, checked before anything runs
        keep_freed_memory()  # the command's process keeps freed memory for reuse (tinycnn/fast/allocator.py)
        return args.handler(args)
    except (UserError, CheckpointError, DeviceError, RunFailed, FileNotFoundError, ValueError, OSError,
            ImportError, DistributedError) as error:
        if debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"tinycnn {args.command}: error: {message}", file=sys.stderr)
        return _end_every_rank(1)
    except KeyboardInterrupt:
        print(f"tinycnn {args.command}: interrupted", file=sys.stderr)
        return _end_every_rank(130)
    except BaseException:
        if _in_multi_rank_run():  # a bug on one rank: its traceback, then every rank stops
            import traceback

            traceback.print_exc()
            _end_every_rank(1)
        raise


def _in_multi_rank_run() -> bool:
    from . import distributed

    return distributed.is_initialized() and distributed.world_size() > 1


def _end_every_rank(code: int) -> int:
    """A rank that fails ends the whole run (MPI_Abort), so the others do not wait for it until the timeout.

    Outside a multi-rank run it only returns ``code``.
    """
    if _in_multi_rank_run():
        from . import distributed

        distributed.group().abort(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
