"""Data parallelism, run *inside* ``mpiexec -n 2``: ``mpiexec -n 2 python -m pytest tests/test_distributed_mpi.py``.

.ci/run does that. Each rank runs every test; a test compares what the ranks
computed together with what one process computes alone on the whole batch
(every rank computes that reference itself, from the same seed). In a plain
``pytest`` run (one process) these tests skip, saying so; tests/test_distributed.py
launches mpiexec itself for the faults and the command.
"""

import numpy as np
import pytest

import tinycnn
from tinycnn import distributed as dist
from tinycnn import nn, optim
from tinycnn.data import DataLoader
from tinycnn.functional import cross_entropy

mpi4py = pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'tinycnn[mpi]')")

if dist.launched_size() < 2:
    pytest.skip("needs ranks: run under `mpiexec -n 2 python -m pytest tests/test_distributed_mpi.py` (.ci/run does)",
                allow_module_level=True)

GROUP = dist.init(timeout=60)


def small_model(batch_norm: bool):
    layers = [nn.Conv2d(1, 4, 3, padding=1)]
    layers += [nn.BatchNorm2d(4)] if batch_norm else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)]
    return nn.Sequential(*layers)


def data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), rng.integers(0, 3, n)


def train(model, loader, steps_epochs=2, lr=0.1, momentum=0.9):
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=1e-3)
    for _ in range(steps_epochs):
        for images, labels in loader:
            if images.dtype != model_dtype(model):
                images = images.to(dtype=model_dtype(model))
            loss = cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.state_dict()


def model_dtype(model):
    return next(iter(model.parameters())).dtype


@pytest.mark.parametrize("batch_norm", [False, True], ids=["no-batchnorm", "syncbatchnorm"])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "after-backward"])
def test_ranks_give_the_weights_of_one_process(batch_norm, dtype, rtol, overlap):
    # 40 samples, batch 16: the last batch (8) is smaller, and still split exactly
    tinycnn.manual_seed(0)
    alone = small_model(batch_norm).to(dtype=dtype)
    tinycnn.manual_seed(100 + GROUP.rank)   # different initial weights per rank: the broadcast must fix them
    together = small_model(batch_norm).to(dtype=dtype)
    if GROUP.rank == 0:
        together.load_state_dict(alone.state_dict())
    if batch_norm:
        together = dist.SyncBatchNorm.convert_sync_batchnorm(together)
    together = dist.DistributedDataParallel(together, bucket_mb=0.0005, overlap=overlap)  # several buckets
    assert len(together.buckets) > 1

    expected = train(alone, DataLoader(data(), batch_size=16, shuffle=True, seed=3))
    sharded = DataLoader(data(), batch_size=16, shuffle=True, seed=3)
    sharded.set_shard(GROUP.rank, GROUP.size)
    got = train(together, sharded)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=rtol, atol=rtol * 1e-2, err_msg=name)


def test_shards_cover_every_epoch_once():
    images, labels = data(n=37)
    loader = DataLoader((np.arange(37, dtype=np.uint8).reshape(37, 1, 1, 1).repeat(2, 2).repeat(2, 3), labels),
                        batch_size=8, shuffle=True, seed=5)
    loader.set_shard(GROUP.rank, GROUP.size)
    loader.set_epoch(2)
    mine = np.concatenate([np.round(x.numpy()[:, 0, 0, 0] * 255).astype(np.int64) for x, _ in loader])
    everyone = GROUP.all_gather_bytes(mine.tobytes())
    seen = np.concatenate([np.frombuffer(b, dtype=np.int64) for b in everyone])
    assert sorted(seen.tolist()) == list(range(37))


def test_evaluation_counts_are_summed():
    from tinycnn.train import evaluate

    tinycnn.manual_seed(0)
    model = small_model(False)
    whole = evaluate(model, DataLoader(data(n=33), batch_size=10))
    sharded = DataLoader(data(n=33), batch_size=10)
    sharded.set_shard(GROUP.rank, GROUP.size)
    parts = evaluate(model, sharded, comm=GROUP)
    assert parts["count"] == 33
    assert parts["accuracy"] == pytest.approx(whole["accuracy"], abs=1e-12)
    assert parts["loss"] == pytest.approx(whole["loss"], rel=1e-6)


def test_a_model_mismatch_names_the_parameter():
    model = small_model(batch_norm=GROUP.rank == 1)
    with pytest.raises(dist.RanksDisagree, match=r"on the model: 4\.weight is '\(3, 64\) float32' on rank 0 but '\(absent\)' on rank 1"):
        dist.check_ranks_agree(GROUP, "model", dist.model_signature(model))
