"""Every differentiable op of functional/math.py passes gradcheck on random shapes.

Shapes are drawn with hypothesis, including 0-d tensors, size-1 axes and pairs
of shapes that broadcast against each other.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinycnn
import tinycnn.functional as F
from tinycnn import gradcheck

SETTINGS = settings(max_examples=25, deadline=None)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**31 - 1)


def rand(shape, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def away_from(values, points, margin=0.05):
    """Push values at least ``margin`` away from kinks (0 for relu/abs, clip bounds)."""
    values = values.copy()
    for p in points:
        near = np.abs(values - p) < margin
        values[near] = p + np.where(values[near] >= p, margin, -margin) * 2
    return values


def param(array):
    return tinycnn.tensor(array, requires_grad=True, dtype="float64")


# --------------------------------------------------------------------------- binary, broadcasting
@pytest.mark.parametrize("op", [F.add, F.sub, F.mul, F.div], ids=["add", "sub", "mul", "div"])
@SETTINGS
@given(pair=broadcast_pairs, seed=seeds)
def test_binary_ops_broadcast(op, pair, seed):
    shape_a, shape_b = pair.input_shapes
    a = rand(shape_a, seed)
    b = rand(shape_b, seed + 1, 0.5, 2.0) * np.random.default_rng(seed).choice([-1, 1], size=shape_b)
    gradcheck(op, [param(a), param(b)])


@SETTINGS
@given(pair=broadcast_pairs, seed=seeds)
def test_pow_tensor_exponent_broadcast(pair, seed):
    shape_a, shape_b = pair.input_shapes
    gradcheck(F.pow, [param(rand(shape_a, seed, 0.5, 2.0)), param(rand(shape_b, seed + 1, -2, 2))])


@SETTINGS
@given(pair=broadcast_pairs, seed=seeds)
def test_maximum_and_where_broadcast(pair, seed):
    shape_a, shape_b = pair.input_shapes
    a, b = rand(shape_a, seed), rand(shape_b, seed + 1)
    # keep a and b apart so no element sits on the tie
    a = a + 0.2 * np.sign(a - np.broadcast_to(b, np.broadcast_shapes(a.shape, b.shape)).mean())
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    if np.abs(np.broadcast_to(a, out_shape) - np.broadcast_to(b, out_shape)).min(initial=1) < 1e-3:
        return
    gradcheck(F.maximum, [param(a), param(b)])
    gradcheck(F.minimum, [param(a), param(b)])
    condition = tinycnn.tensor(np.random.default_rng(seed).random(out_shape) > 0.5)
    gradcheck(lambda x, y: F.where(condition, x, y), [param(a), param(b)])


@SETTINGS
@given(shape=shapes, seed=seeds, scalar=st.floats(-3, 3).filter(lambda s: abs(s) > 0.1))
def test_python_scalars_mix_in(shape, seed, scalar):
    x = param(rand(shape, seed, 0.5, 2.0))
    gradcheck(lambda t: scalar + t * scalar - t / scalar, [x])
    gradcheck(lambda t: scalar - t, [x])
    gradcheck(lambda t: scalar / t, [x])
    gradcheck(lambda t: t**scalar, [x])
    gradcheck(lambda t: abs(scalar) ** t, [x])
    gradcheck(lambda t: -t, [x])


def test_scalar_keeps_float32():
    x = tinycnn.ones(3)
    assert (x * 2.5).dtype == np.float32
    assert (2.5 - x).dtype == np.float32
    assert (x / 3).dtype == np.float32


# --------------------------------------------------------------------------- matmul
@SETTINGS
@given(
    n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4),
    batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
    seed=seeds,
)
def test_matmul_batched_broadcast(n, k, m, batch, seed):
    a = rand(batch.input_shapes[0] + (n, k), seed)
    b = rand(batch.input_shapes[1] + (k, m), seed + 1)
    gradcheck(F.matmul, [param(a), param(b)])


@pytest.mark.parametrize("shape_a,shape_b", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 4, 3), (3,)), ((3,), (2, 3, 4))])
def test_matmul_vectors(shape_a, shape_b):
    a, b = param(rand(shape_a, 0)), param(rand(shape_b, 1))
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy())
    gradcheck(lambda x, y: x @ y, [a, b])


# --------------------------------------------------------------------------- unary
UNARY = {
    "exp": (F.exp, (-2, 2), []),
    "log": (F.log, (0.2, 3), []),
    "sqrt": (F.sqrt, (0.2, 3), []),
    "tanh": (F.tanh, (-3, 3), []),
    "sigmoid": (F.sigmoid, (-5, 5), []),
    "relu": (F.relu, (-2, 2), [0.0]),
    "abs": (F.abs, (-2, 2), [0.0]),
    "clip": (lambda x: F.clip(x, -0.5, 1.0), (-2, 2), [-0.5, 1.0]),
    "clip_low_only": (lambda x: x.clip(min=0.3), (-2, 2), [0.3]),
}


@pytest.mark.parametrize("name", list(UNARY))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary_ops(name, shape, seed):
    op, (low, high), kinks = UNARY[name]
    x = away_from(rand(shape, seed, low, high), kinks)
    gradcheck(op, [param(x)])


def test_sigmoid_is_stable_for_large_inputs():
    x = tinycnn.tensor([-1e4, 0.0, 1e4], requires_grad=True)
    y = x.sigmoid()
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.5, 1.0])
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


# --------------------------------------------------------------------------- reductions
@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    axis = draw(st.one_of(
        st.none(),
        st.integers(-len(shape), len(shape) - 1),
        st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True).map(tuple),
    ))
    return shape, axis


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@SETTINGS
@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_reductions(name, case, keepdims, seed):
    shape, axis = case
    x = np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) * 0.1  # distinct: no ties
    got = getattr(param(x), name)(axis=axis, keepdims=keepdims)
    expected = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}[name](x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(got.numpy(), expected)
    gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [param(x)])


def test_reduction_dim_alias_and_zero_d():
    x = param(rand((2, 3), 0))
    np.testing.assert_allclose(x.sum(dim=1).numpy(), x.numpy().sum(axis=1))
    scalar = param(np.array(1.5))
    gradcheck(lambda t: t.sum() * t.mean() + t.max(), [scalar])


def test_max_splits_gradient_between_ties():
    x = tinycnn.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5, 0.5])


# --------------------------------------------------------------------------- shapes
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), seed=seeds, data=st.data())
def test_shape_ops(shape, seed, data):
    x = param(rand(shape, seed))
    dims = data.draw(st.permutations(range(len(shape))))
    gradcheck(lambda t: t.permute(*dims) * tinycnn.arange(np.prod(shape), dtype="float64").reshape(
        tuple(shape[d] for d in dims)), [x])
    gradcheck(lambda t: t.reshape(-1), [x])
    gradcheck(lambda t: t.flatten(), [x])
    gradcheck(lambda t: t.transpose(0, -1), [x])
    gradcheck(lambda t: t.unsqueeze(0).squeeze(0), [x])
    gradcheck(lambda t: t.T, [x])


def test_flatten_like_pytorch():
    x = tinycnn.zeros(2, 3, 4, 5)
    assert x.flatten().shape == (120,)
    assert x.flatten(1).shape == (2, 60)
    assert F.flatten(x, 1, 2).shape == (2, 12, 5)


def test_expand_broadcast_gradient():
    x = param(rand((3, 1), 0))
    gradcheck(lambda t: t.expand(2, 3, 4), [x])


# --------------------------------------------------------------------------- indexing and joining
INDEXES = {
    "int": 1,
    "negative int": -1,
    "slice": slice(1, 3),
    "step slice": (slice(None), slice(None, None, 2)),
    "ellipsis": (Ellipsis, 0),
    "none": (None, 1),
    "int array": np.array([0, 2, 2, 1]),  # repeated index: gradients add up
    "two int arrays": (np.array([0, 1, 1]), np.array([2, 0, 0])),
    "list": [3, 0, 3],
    "bool mask": np.array([True, False, True, True]),
}


@pytest.mark.parametrize("name", list(INDEXES))
def test_getitem(name):
    index = INDEXES[name]
    x = param(rand((4, 3, 2), 7))
    np.testing.assert_array_equal(x[index].numpy(), x.numpy()[index])
    gradcheck(lambda t: t[index], [x])


def test_getitem_tensor_index():
    x = param(rand((5,), 0))
    index = tinycnn.tensor([4, 4, 0])
    gradcheck(lambda t: t[index], [x])
    x[index].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 0, 0, 0, 2])


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), seed=seeds, data=st.data())
def test_concatenate_and_stack(shape, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    other_shape = list(shape)
    other_shape[axis] = data.draw(st.integers(1, 3))
    a, b = param(rand(shape, seed)), param(rand(tuple(other_shape), seed + 1))
    np.testing.assert_array_equal(tinycnn.cat([a, b], dim=axis).numpy(), np.concatenate([a.numpy(), b.numpy()], axis))
    gradcheck(lambda x, y: tinycnn.concatenate([x, y, x], axis=axis), [a, b])
    c = param(rand(shape, seed + 2))
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    np.testing.assert_array_equal(tinycnn.stack([a, c], axis=new_axis).numpy(), np.stack([a.numpy(), c.numpy()], new_axis))
    gradcheck(lambda x, y: tinycnn.stack([x, y], axis=new_axis), [a, c])


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=3), seed=seeds, data=st.data())
def test_pad(shape, seed, data):
    widths = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape)
    x = param(rand(shape, seed))
    np.testing.assert_array_equal(tinycnn.pad(x, widths, value=0.5).numpy(), np.pad(x.numpy(), widths, constant_values=0.5))
    gradcheck(lambda t: tinycnn.pad(t, widths), [x])


# --------------------------------------------------------------------------- dtype and composition
def test_cast_is_differentiable():
    x = tinycnn.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * 3
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [3, 3])


def test_composite_expression():
    """A small MLP-like expression touching many ops at once."""
    rng = np.random.default_rng(0)
    w, b, x = param(rng.normal(size=(4, 3))), param(rng.normal(size=3)), param(rng.normal(size=(5, 4)))

    def f(w, b, x):
        h = (x @ w + b).tanh()
        return (h.exp() / h.exp().sum(axis=1, keepdims=True)).log().mean() + (h**2).sum() * 0.1

    gradcheck(f, [w, b, x])
