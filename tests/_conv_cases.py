"""Convolution cases shared by the conv tests (test_conv.py, test_fast_conv.py, test_floors.py)."""

import numpy as np

import tinycnn
import tinycnn.functional as F


def conv2d_loops(x, weight, bias, stride, padding, dilation, groups):
    """The definition, one multiply-add at a time (the oracle for the tests)."""
    n, c, h, w = x.shape
    out_channels, group_channels, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    padded[:, :, ph:ph + h, pw:pw + w] = x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, out_channels, oh, ow))
    per_group = out_channels // groups
    for b in range(n):
        for o in range(out_channels):
            first_channel = (o // per_group) * group_channels
            for y in range(oh):
                for z in range(ow):
                    total = 0.0 if bias is None else bias[o]
                    for ci in range(group_channels):
                        for i in range(kh):
                            for j in range(kw):
                                total += padded[b, first_channel + ci, y * sh + i * dh, z * sw + j * dw] * weight[o, ci, i, j]
                    out[b, o, y, z] = total
    return out


def random_configs(count, seed):
    """Small random convolutions: strides 1-3, padding 0-2, dilation 1-2, groups 1/2/depthwise,
    odd and non-square sizes and kernels, batch 1 included."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        groups_kind = rng.choice(["one", "two", "depthwise"])
        group_count = {"one": 1, "two": 2}.get(groups_kind, int(rng.integers(2, 4)))
        c = group_count * int(rng.integers(1, 3)) if groups_kind != "depthwise" else group_count
        o = group_count * int(rng.integers(1, 3)) if groups_kind != "depthwise" else group_count
        kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        h, w = int(rng.integers(3, 8)), int(rng.integers(3, 8))
        n = int(rng.integers(1, 3))
        if dilation[0] * (kh - 1) + 1 > h + 2 * padding[0] or dilation[1] * (kw - 1) + 1 > w + 2 * padding[1]:
            continue
        configs.append(dict(n=n, c=c, h=h, w=w, o=o, groups=group_count, kernel=(kh, kw),
                            stride=stride, padding=padding, dilation=dilation, bias=bool(rng.integers(0, 2))))
    return configs


def make_inputs(cfg, seed, dtype=np.float64, requires_grad=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"])).astype(dtype)
    weight = rng.standard_normal((cfg["o"], cfg["c"] // cfg["groups"]) + cfg["kernel"]).astype(dtype)
    bias = rng.standard_normal(cfg["o"]).astype(dtype) if cfg["bias"] else None
    as_tensor = lambda a: None if a is None else tinycnn.tensor(a, dtype=dtype, requires_grad=requires_grad)
    return x, weight, bias, as_tensor(x), as_tensor(weight), as_tensor(bias)


def call(cfg, x, weight, bias):
    return F.conv2d(x, weight, bias, stride=cfg["stride"], padding=cfg["padding"],
                    dilation=cfg["dilation"], groups=cfg["groups"])
