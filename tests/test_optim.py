"""Optimizers and the moving average: the maths against NumPy transcriptions, the flat
buffers they update (tinyhydra.nn.flat) against the per-parameter update, checkpoints."""
import numpy as np
import pytest

import tinyhydra as th
from tinyhydra import models, nn
from tinyhydra.engine import backend
from tinyhydra.nn import (
    flat,
    optim,  # adam_update too, not only the optimizers
)
from tinyhydra.optim import CosineAnnealingLR
from tinyhydra.rec import data


def numpy_adam(params, grads, steps, lr, betas, eps, weight_decay, decoupled):
    """A direct transcription of Kingma & Ba's Algorithm 1 (plus L2 / AdamW decay)."""
    beta1, beta2 = betas
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    params = [p.copy() for p in params]
    for t in range(1, steps + 1):
        for i, p in enumerate(params):
            g = grads(t, i)
            if decoupled:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat, v_hat = m[i] / (1 - beta1**t), v[i] / (1 - beta2**t)
            p -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_matches_numpy_reference(weight_decay, decoupled, rng):
    start = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    grad_table = rng.standard_normal((6, 2, 4))

    def grads(t, i):  # a fixed pseudo-gradient per step and parameter
        return np.resize(grad_table[t - 1, i], start[i].shape)

    params = [nn.Parameter(p.copy()) for p in start]
    adam = optim.Adam(params, lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=weight_decay,
                      decoupled_weight_decay=decoupled)
    for t in range(1, 7):
        for i, p in enumerate(params):
            p.grad = grads(t, i)
        adam.step()
    expected = numpy_adam(start, grads, 6, 0.01, (0.8, 0.9), 1e-6, weight_decay, decoupled)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.data, e, rtol=1e-12, atol=1e-14)


def test_sgd_momentum_matches_numpy_reference():
    p = nn.Parameter(np.array([1.0, -2.0]))
    sgd = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    expected, buffer = np.array([1.0, -2.0]), None
    for t in range(4):
        grad = np.array([0.5, t - 1.0])
        p.grad = grad.copy()
        sgd.step()
        g = grad + 0.01 * expected
        buffer = g if buffer is None else 0.9 * buffer + g
        expected = expected - 0.1 * buffer
    np.testing.assert_allclose(p.data, expected, rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.1),
    lambda ps: optim.Adam(ps, lr=0.1, weight_decay=1e-4, decoupled_weight_decay=True),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5),
])
def test_optimizers_minimise_a_quadratic_in_float32(make, device):
    """f(x) = sum(a (x - c)^2) on float32 parameters, which must stay float32."""
    target = np.array([1.0, -3.0, 0.5], dtype=np.float32)
    x = nn.Parameter(np.zeros(3, dtype=np.float32))
    x.data = backend.to_device(x.data, device)
    opt = make([x])
    for _ in range(300):
        opt.zero_grad()
        loss = (th.Tensor(backend.to_device(np.array([1.0, 2.0, 0.5], np.float32), device))
                * (x - backend.to_device(target, device)) ** 2).sum()
        loss.backward()
        opt.step()
    assert x.dtype == np.float32 and x.device == device
    np.testing.assert_allclose(x.numpy(), target, atol=2e-2)
    assert all(s.dtype == np.float32 for s in opt.state[0].values() if hasattr(s, "dtype"))


def test_moving_average_matches_its_closed_form(rng, device):
    """After values x_1..x_n the average is d^n x_0 + sum_i (1 - d) d^(n-i) x_i."""
    decay, values = 0.8, rng.standard_normal((5, 3))
    p = nn.Parameter(values[0].copy())
    p.data = backend.to_device(p.data, device)
    ema = optim.ExponentialMovingAverage([p], decay)
    for x in values[1:]:
        p.data[...] = backend.to_device(x, device)  # in place, as the optimizers update
        ema.update()
    n = len(values) - 1
    expected = decay**n * values[0] + sum((1 - decay) * decay**(n - i) * values[i] for i in range(1, n + 1))
    np.testing.assert_allclose(backend.as_numpy(ema.averages[0]), expected, rtol=1e-12)


def test_average_parameters_swaps_the_averages_in_and_back(rng):
    p = nn.Parameter(rng.standard_normal(4))
    ema = optim.ExponentialMovingAverage([p], 0.5)
    trained = p.data.copy()
    ema.averages[0][...] = 7.0
    with ema.average_parameters():
        np.testing.assert_array_equal(p.data, np.full(4, 7.0))
        p.data += 1.0  # must not leak into the averages
    np.testing.assert_array_equal(p.data, trained)
    np.testing.assert_array_equal(ema.averages[0], np.full(4, 7.0))
    with pytest.raises(RuntimeError), ema.average_parameters():
        raise RuntimeError("evaluation failed")
    np.testing.assert_array_equal(p.data, trained)  # restored on errors too


def test_moving_average_state_round_trip_and_errors(rng):
    a, b = nn.Parameter(rng.standard_normal((2, 3))), nn.Parameter(rng.standard_normal(3))
    ema = optim.ExponentialMovingAverage([a, b], 0.9)
    a.data += 1.0
    ema.update()
    other = optim.ExponentialMovingAverage([nn.Parameter(np.zeros((2, 3))), nn.Parameter(np.zeros(3))], 0.5)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.9
    for mine, theirs in zip(ema.averages, other.averages):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(ValueError, match="EMA average 1 has shape"):
        optim.ExponentialMovingAverage([a, nn.Parameter(np.zeros(4))], 0.9).load_state_dict(ema.state_dict())
    with pytest.raises(ValueError, match="2 averages"):
        optim.ExponentialMovingAverage([a], 0.9).load_state_dict(ema.state_dict())
    for decay in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="decay must be in"):
            optim.ExponentialMovingAverage([a], decay)


def test_step_skips_parameters_without_gradient():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    adam = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(2)
    adam.step()
    assert np.all(a.data < 1) and np.all(b.data == 1) and adam.state[1] == {}
    adam.zero_grad()
    assert a.grad is None


def test_optimizer_state_dict_resumes_identically():
    def run(param, opt, steps):
        for t in steps:
            param.grad = np.full(3, np.sin(t))
            opt.step()

    p = nn.Parameter(np.zeros(3))
    adam = optim.Adam([p], lr=0.05, weight_decay=0.1)
    run(p, adam, range(3))
    checkpoint, p_at_3 = adam.state_dict(), p.data.copy()
    assert checkpoint["state"][0]["step"] == 3
    assert isinstance(checkpoint["state"][0]["exp_avg"], np.ndarray)
    run(p, adam, range(3, 5))

    q = nn.Parameter(p_at_3)
    resumed = optim.Adam([q], lr=1.0)
    resumed.load_state_dict(checkpoint)  # restores the hyperparameters too
    assert resumed.lr == 0.05 and resumed.weight_decay == 0.1
    run(q, resumed, range(3, 5))
    np.testing.assert_allclose(q.data, p.data, rtol=1e-14)


def test_optimizer_errors():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="requires grad"):
        optim.SGD([th.Tensor(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="cannot load a 'SGD'"):
        optim.Adam([p]).load_state_dict(optim.SGD([p], lr=0.1).state_dict())
    state = optim.Adam([p]).state_dict()
    state["state"][0] = {"step": 1, "exp_avg": np.zeros(5), "exp_avg_sq": np.zeros(5)}
    with pytest.raises(ValueError, match="shape"):
        optim.Adam([p]).load_state_dict(state)


# ---------------------------------------------------------------- flat buffers
def small_model(dtype=np.float64):
    th.manual_seed(3)
    model = models.build_model("hydrarec-uni", 12, max_len=5, dim=4, num_layers=1, dropout=0.0)
    return model.to_dtype(dtype)


def causal_batch(seed):
    rng = np.random.default_rng(seed)
    return data.CausalBatch(rng.integers(1, 13, (3, 5)), rng.integers(1, 13, (3, 5)),
                                   rng.integers(1, 13, (3, 5, 1)))


def per_parameter_adam(start, grads_per_step, hyper):
    """Adam run parameter by parameter (adam_update on each parameter's own arrays)."""
    params = [p.copy() for p in start]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for p, g, (m, v) in zip(params, grads, moments):
            optim.adam_update(p, g, m, v, t, **hyper)
    return params, moments


@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.01, False), (0.01, True)])
def test_flat_adam_equals_the_per_parameter_update(weight_decay, decoupled):
    """One update over the flat buffer == the same formula per parameter, to float64 round-off,
    on a real model whose gradients come from backward (and so land in the flat buffer)."""
    model = small_model()
    hyper = dict(lr=0.01, betas=(0.8, 0.9), eps=1e-7, weight_decay=weight_decay,
                 decoupled_weight_decay=decoupled)
    adam = optim.Adam(model.parameters(), **hyper)
    start = [p.data.copy() for p in model.parameters()]
    grads_per_step = []
    for t in range(4):
        adam.zero_grad()
        model.loss(causal_batch(t)).backward()
        grads_per_step.append([p.grad.copy() for p in model.parameters()])
        adam.step()
    assert len(adam.flat.groups) == 1  # one dtype, one device: one flat array
    expected, moments = per_parameter_adam(start, grads_per_step, {
        "lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-7, "weight_decay": weight_decay,
        "decoupled_weight_decay": decoupled})
    for p, e, (m, v), state in zip(model.parameters(), expected, moments, adam.state):
        np.testing.assert_allclose(p.data, e, rtol=1e-15, atol=1e-18)
        np.testing.assert_allclose(state["exp_avg"], m, rtol=1e-15, atol=1e-18)
        np.testing.assert_allclose(state["exp_avg_sq"], v, rtol=1e-15, atol=1e-18)
        assert state["step"] == 4


def test_parameters_gradients_and_moments_are_views_of_the_flat_buffers():
    model = small_model(np.float32)
    params = model.parameters()
    adam = optim.Adam(params, lr=0.01)
    ema = optim.ExponentialMovingAverage(params, 0.9)
    assert ema.flat is adam.flat  # one packing for both: the same list of parameters
    model.loss(causal_batch(0)).backward()
    (group,) = adam.flat.groups
    assert group.data.dtype == np.float32 and group.data.size == sum(p.size for p in params)
    for p in params:
        assert np.shares_memory(p.data, group.data) and np.shares_memory(p.grad, group.grad)
    grads = [p.grad for p in params]
    adam.step()
    ema.update()
    assert all(p.grad is g for p, g in zip(params, grads))  # written in place by backward: no gather copy
    exp_avg, _ = adam._flat_moments[0]
    for state, average in zip(adam.state, ema.averages):
        assert np.shares_memory(state["exp_avg"], exp_avg)
        assert np.shares_memory(average, ema._flat_averages[0])
        assert state["exp_avg"].dtype == np.float32


def test_skipped_parameters_fall_back_to_the_per_parameter_update():
    """A step where one parameter has no gradient, and the steps after it (counts now
    differ), run per parameter: each keeps its own bias correction, as before."""
    a, b = nn.Parameter(np.array([1.0, 2.0])), nn.Parameter(np.array([[0.5], [-1.0]]))
    adam = optim.Adam([a, b], lr=0.1)
    ga, gb = np.array([0.3, -0.2]), np.array([[0.7], [0.1]])
    a.grad = ga.copy()
    adam.step()  # b skipped
    a.grad, b.grad = ga.copy(), gb.copy()
    adam.step()  # a at step 2, b at step 1
    expected_a, _ = per_parameter_adam([np.array([1.0, 2.0])], [[ga], [ga]],
                                       {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8})
    expected_b, _ = per_parameter_adam([np.array([[0.5], [-1.0]])], [[gb]],
                                       {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8})
    np.testing.assert_allclose(a.data, expected_a[0], rtol=1e-15)
    np.testing.assert_allclose(b.data, expected_b[0], rtol=1e-15)
    assert [s["step"] for s in adam.state] == [2, 1]


def test_replacing_parameter_arrays_repacks_instead_of_breaking_the_views(rng):
    """Module.load_state_dict and to_dtype replace param.data after the optimizer was built:
    the next step packs the new arrays (and casts the moments) and updates the model."""
    model = small_model()
    adam = optim.Adam(model.parameters(), lr=0.01)
    ema = optim.ExponentialMovingAverage(model.parameters(), 0.5)
    model.loss(causal_batch(0)).backward()
    adam.step()
    ema.update()
    version = adam.flat.version

    new_weights = {name: rng.standard_normal(w.shape) for name, w in model.state_dict().items()}
    model.load_state_dict(new_weights)
    assert not adam.flat.is_current()
    adam.zero_grad()
    model.loss(causal_batch(1)).backward()  # the gradients go to fresh arrays while unpacked
    moments = [(s["exp_avg"].copy(), s["exp_avg_sq"].copy()) for s in adam.state]
    grads = [p.grad.copy() for p in model.parameters()]
    averages = [a.copy() for a in ema.averages]
    adam.step()
    ema.update()
    assert adam.flat.is_current() and adam.flat.version == version + 1
    for i, ((name, p), g, (m, v), avg) in enumerate(zip(model.named_parameters(), grads, moments, averages)):
        expected = new_weights[name].copy()
        optim.adam_update(expected, g, m, v, 2, lr=0.01, betas=(0.9, 0.999), eps=1e-8)
        np.testing.assert_allclose(p.data, expected, rtol=1e-15)
        np.testing.assert_allclose(ema.averages[i], 0.5 * avg + 0.5 * p.data, rtol=1e-15)

    model.to_dtype(np.float32)
    adam.zero_grad()
    model.loss(causal_batch(2)).backward()
    adam.step()
    ema.update()
    (group,) = adam.flat.groups
    assert group.data.dtype == np.float32 and adam.flat.is_current()
    assert all(s["exp_avg"].dtype == np.float32 and s["step"] == 3 for s in adam.state)
    assert all(a.dtype == np.float32 for a in ema.averages)


def test_model_moved_after_the_optimizer_was_built(device):
    """Adam built on the CPU, model.to(device) afterwards: training goes on there."""
    model = small_model(np.float32)
    adam = optim.Adam(model.parameters(), lr=0.01)
    model.loss(causal_batch(0)).backward()
    adam.step()
    model.to(device)
    adam.zero_grad()
    model.loss(causal_batch(1)).backward()
    adam.step()
    assert adam.flat.is_current() and backend.device_of(adam.flat.groups[0].data) == device
    assert all(backend.device_of(s["exp_avg"]) == device for s in adam.state)


def test_checkpoint_in_the_per_parameter_format_loads_into_the_flat_optimizer():
    """state_dict is a list of per-parameter dicts of host arrays, as it always was: one built
    by hand in that format resumes like the optimizer that wrote it."""
    p = nn.Parameter(np.array([1.0, -1.0, 0.5]))
    saved = {"type": "Adam", "hyperparameters": {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8,
                                                 "weight_decay": 0.0, "decoupled_weight_decay": False},
             "state": [{"step": 5, "exp_avg": np.array([0.1, 0.2, 0.3]),
                        "exp_avg_sq": np.array([0.01, 0.02, 0.03])}]}
    adam = optim.Adam([p], lr=1.0)
    adam.load_state_dict(saved)
    g = np.array([0.5, -0.5, 1.0])
    p.grad = g.copy()
    adam.step()
    expected = np.array([1.0, -1.0, 0.5])
    m, v = saved["state"][0]["exp_avg"].copy(), saved["state"][0]["exp_avg_sq"].copy()
    optim.adam_update(expected, g, m, v, 6, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    np.testing.assert_allclose(p.data, expected, rtol=1e-15)
    state = adam.state_dict()["state"][0]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and state["step"] == 6
    assert isinstance(state["exp_avg"], np.ndarray) and not np.shares_memory(state["exp_avg"], p.data)


def test_a_parameter_listed_twice_is_rejected():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="appears twice"):
        optim.Adam([p, p])


def test_flat_parameters_group_by_dtype():
    a = nn.Parameter(np.ones(2, np.float32))
    b = nn.Parameter(np.ones((2, 2), np.float64))
    c = nn.Parameter(np.ones(3, np.float32))
    packing = flat.FlatParameters([a, b, c])
    assert [g.indices for g in packing.groups] == [[0, 2], [1]]
    assert packing.groups[0].data.dtype == np.float32 and packing.groups[0].data.size == 5
    a.grad, b.grad = np.full(2, 2.0, np.float32), np.full((2, 2), 3.0)
    assert not packing.gather_grads()  # c has none
    c.grad = np.full(3, 4.0, np.float32)
    assert packing.gather_grads()
    np.testing.assert_array_equal(packing.groups[0].grad, [2, 2, 4, 4, 4])
    with pytest.raises(ValueError, match="gradient of shape"):
        c.grad = np.zeros(4, np.float32)
        packing.gather_grads()


def test_overlapping_parameter_lists_stay_correct():
    """Two optimizers whose lists share a parameter take the packing over in turn (a copy
    per step); each step still updates the current weights exactly."""
    a, b, c = (nn.Parameter(np.array([1.0, -2.0]) * k) for k in (1.0, 2.0, 3.0))
    first, second = optim.Adam([a, b], lr=0.1), optim.Adam([b, c], lr=0.05)
    expected = {name: p.data.copy() for name, p in zip("abc", (a, b, c))}
    moments = {key: (np.zeros(2), np.zeros(2)) for key in ("a1", "b1", "b2", "c2")}
    rng = np.random.default_rng(5)
    for t in (1, 2, 3):
        for opt, names, lr in ((first, "ab", 0.1), (second, "bc", 0.05)):
            grads = {name: rng.standard_normal(2) for name in names}
            for name in names:
                dict(zip("abc", (a, b, c)))[name].grad = grads[name].copy()
            opt.step()
            tag = "1" if opt is first else "2"
            for name in names:
                m, v = moments[name + tag]
                optim.adam_update(expected[name], grads[name], m, v, t, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    for name, p in zip("abc", (a, b, c)):
        np.testing.assert_allclose(p.data, expected[name], rtol=1e-15)


# ---------------------------------------------------------------- learning-rate schedule
def test_cosine_schedule_follows_its_closed_form():
    """Warm-up, half a cosine, then the floor: lr(t) at t = 0, the end of the warm-up, the
    middle, the last step and past it; never rising after the warm-up."""
    opt = optim.SGD([nn.Parameter(np.zeros(3))], lr=0.1)
    schedule = CosineAnnealingLR(opt, total_steps=14, warmup_steps=4, min_lr=0.01)
    assert opt.lr == pytest.approx(0.1 / 4)  # set at construction, as PyTorch's
    seen = [opt.lr]
    for _ in range(16):
        schedule.step()
        seen.append(opt.lr)
    assert seen[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # t = 0..3: linear warm-up
    assert seen[4] == pytest.approx(0.1)                        # t = W: the top of the cosine
    assert seen[9] == pytest.approx(0.01 + 0.09 / 2)            # t = W + (T - W) / 2: halfway
    assert seen[13] == pytest.approx(0.01 + 0.045 * (1 + np.cos(np.pi * 0.9)))
    assert seen[14:] == [0.01, 0.01, 0.01]                      # t >= T: the floor
    assert all(a >= b for a, b in zip(seen[4:], seen[5:]))
    assert schedule.last_step == 16 and schedule.get_last_lr() == 0.01
    resumed = CosineAnnealingLR(optim.SGD([nn.Parameter(np.zeros(3))], lr=0.1), 14, 4, 0.01, last_step=9)
    assert resumed.optimizer.lr == seen[9]  # a resumed schedule needs only the step count


def test_adam_takes_the_scheduled_rate():
    """One Adam step under the schedule is a plain Adam step at lr(t)."""
    rng = np.random.default_rng(0)
    start, grad = rng.standard_normal(5), rng.standard_normal(5)
    moved = []
    for scheduled in (True, False):
        param = nn.Parameter(start.copy())
        adam = optim.Adam([param], lr=0.3 if scheduled else 0.3 * (1 + np.cos(np.pi * 2 / 8)) / 2)
        if scheduled:
            CosineAnnealingLR(adam, total_steps=8, last_step=2)
        param.grad = grad.copy()
        adam.step()
        moved.append(param.data.copy())
    np.testing.assert_allclose(moved[0], moved[1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("kwargs, message", [
    ({"total_steps": 4, "warmup_steps": 4}, "above warmup_steps"),
    ({"total_steps": 10, "warmup_steps": -1}, "warmup_steps must be an int >= 0"),
    ({"total_steps": 10, "min_lr": 0.5}, "give a min_lr <= lr"),
    ({"total_steps": 10, "min_lr": float("nan")}, "min_lr"),
])
def test_cosine_schedule_refuses_impossible_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CosineAnnealingLR(optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1), **kwargs)
