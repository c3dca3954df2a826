"""Batch transforms: shapes, dtypes, value ranges, seeded reproducibility, exact identities."""

from __future__ import annotations

import numpy as np
import pytest

import tinycnn
from tinycnn.data import (
    Compose, Cutout, Normalize, RandomAffine, RandomCrop, RandomHorizontalFlip, RandomRotation, RandomScale,
    RandomTranslation, ToFloat,
)


@pytest.fixture
def batch():
    return np.random.default_rng(0).integers(0, 256, (8, 3, 12, 12), dtype=np.uint8)


RANDOM_TRANSFORMS = [
    lambda seed: RandomCrop(12, padding=2, seed=seed),
    lambda seed: RandomCrop(12, padding=2, padding_mode="reflect", seed=seed),
    lambda seed: RandomHorizontalFlip(seed=seed),
    lambda seed: RandomRotation(30, seed=seed),
    lambda seed: RandomScale((0.8, 1.2), seed=seed),
    lambda seed: RandomTranslation((0.2, 0.2), seed=seed),
    lambda seed: RandomAffine(15, translate=0.1, scale=(0.9, 1.1), interpolation="nearest", seed=seed),
    lambda seed: Cutout(4, seed=seed),
]


@pytest.mark.parametrize("make", RANDOM_TRANSFORMS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_random_transforms_keep_shape_and_dtype_and_are_seeded(make, dtype, batch):
    images = batch if dtype == np.uint8 else batch.astype(np.float32) / 255
    out = make(7)(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= (255 if dtype == np.uint8 else 1)
    np.testing.assert_array_equal(out, make(7)(images))          # same seed, same result
    transform = make(7)
    assert not np.array_equal(transform(images), transform(images))  # a new draw each call


@pytest.mark.parametrize("make", RANDOM_TRANSFORMS)
def test_unseeded_transforms_follow_manual_seed(make, batch):
    tinycnn.manual_seed(3)
    first = make(None)(batch)
    tinycnn.manual_seed(3)
    np.testing.assert_array_equal(first, make(None)(batch))


def test_to_float_and_normalize(batch):
    x = ToFloat()(batch)
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x * 255, batch, atol=1e-4)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    y = Normalize(mean, std)(x)
    np.testing.assert_allclose(y[:, 1], (x[:, 1] - 0.2) / 0.25, rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32


def test_normalize_refuses_uint8_and_wrong_channel_count(batch):
    with pytest.raises(TypeError, match="ToFloat"):
        Normalize((0.5,), (0.5,))(batch)
    with pytest.raises(ValueError, match="3 channels"):
        Normalize((0.5, 0.5), (0.5, 0.5))(ToFloat()(batch))


def test_flip_twice_is_identity(batch):
    flip = RandomHorizontalFlip(p=1.0)
    np.testing.assert_array_equal(flip(batch), batch[..., ::-1])
    np.testing.assert_array_equal(flip(flip(batch)), batch)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(batch), batch)


def test_flip_flips_about_half(batch):
    images = np.repeat(batch[:1], 1000, axis=0)
    flipped = (RandomHorizontalFlip(seed=0)(images) != images).any(axis=(1, 2, 3)).mean()
    assert 0.4 < flipped < 0.6


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_rotation_by_zero_is_identity(batch, interpolation, dtype):
    images = batch.astype(dtype)
    np.testing.assert_array_equal(RandomRotation(0, interpolation=interpolation)(images), images)
    np.testing.assert_array_equal(RandomScale((1, 1))(images), images)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_rotation_by_90_degrees_is_rot90(batch, interpolation):
    rotated = RandomRotation((90, 90), interpolation=interpolation)(batch)
    np.testing.assert_array_equal(rotated, np.rot90(batch, k=1, axes=(2, 3)))


def test_translation_is_a_whole_pixel_shift_with_zero_fill():
    images = np.arange(2 * 1 * 10 * 10, dtype=np.float32).reshape(2, 1, 10, 10) + 1
    out = RandomTranslation((0.3, 0.3), seed=5)(images)
    for original, shifted in zip(images, out):
        # Find the shift: the output is the input moved by (dy, dx), zeros where it came from outside.
        kept = shifted[shifted > 0]
        assert kept.size >= 49
        y, x = np.argwhere(shifted[0] == kept[0])[0]
        oy, ox = np.argwhere(original[0] == kept[0])[0]
        dy, dx = y - oy, x - ox
        expected = np.zeros_like(original)
        expected[:, max(dy, 0):10 + min(dy, 0), max(dx, 0):10 + min(dx, 0)] = \
            original[:, max(-dy, 0):10 + min(-dy, 0), max(-dx, 0):10 + min(-dx, 0)]
        np.testing.assert_array_equal(shifted, expected)


def test_zoom_in_by_two_enlarges_the_centre():
    images = np.zeros((1, 1, 8, 8), np.float32)
    images[0, 0, 3:5, 3:5] = 1                       # a 2x2 square at the centre
    out = RandomScale((2, 2), interpolation="nearest")(images)
    assert out.sum() == 16 and out[0, 0, 2:6, 2:6].all()   # now 4x4


def test_crop_windows_come_from_the_padded_image(batch):
    out = RandomCrop(8, padding=2, seed=1)(batch)
    assert out.shape == (8, 3, 8, 8)
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for image, window in zip(padded, out):
        assert any(np.array_equal(image[:, t:t + 8, s:s + 8], window) for t in range(9) for s in range(9))
    np.testing.assert_array_equal(RandomCrop(12)(batch), batch)   # no padding, full size: identity


def test_crop_reflect_padding_mirrors_the_border():
    images = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    tops_lefts = set()
    for seed in range(60):   # 9 offsets: 60 draws see them all (the chance one is missed is ~1%)
        out = RandomCrop(4, padding=1, padding_mode="reflect", seed=seed)(images)
        padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
        matches = [(t, s) for t in range(3) for s in range(3) if np.array_equal(padded[..., t:t + 4, s:s + 4], out)]
        assert matches
        tops_lefts.update(matches)
    assert len(tops_lefts) == 9   # every offset gets drawn


def test_cutout_blanks_at_most_a_square(batch):
    images = batch.astype(np.float32) + 1           # no zeros before
    out = Cutout(4, seed=0)(images)
    holes = (out == 0).all(axis=1)                  # (N, H, W)
    per_image = holes.sum(axis=(1, 2))
    assert (per_image <= 16).all() and per_image.max() == 16 and (per_image > 0).all()
    np.testing.assert_array_equal(out[~np.repeat(holes[:, None], 3, 1)], images[~np.repeat(holes[:, None], 3, 1)])


def test_compose_applies_in_order(batch):
    pipeline = Compose([RandomHorizontalFlip(p=1.0), ToFloat(), Normalize((0.5,), (0.5,))])
    out = pipeline(batch)
    np.testing.assert_allclose(out, (batch[..., ::-1] / 255 - 0.5) / 0.5, atol=1e-6)
    assert "Normalize" in repr(pipeline)


def test_transforms_refuse_non_batches():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        RandomHorizontalFlip()(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="padding_mode"):
        RandomCrop(8, padding_mode="edge")
