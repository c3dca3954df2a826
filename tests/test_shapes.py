"""Shapes: deterministic per seed, train != test, balanced, the documented layout, hard for a linear model."""

from __future__ import annotations

import time

import numpy as np

from tinycnn.data import SHAPES_MEAN, Shapes


def test_layout():
    ds = Shapes(train=True, n=60, size=24)
    assert ds.images.shape == (60, 3, 24, 24) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and len(ds) == 60
    assert len(ds.classes) >= 5 and ds.classes[0] == "circle"
    image, label = ds[0]
    assert image.shape == (3, 24, 24) and 0 <= label < len(ds.classes)


def test_deterministic_per_seed():
    a, b = Shapes(n=50, seed=3), Shapes(n=50, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(Shapes(n=50, seed=4).images, a.images)


def test_train_and_test_differ():
    train, test = Shapes(train=True, n=100, seed=0), Shapes(train=False, n=100, seed=0)
    assert not np.array_equal(train.images, test.images)
    assert not np.array_equal(train.labels, test.labels)
    # no test image appears in the training set
    train_set = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in train_set for image in test.images)


def test_class_balance():
    counts = Shapes(n=1000).class_counts()
    assert counts.max() - counts.min() <= 1 and counts.sum() == 1000


def test_default_sizes_and_statistics():
    train = Shapes(train=True)
    assert len(train) == 10000 and len(Shapes(train=False)) == 2000
    np.testing.assert_allclose(train.images.mean(axis=(0, 2, 3)) / 255, SHAPES_MEAN, atol=0.02)


def test_drawing_is_fast():
    start = time.perf_counter()
    Shapes(n=3000)
    assert time.perf_counter() - start < 5.0   # typically ~0.4 s; generous for slow CI machines


def test_figures_are_visible():
    # Every image has pixels far from its background colour (the figure).
    ds = Shapes(n=200)
    images = ds.images.astype(np.int16)
    corner = images[:, :, :2, :2].reshape(200, 3, -1).mean(axis=2)[:, :, None, None]
    far = (np.abs(images - corner).max(axis=1) > 60).sum(axis=(1, 2))
    assert (far >= 10).all()


def test_not_solvable_by_class_mean_templates():
    # A linear (template-matching) classifier on raw pixels is near chance: position,
    # colour and rotation vary. (Softmax regression scores about 20% with 6 classes.)
    train, test = Shapes(train=True, n=3000), Shapes(train=False, n=600)
    x = train.images.reshape(len(train), -1) / 255.0
    templates = np.stack([x[train.labels == k].mean(0) for k in range(len(train.classes))])
    xt = test.images.reshape(len(test), -1) / 255.0
    predicted = ((xt[:, None, :] - templates[None]) ** 2).sum(-1).argmin(1)
    assert (predicted == test.labels).mean() < 0.4
