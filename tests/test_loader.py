"""DataLoader: batch counts, every sample once per epoch, seeded and resumable order; splits."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn
from tinycnn.data import Compose, DataLoader, ImageDataset, Normalize, RandomHorizontalFlip, Subset, ToFloat, random_split


def make_dataset(n=10):
    # Every image holds its own index, so a batch says which samples it carries.
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 1, 2, 2)).copy()
    return ImageDataset(images, np.arange(n) % 3, classes=("a", "b", "c"))


def seen(loader):
    """The sample indices of each batch of one epoch, and the batches."""
    batches = [(images.numpy(), labels.numpy()) for images, labels in loader]
    return [np.rint(images[:, 0, 0, 0] * 255).astype(int) for images, _ in batches], batches


@pytest.mark.parametrize("n, batch_size, drop_last, expected", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, False, [3, 3, 3]), (2, 5, True, []),
])
def test_batch_count_and_sizes(n, batch_size, drop_last, expected):
    loader = DataLoader(make_dataset(n), batch_size, drop_last=drop_last)
    assert len(loader) == len(expected)
    assert [len(ids) for ids in seen(loader)[0]] == expected


def test_batches_are_float_tensors_and_int64_labels():
    loader = DataLoader(make_dataset(), 4)
    images, labels = next(iter(loader))
    assert isinstance(images, tinycnn.Tensor) and isinstance(labels, tinycnn.Tensor)
    assert images.dtype == np.float32 and images.shape == (4, 1, 2, 2) and images.device == "cpu"
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 0]
    assert not images.requires_grad
    assert 0 <= images.numpy().min() and images.numpy().max() <= 1


def test_no_shuffle_keeps_the_order():
    ids, _ = seen(DataLoader(make_dataset(), 4))
    assert np.concatenate(ids).tolist() == list(range(10))


def test_shuffle_visits_every_sample_once_per_epoch_in_a_new_order():
    loader = DataLoader(make_dataset(50), 8, shuffle=True, seed=1)
    orders = [np.concatenate(seen(loader)[0]) for _ in range(3)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(50))
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    assert np.array_equal(orders[1], loader.order(1))


def test_labels_travel_with_their_images():
    loader = DataLoader(make_dataset(30), 7, shuffle=True, seed=0)
    for ids, (_, labels) in zip(*seen(loader)):
        assert (ids % 3 == labels).all()


def test_same_seed_same_order_and_manual_seed_fixes_seed_none():
    a, b = DataLoader(make_dataset(40), 8, shuffle=True, seed=5), DataLoader(make_dataset(40), 8, shuffle=True, seed=5)
    assert np.array_equal(np.concatenate(seen(a)[0]), np.concatenate(seen(b)[0]))
    tinycnn.manual_seed(11)
    c = DataLoader(make_dataset(40), 8, shuffle=True)
    tinycnn.manual_seed(11)
    d = DataLoader(make_dataset(40), 8, shuffle=True)
    assert c.seed == d.seed


def test_state_dict_resumes_the_same_sequence():
    loader = DataLoader(make_dataset(40), 8, shuffle=True, seed=None)
    for _ in range(2):
        seen(loader)
    state = loader.state_dict()
    expected = [np.concatenate(seen(loader)[0]) for _ in range(2)]   # epochs 2 and 3
    resumed = DataLoader(make_dataset(40), 8, shuffle=True)            # a different random seed
    resumed.load_state_dict(state)
    assert state["epoch"] == 2
    got = [np.concatenate(seen(resumed)[0]) for _ in range(2)]
    assert all(np.array_equal(g, e) for g, e in zip(got, expected))
    resumed.set_epoch(2)
    assert np.array_equal(np.concatenate(seen(resumed)[0]), expected[0])


def test_transform_runs_on_each_batch():
    transform = Compose([RandomHorizontalFlip(p=1.0), ToFloat(), Normalize((0.5,), (0.25,))])
    images, _ = next(iter(DataLoader(make_dataset(), 4, transform=transform)))
    np.testing.assert_allclose(images.numpy()[:, 0, 0, 0], (np.arange(4) / 255 - 0.5) / 0.25, rtol=1e-5)
    # A transform that keeps uint8 still yields floats in [0, 1].
    images, _ = next(iter(DataLoader(make_dataset(), 4, transform=RandomHorizontalFlip())))
    assert images.dtype == np.float32


def test_accepts_an_images_labels_pair_and_rejects_bad_input():
    images = np.zeros((6, 1, 2, 2), np.uint8)
    assert len(DataLoader((images, np.zeros(6, np.int64)), 4)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(make_dataset(), 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        DataLoader((images[:, 0], np.zeros(6)), 2)


def test_random_split_is_a_seeded_partition():
    dataset = make_dataset(100)
    train, val = random_split(dataset, [90, 10], seed=0)
    assert len(train) == 90 and len(val) == 10 and isinstance(val, Subset)
    assert sorted(np.concatenate([train.indices, val.indices]).tolist()) == list(range(100))
    np.testing.assert_array_equal(val.labels, dataset.labels[val.indices])
    assert np.array_equal(random_split(dataset, [90, 10], seed=0)[1].indices, val.indices)
    assert not np.array_equal(random_split(dataset, [90, 10], seed=1)[1].indices, val.indices)
    assert [len(s) for s in random_split(dataset, [0.75, 0.25], seed=0)] == [75, 25]
    assert val.classes == dataset.classes and len(DataLoader(val, 4)) == 3
    with pytest.raises(ValueError, match="summing to len"):
        random_split(dataset, [50, 10])
