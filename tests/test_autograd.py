"""The autograd engine: graph walk, accumulation, freeing, no_grad, the deep chain."""

import numpy as np
import pytest

import tinycnn
from tinycnn import Function, GradcheckError, gradcheck


def test_gradient_of_a_hand_built_graph():
    x = tinycnn.tensor(2.0, requires_grad=True)
    y = tinycnn.tensor(3.0, requires_grad=True)
    z = x * y + x.exp()  # dz/dx = y + e^x, dz/dy = x
    z.backward()
    assert x.grad.item() == pytest.approx(3.0 + np.exp(2.0))
    assert y.grad.item() == pytest.approx(2.0)


def test_diamond_graph_sums_both_paths():
    x = tinycnn.tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    b = x * x
    (a + b).sum().backward()  # d/dx (2x + x^2) = 2 + 2x
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 6.0])


def test_same_tensor_used_twice_in_one_op():
    x = tinycnn.tensor([3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0])
    y = tinycnn.tensor([3.0], requires_grad=True)
    (y + y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [2.0])


def test_gradients_accumulate_across_backward_calls():
    x = tinycnn.tensor([1.0, -1.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 - 2])
    x.zero_grad()
    assert x.grad is None


def test_graph_is_freed_unless_retained():
    x = tinycnn.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()  # allowed: the first call kept the graph
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_freed_graph_releases_saved_arrays():
    x = tinycnn.tensor(np.ones(3), requires_grad=True)
    h = x.exp()
    y = h.sum()
    y.backward()
    assert h.grad_fn.inputs is None and not hasattr(h.grad_fn, "out")


def test_deep_chain_of_100k_ops_needs_no_recursion():
    x = tinycnn.tensor(1.0, requires_grad=True, dtype="float64")
    y = x
    for _ in range(100_000):
        y = y * 1.00001  # y = x * 1.00001**100000, dy/dx = 1.00001**100000
    y.backward()
    assert x.grad.item() == pytest.approx(1.00001**100_000, rel=1e-9)


def test_no_grad_records_no_graph():
    x = tinycnn.tensor([1.0], requires_grad=True)
    with tinycnn.no_grad():
        y = x * 2 + 1
        assert not tinycnn.is_grad_enabled()
        with tinycnn.enable_grad():
            z = x * 2
    assert tinycnn.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad
    assert z.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_as_decorator():
    @tinycnn.no_grad()
    def evaluate(t):
        return t * 2

    assert not evaluate(tinycnn.tensor([1.0], requires_grad=True)).requires_grad


def test_detach_cuts_the_graph():
    x = tinycnn.tensor([2.0], requires_grad=True)
    y = x * x.detach()  # the detached factor is a constant
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0])


def test_retain_grad_on_intermediate():
    x = tinycnn.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])


def test_non_scalar_backward_needs_gradient():
    x = tinycnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="one-element"):
        y.backward()
    y.backward(tinycnn.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_gradient_dtype_follows_input():
    a = tinycnn.tensor([1.0], requires_grad=True)
    b = tinycnn.tensor([2.0], requires_grad=True, dtype="float64")
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


# --------------------------------------------------------------------------- gradcheck itself
class WrongSquare(Function):
    """x**2 with a planted bug: the backward forgets the factor 2."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return grad * self.x


def test_gradcheck_catches_a_wrong_backward():
    x = tinycnn.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True, dtype="float64")
    with pytest.raises(GradcheckError) as error:
        gradcheck(lambda t: WrongSquare.apply(t).sum(), [x], names=["x"])
    message = str(error.value)
    assert "for x" in message and "index (2,)" in message  # worst element: largest |x|
    assert "analytic 2," in message and "numeric 4," in message
    assert "relative error 0.5" in message


def test_gradcheck_passes_a_right_backward_and_leaves_inputs_alone():
    x = tinycnn.tensor([0.5, -1.0], requires_grad=True)
    before = x.numpy().copy()
    assert gradcheck(lambda t: t * t, [x])
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.grad is None and x.dtype == np.float32


def test_gradcheck_skips_constants_and_integer_inputs():
    x = tinycnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    constant = tinycnn.tensor([5.0, 6.0, 7.0])
    index = tinycnn.tensor([2, 0])
    assert gradcheck(lambda t, c, i: (t * c)[i], [x, constant, index])
    with pytest.raises(ValueError, match="no input to check"):
        gradcheck(lambda c: c * 2, [constant])


def test_gradcheck_detects_missing_gradient():
    class Frozen(Function):
        def forward(self, x):
            return x * 3

        def backward(self, grad):
            return grad * 0

    with pytest.raises(GradcheckError, match="numeric 3"):
        gradcheck(lambda t: Frozen.apply(t).sum(), [np.array([1.0, 2.0])])
