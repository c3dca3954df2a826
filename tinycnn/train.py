"""Training and evaluation loops, used by the ``tinycnn`` command and the lessons.

The loop is the plain one every framework hides::

    for images, labels in loader:
        loss = loss_fn(model(images), labels)   # forward: builds the graph
        optimizer.zero_grad()
        loss.backward()                          # backward: fills every .grad
        optimizer.step()                         # update the weights in place

:func:`fit` adds what a real run needs around it: a validation pass after every
epoch, best-model selection on validation accuracy only (the test set is never
looked at while choosing), learning-rate schedules, a progress bar with loss,
accuracy and images/s, and a :class:`FitState` that can be checkpointed and
resumed. Loss and accuracy sums stay on the device during an epoch (no
host-device copy per batch); they are read once at its end.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from . import backend
from .functional import cross_entropy
from .functional.loss import raise_if_targets_were_out_of_range
from .tensor import no_grad

__all__ = ["FitState", "TrainingDiverged", "fit", "train_one_epoch", "evaluate", "predict"]


class TrainingDiverged(ArithmeticError):
    """The training loss stopped being a finite number: the weights are ruined from here on.

    Attributes: ``epoch`` (1-based; 0 when unknown), ``step`` (the batch, 1-based, at
    which the loss was seen to be non-finite), ``steps`` (batches in the epoch),
    ``loss`` (the value seen: nan or inf).
    """

    def __init__(self, step: int, steps: int, loss: float, epoch: int = 0):
        super().__init__(step, steps, loss, epoch)
        self.step, self.steps, self.loss, self.epoch = step, steps, loss, epoch

    def __str__(self) -> str:
        where = f"epoch {self.epoch}, step {self.step} of {self.steps}" if self.epoch else \
            f"step {self.step} of {self.steps}"
        return f"training diverged: the loss became {self.loss} at {where}"


@dataclass
class FitState:
    """Everything about a run's progress that a checkpoint must hold to resume it.

    Attributes:
        epoch: epochs completed so far.
        history: one dict per completed epoch (losses, accuracies, lr, seconds).
        best_epoch: the epoch with the best validation accuracy (0: none yet).
        best_val_accuracy: that accuracy.
        best_state: a copy of the model's state_dict at ``best_epoch`` (NumPy arrays).
    """

    epoch: int = 0
    history: list = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = -1.0
    best_state: dict | None = None

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch, "history": self.history, "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy, "best_state": self.best_state,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> "FitState":
        return cls(**state)


def _batch_counts(logits, labels, loss):
    """(sum of per-image losses, number correct) as device scalars: no sync."""
    correct = (logits.data.argmax(axis=1) == labels.data).sum()
    return loss.data * labels.shape[0], correct


def logits_and_loss(outputs, labels, loss_fn):
    """A training batch's logits and loss. A model with auxiliary classifiers (GoogLeNet in
    training) returns a tuple, the main logits first, and says how much each auxiliary loss
    counts (``aux_loss_weight``): they are added to the main loss, and only the main logits
    are scored."""
    if not hasattr(outputs, "aux_loss_weight"):
        return outputs, loss_fn(outputs, labels)
    logits, *auxiliary = outputs
    loss = loss_fn(logits, labels)
    for aux_logits in auxiliary:
        if aux_logits is not None:
            loss = loss + outputs.aux_loss_weight * loss_fn(aux_logits, labels)
    return logits, loss


def train_one_epoch(model, loader, optimizer, loss_fn=None, scheduler=None, progress=True, desc="train",
                    comm=None) -> dict:
    """One pass over ``loader`` with updates. Returns mean loss, accuracy, images/s, seconds.

    ``comm`` (data parallelism, :mod:`tinycnn.distributed`): each rank's loader yields
    its share of every batch; the loss and accuracy reported are then those of all
    ranks together (their sums are all-reduced once, at the end of the epoch).

    ``scheduler`` (optional) is stepped after every batch: pass a per-step
    schedule such as OneCycleLR here, and step per-epoch schedules yourself.

    Raises :class:`TrainingDiverged` as soon as the loss is seen to be nan or inf
    (checked every step on the CPU; every 10th step on a GPU, where reading a value
    waits for the device), so a diverged run never trains on, nor reports an accuracy.
    """
    loss_fn = loss_fn or cross_entropy
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    check_every = None
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch", dynamic_ncols=True)
    for step, (images, labels) in enumerate(bar):
        logits, loss = logits_and_loss(model(images), labels, loss_fn)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        batch_loss, batch_correct = _batch_counts(logits, labels, loss)
        loss_sum, correct, seen = loss_sum + batch_loss, correct + batch_correct, seen + labels.shape[0]
        if check_every is None:
            check_every = 1 if backend.get_array_module(loss.data) is np else 10
        if step % check_every == check_every - 1 or step == len(loader) - 1:
            raise_if_targets_were_out_of_range()  # deferred on a GPU: read here, where the host waits anyway
            if not math.isfinite(float(loss_sum)):  # a nan or inf stays in the running sum
                raise TrainingDiverged(step + 1, len(loader), float(loss_sum))
        if progress and (step % 10 == 0 or step == len(loader) - 1):  # reading a value syncs the GPU: not every step
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{float(loss_sum) / seen:.4f}", acc=f"{100 * float(correct) / seen:.2f}%",
                            img_s=f"{seen / elapsed:.0f}")
    seconds = time.perf_counter() - start
    loss_sum, correct, seen = _summed_over_ranks(comm, loss_sum, correct, seen)
    seen = max(seen, 1)
    return {"loss": float(loss_sum) / seen, "accuracy": float(correct) / seen,
            "images_per_second": seen / seconds, "seconds": seconds}


def evaluate(model, loader, loss_fn=None, return_predictions: bool = False, progress: bool = False,
             comm=None) -> dict:
    """Mean loss and accuracy of ``model`` on ``loader``, in eval mode and without a graph.

    With ``comm`` each rank evaluates its shard of ``loader`` and the counts of all
    ranks are summed, so every rank returns the result over the whole data set
    (the predictions, if asked for, are this rank's only).

    With ``return_predictions`` also the predicted labels, the true labels and the
    softmax probabilities as NumPy arrays (``predictions``, ``labels``, ``probabilities``).
    """
    loss_fn = loss_fn or cross_entropy
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    predictions, truths, probabilities = [], [], []
    start = time.perf_counter()
    with no_grad():
        for images, labels in tqdm(loader, desc="eval", leave=False, disable=not progress, unit="batch"):
            logits = model(images)
            loss = loss_fn(logits, labels)
            batch_loss, batch_correct = _batch_counts(logits, labels, loss)
            loss_sum, correct, seen = loss_sum + batch_loss, correct + batch_correct, seen + labels.shape[0]
            if return_predictions:  # kept on the device, copied to the host once at the end
                xp = backend.get_array_module(logits.data)
                shifted = logits.data - logits.data.max(axis=1, keepdims=True)
                probs = xp.exp(shifted)
                probs /= probs.sum(axis=1, keepdims=True)
                predictions.append(probs.argmax(axis=1))
                truths.append(labels.data)
                probabilities.append(probs)
    model.train(was_training)
    raise_if_targets_were_out_of_range()
    seconds = time.perf_counter() - start
    loss_sum, correct, seen = _summed_over_ranks(comm, loss_sum, correct, seen)
    result = {"loss": float(loss_sum) / max(seen, 1), "accuracy": float(correct) / max(seen, 1),
              "images_per_second": seen / max(seconds, 1e-9), "count": seen}
    if return_predictions:
        result["predictions"] = _joined(predictions, np.zeros(0, np.int64))
        result["labels"] = _joined(truths, np.zeros(0, np.int64))
        result["probabilities"] = _joined(probabilities, np.zeros((0, 0)))
    return result


def _summed_over_ranks(comm, loss_sum, correct, seen) -> tuple:
    """(loss sum, correct, seen) over all ranks of ``comm`` (one all-reduce); unchanged without one."""
    if comm is None:
        return loss_sum, correct, seen
    totals = comm.all_reduce(np.array([float(loss_sum), float(correct), float(seen)]), what="summing the counts")
    return float(totals[0]), int(totals[1]), int(totals[2])


def _joined(arrays: list, empty: np.ndarray) -> np.ndarray:
    """The per-batch arrays (on any device) as one NumPy array: one device -> host copy."""
    if not arrays:
        return empty
    return backend.to_numpy(backend.get_array_module(arrays[0]).concatenate(arrays))


def predict(model, images) -> np.ndarray:
    """Softmax probabilities (N, num_classes) for a batch of prepared images (a Tensor)."""
    was_training = model.training
    model.eval()
    with no_grad():
        logits = model(images).data
    model.train(was_training)
    xp = backend.get_array_module(logits)
    probs = xp.exp(logits - logits.max(axis=1, keepdims=True))
    return backend.to_numpy(probs / probs.sum(axis=1, keepdims=True))


def fit(model, train_loader, optimizer, epochs: int, val_loader=None, scheduler=None,
        step_scheduler_per_batch: bool = False, loss_fn=None, state: FitState | None = None,
        on_epoch_end=None, progress: bool = True, restore_best: bool = True, comm=None) -> FitState:
    """Train for ``epochs`` epochs (continuing from ``state.epoch`` when resuming).

    Args:
        scheduler: a learning-rate schedule, stepped once per epoch, or once per
            batch with ``step_scheduler_per_batch=True`` (OneCycleLR).
        val_loader: evaluated after every epoch; the weights with the best
            validation accuracy are kept and, with ``restore_best``, loaded back at the end.
        state: a :class:`FitState` to resume from (its epoch, history and best model).
        on_epoch_end: called as ``on_epoch_end(state)`` after each epoch, e.g. to
            save a checkpoint.
        comm: data parallelism (:mod:`tinycnn.distributed`): the loaders yield this
            rank's shares, ``model`` averages its gradients over the ranks, and the
            losses and accuracies (so the choice of the best epoch) are over all ranks.

    Raises :class:`TrainingDiverged` (naming the epoch and step) when the loss
    becomes nan or inf; ``state`` then still describes the last complete epoch.

    Returns the final :class:`FitState` (``state.history`` holds every epoch).
    """
    state = state or FitState()
    for epoch in range(state.epoch + 1, epochs + 1):
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch - 1)  # the shuffle order depends on (seed, epoch) only
        backend.start_epoch(epoch)  # GPU generators from (seed, device, epoch): a resumed run continues them
        lr = optimizer.param_groups[0]["lr"]
        try:
            train = train_one_epoch(model, train_loader, optimizer, loss_fn,
                                    scheduler if step_scheduler_per_batch else None,
                                    progress=progress, desc=f"epoch {epoch}/{epochs}", comm=comm)
        except TrainingDiverged as diverged:
            diverged.epoch = epoch  # the epoch is known here, not inside the epoch
            raise
        if scheduler is not None and not step_scheduler_per_batch:
            scheduler.step()
        record = {"epoch": epoch, "lr": lr, "train_loss": train["loss"], "train_accuracy": train["accuracy"],
                  "images_per_second": train["images_per_second"], "seconds": train["seconds"]}
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, comm=comm)
            record.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            if val["accuracy"] > state.best_val_accuracy:
                state.best_epoch, state.best_val_accuracy = epoch, val["accuracy"]
                state.best_state = copy.deepcopy(model.state_dict())
        state.history.append(record)
        state.epoch = epoch
        if progress:
            tqdm.write(_describe(record))
        if on_epoch_end is not None:
            on_epoch_end(state)
    if restore_best and state.best_state is not None:
        model.load_state_dict(state.best_state)
    return state


def _describe(record: dict) -> str:
    text = (f"epoch {record['epoch']:3d}  lr {record['lr']:.4g}  train loss {record['train_loss']:.4f} "
            f"acc {100 * record['train_accuracy']:.2f}%")
    if "val_accuracy" in record:
        text += f"  val loss {record['val_loss']:.4f} acc {100 * record['val_accuracy']:.2f}%"
    return text + f"  ({record['images_per_second']:.0f} img/s, {record['seconds']:.1f}s)"
