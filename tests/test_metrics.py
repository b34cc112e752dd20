"""Tests for tinyhydra.rec.metrics on hand-computed cases."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyhydra.rec.data import Interactions, leave_one_out, synthetic_interactions
from tinyhydra.rec.metrics import (
    METRICS,
    bootstrap_interval,
    evaluate,
    metric_names,
    metrics_from_ranks,
    paired_bootstrap,
    per_user_values,
    rank_of_target,
    sampled_rank,
)

KEYS = set(metric_names())  # every registered metric at its cutoffs


def test_the_built_in_metrics_are_registered():
    """The names every metrics.json so far has (a metric added later comes on top of them)."""
    assert {"HR@1", "HR@5", "HR@10", "NDCG@1", "NDCG@5", "NDCG@10", "MRR"} <= KEYS


def test_metrics_of_rank_zero_are_all_one():
    assert metrics_from_ranks(np.array([0])) == {key: 1.0 for key in KEYS}


def test_metrics_of_rank_two():
    got = metrics_from_ranks(np.array([2]))
    assert got["HR@1"] == 0 and got["HR@5"] == 1 and got["HR@10"] == 1
    assert got["NDCG@1"] == 0 and got["NDCG@5"] == pytest.approx(0.5) and got["NDCG@10"] == pytest.approx(0.5)
    assert got["MRR"] == pytest.approx(1 / 3)


def test_metrics_average_over_users_and_apply_cutoff():
    got = metrics_from_ranks(np.array([0, 7, 20]))
    assert got["HR@5"] == pytest.approx(1 / 3) and got["HR@10"] == pytest.approx(2 / 3)
    assert got["NDCG@10"] == pytest.approx((1 + 1 / np.log2(9)) / 3)
    assert got["MRR"] == pytest.approx((1 + 1 / 8 + 1 / 21) / 3)


def test_metrics_of_no_ranks_is_an_error():
    with pytest.raises(ValueError, match="no ranks"):
        metrics_from_ranks(np.array([], dtype=np.int64))


# columns: padding, items 1..4
SCORES = np.array([[9.0, 0.1, 0.5, 0.3, 0.9]])


def test_rank_ignores_padding_column():
    assert rank_of_target(SCORES, np.array([2])).tolist() == [1]  # only item 4 beats item 2


def test_excluding_history_changes_rank_but_never_excludes_target():
    exclude = np.array([[False, False, False, False, True]])
    assert rank_of_target(SCORES, np.array([2]), exclude).tolist() == [0]
    assert rank_of_target(SCORES, np.array([1]), exclude).tolist() == [2]
    exclude_target_too = np.array([[False, True, False, False, False]])
    assert rank_of_target(SCORES, np.array([1]), exclude_target_too).tolist() == [3]


def test_ties_are_pessimistic():
    assert rank_of_target(np.zeros((2, 6)), np.array([1, 5])).tolist() == [4, 4]
    assert sampled_rank(np.array([1.0]), np.ones((1, 100))).tolist() == [100]


def test_sampled_rank():
    assert sampled_rank(np.array([0.5, 2.0]), np.array([[0.1, 0.7, 0.2], [1.0, 3.0, 2.0]])).tolist() == [1, 2]


def test_nan_scores_are_an_error():
    with pytest.raises(ValueError, match="NaN"):
        rank_of_target(np.array([[0.0, np.nan, 1.0]]), np.array([2]))


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, (3, 6), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0])),
       hnp.arrays(np.int64, 3, elements=st.integers(1, 5)),
       hnp.arrays(bool, (3, 6)))
def test_rank_matches_brute_force(scores, targets, exclude):
    expected = [sum(1 for item in range(1, 6)
                    if item != t and not exclude[u, item] and scores[u, item] >= scores[u, t])
                for u, t in enumerate(targets)]
    assert rank_of_target(scores, targets, exclude).tolist() == expected


# ----------------------------------------------------------------------------- evaluate

def by_item_id(inputs):
    """A fake model that scores every item by its id (higher id = better)."""
    return np.tile(np.arange(7, dtype=np.float64), (len(inputs), 1))


@pytest.fixture
def tiny_split():
    # one user 1,2,3,4 of 6 items: train [1, 2], valid 3, test 4; a second user without targets
    return leave_one_out(Interactions([np.array([1, 2, 3, 4]), np.array([5])], 2, 6))


def test_evaluate_hand_case(tiny_split):
    # test: history {1, 2, 3} excluded; 5 and 6 beat 4 -> rank 2. Sampled: negatives = the only
    # unseen items {5, 6} -> rank 2 as well
    got = evaluate(by_item_id, tiny_split, "test", max_len=5, num_negatives=2)
    assert set(got) == {f"{p}/{k}" for p in ("full", "sampled") for k in KEYS}
    assert got["full/MRR"] == pytest.approx(1 / 3) and got["sampled/MRR"] == pytest.approx(1 / 3)
    assert got["full/NDCG@5"] == pytest.approx(0.5) and got["full/HR@1"] == 0
    # valid: history {1, 2}; 4, 5, 6 beat 3 -> rank 3
    got = evaluate(by_item_id, tiny_split, "valid", max_len=5, protocols=("full",))
    assert set(got) == {f"full/{k}" for k in KEYS} and got["full/MRR"] == pytest.approx(1 / 4)


def test_evaluate_passes_mask_token_inputs(tiny_split):
    seen = []

    def score_fn(inputs):
        seen.append(inputs.copy())
        return by_item_id(inputs)

    evaluate(score_fn, tiny_split, "test", max_len=4, protocols=("full",), append_mask_token=7)
    assert np.concatenate(seen).tolist() == [[1, 2, 3, 7]]


def test_evaluate_is_independent_of_batch_size_and_reproducible():
    split = leave_one_out(synthetic_interactions(40, 150, 5, 15, seed=2))

    def next_item_model(inputs):
        # predicts "last item + 1" and, less, "+2": the synthetic walk's structure
        scores = np.zeros((len(inputs), 151))
        rows = np.arange(len(inputs))
        scores[rows, inputs[:, -1] % 150 + 1] = 2.0
        scores[rows, (inputs[:, -1] + 1) % 150 + 1] = 1.0
        return scores

    a = evaluate(next_item_model, split, "test", 10, batch_size=7, seed=1)
    b = evaluate(next_item_model, split, "test", 10, batch_size=256, seed=1, progress=True)
    assert a == b
    assert a["full/HR@1"] > 0.4 and a["sampled/HR@10"] >= a["full/HR@10"]


def test_evaluate_checks_score_shape(tiny_split):
    with pytest.raises(ValueError, match="score_fn returned shape"):
        evaluate(lambda x: np.zeros((len(x), 3)), tiny_split, "test", 5, protocols=("full",))


def test_per_user_values_average_to_the_metrics():
    ranks = np.random.default_rng(0).integers(0, 40, 500)
    averaged = metrics_from_ranks(ranks)
    for name, value in averaged.items():
        assert np.mean(per_user_values(ranks, name)) == value
    assert per_user_values(np.array([0, 9, 10]), "HR@10").tolist() == [True, True, False]
    assert per_user_values(np.array([0, 1]), "NDCG@10").tolist() == [1.0, 1 / np.log2(3)]
    with pytest.raises(ValueError, match="metric must be") as error:
        per_user_values(ranks, "AUC")
    assert all(name in str(error.value) for name in METRICS)  # the message lists what is registered


def test_paired_bootstrap_of_equal_shifted_and_noisy_models():
    rng = np.random.default_rng(1)
    a = rng.random(300)
    same = paired_bootstrap(a, a, resamples=200)
    assert (same["difference"], same["low"], same["high"], same["not_better"]) == (0, 0, 0, 1)
    shifted = paired_bootstrap(a, a + 0.25, resamples=200)  # the same gain for every user: no doubt
    assert shifted["low"] == pytest.approx(0.25) and shifted["high"] == pytest.approx(0.25)
    assert shifted["not_better"] == 0
    # a gain of 0.05 under per-user noise of sd 1: the 95% interval is about 1.96 standard errors wide
    # on each side of the observed difference, and a second seed gives about the same interval
    users = 4000
    a = rng.standard_normal(users)
    b = a + 0.05 + rng.standard_normal(users)
    noisy = paired_bootstrap(a, b, resamples=2000)
    half_width = 1.96 * np.std(b - a) / np.sqrt(users)
    assert noisy["difference"] == pytest.approx(np.mean(b - a))
    assert noisy["low"] < noisy["difference"] < noisy["high"]
    assert (noisy["high"] - noisy["low"]) / 2 == pytest.approx(half_width, rel=0.1)
    again = paired_bootstrap(a, b, resamples=2000, seed=5)
    assert again["low"] == pytest.approx(noisy["low"], abs=0.2 * half_width)
    assert paired_bootstrap(a, b, resamples=2000) == noisy  # the seed fixes the resamples
    with pytest.raises(ValueError, match="same users"):
        paired_bootstrap(a, b[:-1])


def test_bootstrap_interval_of_one_mean_is_about_two_standard_errors_wide():
    rng = np.random.default_rng(2)
    values = 0.18 + rng.standard_normal(4000)
    interval = bootstrap_interval(values, resamples=2000)
    half_width = 1.96 * np.std(values) / np.sqrt(values.size)
    assert interval["mean"] == pytest.approx(values.mean())
    assert interval["low"] < interval["mean"] < interval["high"]
    assert (interval["high"] - interval["low"]) / 2 == pytest.approx(half_width, rel=0.1)
    constant = bootstrap_interval(np.full(50, 0.25), resamples=100)  # every user the same: no doubt
    assert constant["low"] == pytest.approx(0.25) and constant["high"] == pytest.approx(0.25)
    # the difference of a pair is the interval of the differences' mean, resampled the same way
    a = rng.random(300)
    b = a + rng.standard_normal(300)
    pair = paired_bootstrap(a, b, resamples=500)
    assert bootstrap_interval(b - a, resamples=500) == {"mean": pair["difference"], "low": pair["low"],
                                                        "high": pair["high"]}
    with pytest.raises(ValueError, match="per-user values"):
        bootstrap_interval(np.zeros((2, 3)))
