"""The notebooks' exercise checker (course.exercises): every answer key passes, and every
check fails on the untouched stub and on plausible wrong answers (a check that cannot fail
checks nothing). Every known mistake of course.mistakes is caught with its hint, far enough
from the right answer that the failure cannot read like rounding."""
import numpy as np
import pytest

from course import exercises, mistakes, solutions  # course/solutions: the answer key, one module per notebook
from course.checking import Failed

ANSWERS = {name: fn for module in solutions.NOTEBOOK_MODULES for name, fn in solutions.answers(module).items()}


def _norm(x):
    return np.linalg.norm(x, axis=-1, keepdims=True)


def _reversed_cumsum(x):
    return np.flip(np.cumsum(np.flip(x, axis=-2), axis=-2), axis=-2)


# more plausible mistakes, beside the catalogue of course.mistakes: each must be caught
WRONG = {
    "tanh_backward": [lambda y, g: g * (1 - y)],
    "softmax_backward": [lambda y, g: g - (g * y).sum(-1, keepdims=True)],  # forgot the factor y
    "layer_norm_backward": [lambda xhat, r, g: r * (g - g.mean(-1, keepdims=True))],  # var depends on x
    "causal_mask": [lambda n: np.triu(np.ones((n, n), dtype=bool)), lambda n: np.tril(np.ones((n, n)))],
    "softmax_attention": [lambda q, k, v, mask: ANSWERS["softmax_attention"](q, k, v, None)],
    "softmax_attention_backward": [
        lambda q, k, v, mask, g: tuple(d * s for d, s in zip(
            ANSWERS["softmax_attention_backward"](q, k, v, mask, g), (np.sqrt(q.shape[-1]), 1, 1)))],
    "hydra_causal_forward": [
        lambda q, k, v: q * np.cumsum(k * v, axis=-2),  # no feature map
        lambda q, k, v: (q / _norm(q)) * np.cumsum((k / _norm(k)) * v, axis=-2),  # phi(0) = NaN
        lambda q, k, v: (q / np.maximum(_norm(q), 1e-12))  # bidirectional
        * ((k / np.maximum(_norm(k), 1e-12)) * v).sum(axis=-2, keepdims=True)],
    "hydra_causal_backward": [
        lambda qh, kh, v, g: (g * np.cumsum(kh * v, -2), np.cumsum(g * qh, -2) * v, np.cumsum(g * qh, -2) * kh),
        lambda qh, kh, v, g: (g * np.cumsum(kh * v, -2), _reversed_cumsum(g * qh) * kh,
                              _reversed_cumsum(g * qh) * v)],  # dk and dv swapped
    "decayed_prefix_sum": [lambda x, a: np.cumsum(x, axis=-2),
                           lambda x, a: ANSWERS["decayed_prefix_sum"](x, a) * np.where(a > 0, a, 1)],
    "decay_gradient": [lambda x, a, h: ANSWERS["decay_gradient"](x, a, h) / 2,  # a forgotten factor
                       lambda x, a, h: (h * np.cumsum(x, axis=-2)).reshape(-1, x.shape[-1]).sum(0)],
    "bidirectional_context": [lambda u, a0, a1: ANSWERS["bidirectional_context"](u, a0, a1) + u,  # diagonal twice
                              lambda u, a0, a1: ANSWERS["bidirectional_context"](u, a1, a0)],  # sides swapped
    "chunk_decay_matrix": [  # a mask multiplied in: inf * 0 above the diagonal; the transpose; no 0^0 = 1
        lambda a, c: np.tril(np.ones((c, c))) * a[:, None, None] ** np.subtract.outer(np.arange(c), np.arange(c)),
        lambda a, c: np.swapaxes(ANSWERS["chunk_decay_matrix"](a, c), 1, 2),
        lambda a, c: np.where(np.tri(c, k=-1) > 0, ANSWERS["chunk_decay_matrix"](a, c), 0.0)],
    "attention_mask": [lambda ids, causal: np.broadcast_to(np.tril(np.ones((ids.shape[1],) * 2, dtype=bool)),
                                                           (len(ids),) + (ids.shape[1],) * 2)],
    "rank_of_target": [lambda s, t, ex: int((np.delete(s, t)[1:] > s[t]).sum()),  # ties in the target's favour
                       lambda s, t, ex: int((np.delete(s, t) >= s[t]).sum())],  # padding ranked
    "ndcg_at_k": [lambda r, k: float(np.mean(np.where(r < k, 1 / np.log2(r + 1.0 + (r == 0)), 0))),
                  lambda r, k: float(np.mean(np.where(r <= k, 1 / np.log2(r + 2.0), 0)))],
    "hit_rate_at_k": [lambda r, k: float(np.mean(r <= k))],
}


def stub(*args):
    raise NotImplementedError("fill in this function")


def test_every_exercise_has_one_answer_and_a_wrong_answer_table():
    names = [name for module in solutions.NOTEBOOK_MODULES for name in solutions.answers(module)]
    assert len(names) == len(set(names)), "two notebooks' solutions share a name"
    assert set(names) == set(exercises.EXERCISES) == set(WRONG) == set(mistakes.MISTAKES)
    assert all(len(known) >= 2 for known in mistakes.MISTAKES.values())


KNOWN = [(name, index) for name, known in sorted(mistakes.MISTAKES.items()) for index in range(len(known))]


def relative_gap(failure):
    """|got - expected| / |expected| at the first differing entry of the failure (inf for NaN)."""
    expected, got = float(failure.expected), float(failure.got)
    if not np.isfinite(got):
        return np.inf
    return abs(got - expected) / abs(expected) if expected else np.inf * abs(got)


@pytest.mark.parametrize("name, index", KNOWN)
def test_a_known_mistake_fails_with_its_hint(name, index, capsys):
    mistake, advice, wrong = mistakes.MISTAKES[name][index]
    with np.errstate(all="ignore"):
        assert exercises.check(name, wrong) is False
    line = capsys.readouterr().out
    assert line.startswith(f"FAIL {name}: case '") and line.count("\n") == 1
    assert line.rstrip().endswith(f"hint: this looks like {mistake}: {advice}"), line


@pytest.mark.parametrize("name, index", KNOWN)
def test_a_known_mistake_is_at_least_5_percent_off_where_it_first_fails(name, index):
    """The visible data keeps every listed mistake clearly wrong: no entry near 0, distinct decays."""
    with np.errstate(all="ignore"):
        failure = exercises.run(name, mistakes.MISTAKES[name][index][2])
    assert isinstance(failure, Failed) and failure.expected is not None, failure
    assert relative_gap(failure) >= 0.05, str(failure)


def test_a_failure_names_the_case_its_shapes_and_small_inputs(capsys):
    exercises.check("hydra_causal_backward", mistakes.MISTAKES["hydra_causal_backward"][0][2])
    line = capsys.readouterr().out
    assert line.startswith("FAIL hydra_causal_backward: case 'L = 3, D = 2' "
                           "(qh (3, 2), kh (3, 2), v (3, 2), g (3, 2)): d_k_hat[0, 0] expected ")
    assert "; inputs qh = [[" in line and "hint: this looks like the sum not reversed" in line


def test_large_inputs_are_not_printed(capsys):
    exercises.check("decayed_prefix_sum", lambda x, a: np.cumsum(x, axis=-2) * 2)
    line = capsys.readouterr().out
    assert "(x (5, 3), a (3,))" in line and "inputs" not in line and "hint" not in line


def test_visible_bidirectional_data_has_no_near_zero_entry_and_distinct_sides():
    for label, u, (a0, a1) in exercises._decay_cases(np.random.default_rng(7), bidirectional=True):
        assert np.abs(u).min() >= 0.5, label
        assert label in ("a = 1", "a = 0") or np.all(a1 - a0 >= 0.1), label


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_the_answer_passes(name, capsys):
    assert exercises.check(name, ANSWERS[name]) is True
    line = capsys.readouterr().out
    assert line.startswith(f"PASS {name}: ") and line.count("\n") == 1


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_the_stub_fails_with_one_line(name, capsys):
    assert exercises.check(name, stub) is False
    line = capsys.readouterr().out
    assert line.startswith(f"FAIL {name}: case '") and "NotImplementedError" in line and line.count("\n") == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the phi(0) = NaN mistake divides by zero
@pytest.mark.parametrize("name, index", [(name, i) for name, wrongs in sorted(WRONG.items())
                                         for i in range(len(wrongs))])
def test_a_plausible_mistake_fails(name, index, capsys):
    assert exercises.check(name, WRONG[name][index]) is False
    assert capsys.readouterr().out.startswith(f"FAIL {name}: case '")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_failure_names_the_entry_with_expected_and_actual(capsys):
    exercises.check("hydra_causal_forward", WRONG["hydra_causal_forward"][1])
    out = capsys.readouterr().out
    assert out.startswith("FAIL hydra_causal_forward: case 'a zero query row' (q (2, 4, 3), k (2, 4, 3), v (2, 4, 3)): "
                          "out[0, 1, 0] expected 0, got nan")


def test_a_wrong_shape_is_reported():
    assert exercises.check("causal_mask", lambda n: np.tril(np.ones((n, n + 1), dtype=bool))) is False


def test_an_unknown_exercise_is_a_key_error():
    with pytest.raises(KeyError, match="hydra_causal_forward"):
        exercises.check("hydra_forward", stub)


def test_the_decayed_prefix_sum_loop_reads_as_its_definition(rng):
    x, a = rng.standard_normal((2, 6, 3)), np.array([0.0, 0.5, 1.0])
    y = exercises.decayed_prefix_sum_loop(x, a)
    np.testing.assert_allclose(y[..., 0], x[..., 0])  # a = 0: no memory
    np.testing.assert_allclose(y[..., 2], np.cumsum(x[..., 2], axis=-1))  # a = 1: a prefix sum
    np.testing.assert_allclose(y[:, 3, 1], x[:, 3, 1] + 0.5 * x[:, 2, 1] + 0.25 * x[:, 1, 1] + 0.125 * x[:, 0, 1])


def test_an_answer_that_edits_its_inputs_in_place_is_still_checked_fairly():
    def in_place(q, k, v):
        q /= np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
        k /= np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-12)
        return q * np.cumsum(k * v, axis=-2)

    assert exercises.check("hydra_causal_forward", in_place) is True


def test_solutions_use_swaps_in_the_answer_only_when_asked(monkeypatch):
    def hydra_causal_forward(q, k, v):
        raise NotImplementedError

    monkeypatch.delenv("TINYHYDRA_SOLUTIONS", raising=False)
    assert solutions.use(hydra_causal_forward) is hydra_causal_forward
    monkeypatch.setenv("TINYHYDRA_SOLUTIONS", "1")
    assert solutions.use(hydra_causal_forward) is ANSWERS["hydra_causal_forward"]
    with pytest.raises(KeyError, match="no solution named"):
        solutions.use(stub)
