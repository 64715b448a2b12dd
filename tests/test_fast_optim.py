"""The fused optimizer kernels (lstmkit.kernels.optim) against the plain NumPy
formulas they replaced, over several steps, float32 and float64; the
optimizers' handling of non-contiguous parameters, mixed dtypes, state shapes
and the clipnorm scale folded into the kernels. (Parity with torch.optim is
in test_model_optimizers.py.)"""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.kernels import optim as kernels

DTYPES = [np.float32, np.float64]
STEPS = 4


def numpy_steps(kind, p, grads, dtype, lr=0.01, **hp):
    """The NumPy formulas of lstmkit.optimizers before the kernels, on a copy of p."""
    p = p.copy()
    s1, s2 = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if kind == "sgd":
            p -= lr * g
        elif kind in ("momentum", "nesterov"):
            mom = hp["momentum"]
            s1 *= mom
            s1 += g
            p -= lr * (g + mom * s1 if kind == "nesterov" else s1)
        elif kind == "adam":
            b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
            s1 *= b1
            s1 += (1 - b1) * g
            s2 *= b2
            s2 += (1 - b2) * g * g
            p -= lr * (s1 / (1 - b1 ** t)) / (np.sqrt(s2 / (1 - b2 ** t)) + eps)
        elif kind in ("rmsprop", "rmsprop-momentum"):
            rho, eps, mom = hp["rho"], hp["epsilon"], hp.get("momentum", 0.0)
            s1 *= rho
            s1 += (1 - rho) * g * g
            step = g / (np.sqrt(s1) + eps)
            if mom > 0:
                s2 *= mom
                s2 += step
                step = s2
            p -= lr * step
    assert p.dtype == dtype                      # NumPy kept float32 in float32
    return p


CASES = {
    "sgd": (lambda: lk.SGD(0.01), {}),
    "momentum": (lambda: lk.SGD(0.01, momentum=0.9), {"momentum": 0.9}),
    "nesterov": (lambda: lk.SGD(0.01, momentum=0.9, nesterov=True), {"momentum": 0.9}),
    "adam": (lambda: lk.Adam(0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-6),
             {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-6}),
    "rmsprop": (lambda: lk.RMSprop(0.01, rho=0.8, epsilon=1e-6), {"rho": 0.8, "epsilon": 1e-6}),
    "rmsprop-momentum": (lambda: lk.RMSprop(0.01, rho=0.8, momentum=0.5, epsilon=1e-6),
                         {"rho": 0.8, "momentum": 0.5, "epsilon": 1e-6}),
}


def data(dtype, shape=(37, 5), seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(STEPS)]
    return p, grads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(CASES))
def test_kernels_match_numpy_formulas(kind, dtype):
    make, hp = CASES[kind]
    p0, grads = data(dtype)
    expected = numpy_steps(kind, p0, grads, dtype, **hp)
    opt, p = make(), p0.copy()
    for g in grads:
        opt.apply({"w": p}, {"w": g})
    assert p.dtype == dtype
    if kind == "adam":
        # the bias corrections are folded into two scalars (as torch does): a few ulp apart
        rtol = 1e-5 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(p, expected, rtol=rtol, atol=rtol * 1e-2)
    else:
        # same operations in the same order, no fastmath: bit for bit
        np.testing.assert_array_equal(p, expected)
    assert not np.array_equal(p, p0)             # it did move


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["momentum", "adam", "rmsprop-momentum"])
def test_non_contiguous_param_is_updated_in_place(kind, dtype):
    make, _ = CASES[kind]
    p0, grads = data(dtype, shape=(6, 8))
    base = np.zeros((6, 16), dtype)
    base[:, ::2] = p0
    view = base[:, ::2]                           # (6, 8), every other column: not contiguous
    assert not view.flags.c_contiguous
    ref, opt, opt_ref = p0.copy(), make(), make()
    for g in grads:
        opt.apply({"w": view}, {"w": g})
        opt_ref.apply({"w": ref}, {"w": g})
    np.testing.assert_array_equal(view, ref)      # the layer's own array holds the update
    np.testing.assert_array_equal(base[:, 1::2], 0.0)    # and nothing around it moved
    for slot in opt.state["w"].values():
        assert slot.shape == (6, 8) and slot.flags.c_contiguous


def test_mixed_dtypes_and_cast_gradients():
    p32, p64 = np.ones((3, 2), np.float32), np.ones(4, np.float64)
    opt = lk.Adam(0.1)
    opt.apply({"a": p32, "b": p64}, {"a": np.full((3, 2), 2.0), "b": np.full(4, -2.0, np.float32)})
    assert p32.dtype == np.float32 and p64.dtype == np.float64
    np.testing.assert_allclose(p32, 0.9, rtol=1e-6)         # first Adam step: lr * sign(g)
    np.testing.assert_allclose(p64, 1.1, rtol=1e-6)
    assert opt.state["a"]["m"].shape == (3, 2) and opt.state["a"]["m"].dtype == np.float32
    with pytest.raises(ValueError, match=r"gradient 'b' must have the parameter's shape \(4,\); got \(5,\)"):
        opt.apply({"b": p64}, {"b": np.ones(5)})
    with pytest.raises(TypeError, match="parameter 'i' must be float32 or float64; got dtype int64"):
        opt.apply({"i": np.ones(3, np.int64)}, {"i": np.ones(3)})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(CASES))
def test_clipnorm_scale_in_kernel_equals_clipping_first(kind, dtype):
    # apply() hands the clipnorm factor to the kernel; clip() makes the scaled copies
    make, _ = CASES[kind]
    p0, grads = data(dtype)
    big = [g * dtype(50) for g in grads]
    a, b = p0.copy(), p0.copy()
    opt_a, opt_b = make(), make()
    opt_a.clipnorm = 0.5
    for g in big:
        opt_a.apply({"w": a}, {"w": g})
        clipped = opt_a.clip({"w": g})["w"]
        assert abs(np.linalg.norm(clipped.astype(np.float64)) - 0.5) < 1e-5
        opt_b.apply({"w": b}, {"w": clipped})
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 7, 8, 1001])
def test_sum_squares_is_a_float64_sum(dtype, n):
    x = (np.random.default_rng(n).standard_normal(n) * 1e3).astype(dtype)
    got = kernels.sum_squares(x)
    expected = float((x.astype(np.float64) ** 2).sum())
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-13, abs=0.0)
    if dtype == np.float32 and n > 100:
        # a float32 accumulation would be ~1e-7 off: the sum really is float64
        assert abs(float(np.sum(x * x, dtype=np.float32)) - expected) > abs(got - expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_split_over_threads_changes_no_number(dtype, monkeypatch):
    # from policy.OPTIM_MIN_ELEMENTS on, Adam's update splits the elements over the engine's threads;
    # each element is updated alone, so 1, 2 or 3 threads give the same bits after several steps
    from lstmkit.kernels import policy, threads
    rng = np.random.default_rng(3)
    n = policy.OPTIM_MIN_ELEMENTS + 37                       # not a multiple of the 16-element alignment
    p0 = rng.standard_normal((n // 7 + 1, 7)).astype(dtype)
    grads = [rng.standard_normal(p0.shape).astype(dtype) for _ in range(STEPS)]
    parts = []
    run = threads.run
    monkeypatch.setattr(threads, "run", lambda kernel, b, *a: (parts.append(len(b)), run(kernel, b, *a)))
    got = []
    for t in (1, 2, 3):
        with lk.config(threads=t):
            opt, p = lk.Adam(0.01, clipnorm=1.0), p0.copy()
            for g in grads:
                opt.apply({"w": p, "small": np.ones(8, dtype)}, {"w": g, "small": np.ones(8, dtype)})
            got.append(p)
    assert [n for n in parts if n > 1] == [2] * STEPS + [3] * STEPS   # the small array: one thread
    assert parts.count(1) == 4 * STEPS                        # 1 thread: both arrays; 2 and 3: the small one
    assert np.array_equal(got[0], got[1]) and np.array_equal(got[0], got[2])
    with lk.config(threads=2):                               # split, and still the NumPy formulas
        opt, p = lk.Adam(0.01), p0.copy()
        for g in grads:
            opt.apply({"w": p}, {"w": g})
    ref = numpy_steps("adam", p0, grads, dtype, lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    np.testing.assert_allclose(p, ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
