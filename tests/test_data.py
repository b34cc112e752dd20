"""Tests for tinyhydra.rec.data: readers, download, split, batches, evaluation inputs."""
import gzip
import hashlib
import time
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyhydra.rec import data
from tinyhydra.rec.data import (
    DataFormatError,
    DownloadError,
    Interactions,
    causal_batches,
    cloze_batches,
    eval_inputs,
    leave_one_out,
    load_dataset,
    membership_mask,
    pad_left,
    read_movielens_ratings,
    read_sasrec_txt,
    sample_negatives_for_eval,
    seen_items,
    synthetic_interactions,
    training_windows,
    write_sasrec_txt,
)


def as_lists(interactions):
    return [s.tolist() for s in interactions.sequences]


# ----------------------------------------------------------------------------- SASRec reader

def test_sasrec_reader_keeps_dense_ids_and_file_order(tmp_path):
    path = tmp_path / "toy.txt"
    path.write_text("1 1\n1 2\n2 3\n1 3\n2\t1\n3  2\n")  # users interleave; tabs and double spaces are ok
    got = read_sasrec_txt(path)
    assert (got.num_users, got.num_items) == (3, 3)
    assert as_lists(got) == [[1, 2, 3], [3, 1], [2]]
    assert all(s.dtype == np.int64 for s in got.sequences)


def test_sasrec_reader_remaps_sparse_ids_by_sorted_value(tmp_path):
    path = tmp_path / "sparse.txt"
    path.write_text("10 50\n10 7\n4 50\n")
    got = read_sasrec_txt(path)
    assert (got.num_users, got.num_items) == (2, 2)
    assert as_lists(got) == [[2], [2, 1]]  # user 4 -> 1, user 10 -> 2; item 7 -> 1, item 50 -> 2


def test_sasrec_gz_round_trip(tmp_path):
    original = synthetic_interactions(20, 30, 3, 8, seed=1)
    for name in ("toy.txt", "toy.txt.gz"):
        write_sasrec_txt(original, tmp_path / name)
        got = load_dataset(tmp_path / name)
        assert (got.num_users, got.num_items) == (original.num_users, 30)
        assert as_lists(got) == as_lists(original)
    assert gzip.open(tmp_path / "toy.txt.gz").read() == (tmp_path / "toy.txt").read_bytes()


def test_sasrec_reader_accepts_crlf_blank_lines_and_missing_final_newline(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"1 1\r\n\r\n1 2\r\n2 1")
    assert as_lists(read_sasrec_txt(path)) == [[1, 2], [1]]


def test_ids_up_to_the_int64_limit_stay_distinct(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("1 9223372036854775807\n1 9223372036854775806\n")
    assert as_lists(read_sasrec_txt(path)) == [[2, 1]]  # remapped by sorted id, not clamped


@pytest.mark.parametrize("name, content, words", [
    ("missing.txt", None, "no such file"),
    ("folder.txt", "dir", "is a folder"),
    ("plain.txt.gz", b"1 2\n", "not gzip-compressed"),
    ("cut.txt.gz", "truncated", "truncated or corrupt"),
    ("ml-1m.zip", b"PK not really a zip", "not a readable zip archive"),
    ("ratings.csv", b"1,2\n", "separate fields by spaces or tabs"),
])
def test_unreadable_files_are_named_with_what_to_do(tmp_path, name, content, words):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content == "truncated":
        path.write_bytes(gzip.compress(b"1 2\n" * 1000)[:-30])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DataFormatError, match=words) as info:
        load_dataset(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content, line, words", [
    ("", 1, "empty"),
    ("\n\n", 1, "empty"),
    ("1 2\n1::2\n", 2, "expected 2 fields"),
    ("1 2\n1,2\n", 2, "expected 2 fields"),
    ("1 2\n1 2,\n", 2, "not an integer"),
    ("1 2\na b\n", 2, "not an integer"),
    ("1 2\n1 3\n-1 3\n", 3, "positive"),
    ("1 2\n0 3\n", 2, "positive"),
    ("1 2 3\n", 1, "expected 2 fields"),
    ("1 2\n7\n", 2, "expected 2 fields"),
    ("1 2\n1,3\n", 2, "separate fields by spaces or tabs"),
    ("1 2\n#1 3\n", 2, "not an integer"),
    ("1 2\n1 3.0\n", 2, "not an integer"),
    ("1 2\n1 99999999999999999999\n", 2, "beyond the int64 range"),
    ("1 2\n9223372036854775808 3\n", 2, "beyond the int64 range"),
])
def test_sasrec_reader_names_file_and_line_of_bad_input(tmp_path, content, line, words):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=words) as info:
        read_sasrec_txt(path)
    assert str(path) in str(info.value) and f"line {line}:" in str(info.value)
    assert info.value.line == line and isinstance(info.value, ValueError)


# ----------------------------------------------------------------------------- GroupLens reader

# users 7, 8, 9, 11, 20 each rate movies 10, 30, 40, 50, 60 (so all of them are kept);
# movie 99 has only two ratings and must be dropped; timestamps of user 20 are out of order
RATINGS = """\
20::30::5::300
20::10::3::100
20::99::4::150
20::40::4::200
20::50::1::500
20::60::2::400
7::10::5::10
7::30::5::30
7::40::5::20
7::50::5::50
7::60::5::50
8::10::1::1
8::30::1::2
8::40::1::3
8::50::1::4
8::60::1::5
9::99::1::0
9::10::1::1
9::30::1::2
9::40::1::3
9::50::1::4
9::60::1::5
11::10::1::1
11::30::1::2
11::40::1::3
11::50::1::4
11::60::1::5
"""
# new ids: users by original id (7, 8, 9, 11, 20 -> 1..5); items by first appearance in the
# filtered file (30, 10, 40, 50, 60 -> 1..5); each user sorted by time, ties in file order
EXPECTED = [[2, 3, 1, 4, 5], [2, 1, 3, 4, 5], [2, 1, 3, 4, 5], [2, 1, 3, 4, 5], [2, 3, 1, 5, 4]]


def test_ratings_dat_filters_sorts_and_remaps(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_bytes(RATINGS.encode("latin-1"))
    got = load_dataset(path)
    assert (got.num_users, got.num_items) == (5, 5)
    assert as_lists(got) == EXPECTED


def test_ml1m_zip_reader(tmp_path):
    path = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-1m/ratings.dat", RATINGS)
    assert as_lists(load_dataset(path)) == EXPECTED


def test_zip_without_ratings_is_a_clear_error(tmp_path):
    path = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-1m/movies.dat", "1::Toy Story::Animation\n")
    with pytest.raises(DataFormatError, match="ratings.dat"):
        read_movielens_ratings(path)


@pytest.mark.parametrize("bad_line, words", [
    ("1::2::3", "expected 4 fields"),
    ("1::2::3::4::5", "expected 4 fields"),
    ("::1::2::3", "not an integer"),
    ("1::2::3::4::", "expected 4 fields"),
    ("1::::2::3::4", "expected 4 fields"),
    ("1::x::3::4", "not an integer"),
    ("1::2::3:: 4", "not an integer"),
    ("1 2 3 4", "expected 4 fields"),
    ("-1::2::3::4", "positive"),
])
def test_ratings_reader_names_file_and_line_of_bad_input(tmp_path, bad_line, words):
    path = tmp_path / "ratings.dat"
    path.write_text(RATINGS + bad_line + "\n")
    with pytest.raises(DataFormatError, match=words) as info:
        read_movielens_ratings(path)
    assert f"{path}, line {RATINGS.count(chr(10)) + 1}:" in str(info.value)


def test_load_dataset_names_a_missing_file_and_the_layouts_it_reads(tmp_path):
    with pytest.raises(DataFormatError, match="no such file; give the path of .*per-user"):
        load_dataset(tmp_path / "data.csv")


# ----------------------------------------------------------------------------- download

@pytest.fixture
def fake_zip(tmp_path):
    source = tmp_path / "source" / "ml-1m.zip"
    source.parent.mkdir()
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("ml-1m/ratings.dat", RATINGS)
    return source, hashlib.md5(source.read_bytes()).hexdigest()


def test_download_without_network_fails_fast_and_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(data.download, "ML1M_URL", "http://127.0.0.1:9/ml-1m.zip")  # closed port
    cache = tmp_path / "cache"
    start = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        data.download_ml1m(cache, timeout=2)
    assert time.perf_counter() - start < 5
    assert str(cache / "ml-1m.zip") in str(info.value) and "--data" in str(info.value)
    assert list(cache.iterdir()) == []  # no partial file left behind


def test_download_rejects_wrong_md5_and_leaves_nothing(tmp_path, monkeypatch, fake_zip):
    source, _ = fake_zip
    monkeypatch.setattr(data.download, "ML1M_URL", source.as_uri())
    monkeypatch.setattr(data.download, "ML1M_MD5", "0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="md5"):
        data.download_ml1m(cache)
    assert list(cache.iterdir()) == []


def test_download_then_reuse_cache_without_network(tmp_path, monkeypatch, fake_zip):
    source, md5 = fake_zip
    monkeypatch.setattr(data.download, "ML1M_URL", source.as_uri())
    monkeypatch.setattr(data.download, "ML1M_MD5", md5)
    monkeypatch.setenv("TINYHYDRA_CACHE", str(tmp_path / "env-cache"))
    path = data.download_ml1m()
    assert path == tmp_path / "env-cache" / "ml-1m.zip"
    assert path.read_bytes() == source.read_bytes()
    monkeypatch.setattr(data.download, "ML1M_URL", "http://127.0.0.1:9/ml-1m.zip")
    assert data.download_ml1m() == path  # md5 matches: no download attempted
    assert as_lists(load_dataset(path)) == EXPECTED


def test_existing_file_with_wrong_md5_is_reported_not_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(data.download, "ML1M_URL", "http://127.0.0.1:9/ml-1m.zip")
    (tmp_path / "ml-1m.zip").write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="exists but its md5"):
        data.download_ml1m(tmp_path)
    assert (tmp_path / "ml-1m.zip").read_bytes() == b"not a zip"


# ----------------------------------------------------------------------------- split and padding

@pytest.fixture
def small_split():
    sequences = [np.array(s) for s in ([1, 2, 3, 4], [5, 6], [7, 8, 9], [2, 4, 6, 8, 1])]
    return leave_one_out(Interactions(sequences, num_users=4, num_items=9))


def test_leave_one_out(small_split):
    assert [t.tolist() for t in small_split.train] == [[1, 2], [5, 6], [7], [2, 4, 6]]
    assert small_split.valid_target.tolist() == [3, 0, 8, 8]
    assert small_split.test_target.tolist() == [4, 0, 9, 1]
    assert [s.tolist() for s in small_split.input_sequences("test")] == [[1, 2, 3], [5, 6], [7, 8], [2, 4, 6, 8]]
    assert small_split.num_users == 4 and small_split.num_items == 9


def test_pad_left_keeps_the_last_items():
    got = pad_left([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)], 2)
    assert got.tolist() == [[2, 3], [0, 4], [0, 0]] and got.dtype == np.int64


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(1, 50), max_size=8), min_size=1, max_size=6), st.integers(1, 10))
def test_pad_left_matches_naive(sequences, max_len):
    expected = [[0] * (max_len - len(s[-max_len:])) + s[-max_len:] for s in sequences]
    assert pad_left([np.array(s, dtype=np.int64) for s in sequences], max_len).tolist() == expected


def test_membership_mask():
    mask = membership_mask([np.array([1, 3]), np.array([], dtype=np.int64)], num_items=4)
    assert mask.tolist() == [[False, True, False, True, False], [False] * 5]


# ----------------------------------------------------------------------------- training batches

@pytest.fixture
def synthetic_split():
    return leave_one_out(synthetic_interactions(50, 40, 4, 20, seed=0))


def test_causal_batches(synthetic_split):
    max_len, rng = 20, np.random.default_rng(0)  # max_len covers every train sequence
    epoch = causal_batches(synthetic_split, batch_size=16, max_len=max_len, rng=rng, num_negatives=3)
    batches = list(epoch)
    assert len(batches) == len(epoch) == 4
    assert sum(len(b.inputs) for b in batches) == 50
    for inputs, targets, negatives in batches:
        assert inputs.shape == targets.shape == negatives.shape[:2] and negatives.shape[2] == 3
        assert inputs.dtype == targets.dtype == negatives.dtype == np.int64
        np.testing.assert_array_equal(inputs != 0, targets != 0)  # same padding
        real = targets[:, :-1] != 0
        np.testing.assert_array_equal(inputs[:, 1:][real], targets[:, :-1][real])  # targets = next item
        assert np.all(negatives[targets == 0] == 0) and np.all(negatives[targets != 0] > 0)
        for row in range(len(inputs)):
            train = np.append(inputs[row][inputs[row] > 0], targets[row, -1])
            assert not np.isin(negatives[row], train).any()


def test_causal_batches_without_negatives_draw_none():
    everything = np.r_[1:11, 3, 4]  # trains on every item: no negative exists for this user
    split = leave_one_out(Interactions([everything, np.array([3, 1, 2, 5])], 2, 10))
    rng, shuffle_only = np.random.default_rng(0), np.random.default_rng(0)
    (batch,) = causal_batches(split, 8, 4, rng, num_negatives=0)
    assert batch.negatives is None and batch.targets.shape == (2, 4)
    shuffle_only.permutation(2)
    assert rng.bit_generator.state == shuffle_only.bit_generator.state  # nothing else drawn
    with pytest.raises(ValueError, match="every item"):
        list(causal_batches(split, 8, 4, np.random.default_rng(0), num_negatives=1))


def test_causal_batches_truncate_and_skip_short_users():
    split = leave_one_out(Interactions([np.arange(1, 9), np.array([1])], 2, 10))
    (batch,) = causal_batches(split, batch_size=8, max_len=3, rng=np.random.default_rng(0))
    # user 0 trains on 1..6: inputs 1..5 -> targets 2..6, last 3 kept; user 1 has no pair
    assert batch.inputs.tolist() == [[3, 4, 5]] and batch.targets.tolist() == [[4, 5, 6]]


def test_cloze_batches(synthetic_split):
    mask = synthetic_split.num_items + 1
    epoch = cloze_batches(synthetic_split, 64, 12, np.random.default_rng(0), mask_token=mask, mask_prob=0.3)
    (batch,) = list(epoch)
    masked = batch.inputs == mask
    assert masked.any(axis=1).all()
    np.testing.assert_array_equal(masked, batch.targets != 0)
    original = {tuple(r) for r in pad_left(synthetic_split.train, 12).tolist()}
    assert {tuple(r) for r in np.where(masked, batch.targets, batch.inputs).tolist()} == original


@pytest.mark.parametrize("mask_prob, expected_masks_per_row", [(0.0, 1), (1.0, None)])
def test_cloze_mask_extremes(synthetic_split, mask_prob, expected_masks_per_row):
    mask = synthetic_split.num_items + 1
    (batch,) = cloze_batches(synthetic_split, 64, 12, np.random.default_rng(0), mask, mask_prob)
    real = np.where(batch.inputs == mask, batch.targets, batch.inputs) != 0
    if expected_masks_per_row == 1:  # nothing drawn: only the last item is masked
        assert (batch.inputs[:, -1] == mask).all() and ((batch.inputs == mask).sum(1) == 1).all()
    else:
        np.testing.assert_array_equal(batch.inputs == mask, real)


def test_cloze_mask_last_prob(synthetic_split):
    mask = synthetic_split.num_items + 1

    def first_batch(**kwargs):
        (batch,) = cloze_batches(synthetic_split, 64, 12, np.random.default_rng(5), mask, 0.1, **kwargs)
        return batch

    plain, always = first_batch(), first_batch(mask_last_prob=1.0)
    assert (always.inputs[:, -1] == mask).all()
    last_items = pad_left(synthetic_split.train, 12)[:, -1]  # rows are shuffled: compare sorted
    np.testing.assert_array_equal(np.sort(always.targets[:, -1]), np.sort(last_items))
    assert (plain.inputs[:, -1] != mask).any()  # without it the last item is often visible
    np.testing.assert_array_equal(first_batch(mask_last_prob=0.0).inputs, plain.inputs)  # no extra draws
    with pytest.raises(ValueError, match="mask_last_prob must be in"):
        first_batch(mask_last_prob=-0.1)


def test_cloze_rejects_mask_token_that_is_an_item(synthetic_split):
    with pytest.raises(ValueError, match="collides"):
        cloze_batches(synthetic_split, 8, 10, np.random.default_rng(0), mask_token=5)


def is_window_of(window, sequence) -> bool:
    """True when ``window`` is a run of consecutive items of ``sequence``."""
    n = len(window)
    return any(np.array_equal(sequence[i:i + n], window) for i in range(len(sequence) - n + 1))


@given(st.lists(st.integers(0, 30), min_size=1, max_size=6), st.integers(1, 8),
       st.sampled_from([0.0, 0.5, 1.0]), st.integers(0, 2**31))
def test_training_windows_are_consecutive_items(lengths, length, prob, seed):
    sequences = [np.arange(100 * i + 1, 100 * i + 1 + n) for i, n in enumerate(lengths)]
    windows = training_windows(sequences, length, np.random.default_rng(seed), prob)
    for window, sequence in zip(windows, sequences):
        assert len(window) == min(len(sequence), length) and is_window_of(window, sequence)
        if prob == 0.0:
            np.testing.assert_array_equal(window, sequence[-length:])


def test_training_windows_draw_every_start_and_nothing_at_zero():
    sequence = np.arange(1, 7)  # 6 items, windows of 3: starts 0..3
    rng = np.random.default_rng(0)
    starts = {int(training_windows([sequence], 3, rng, 1.0)[0][0]) - 1 for _ in range(200)}
    assert starts == {0, 1, 2, 3}
    half = [int(training_windows([sequence], 3, rng, 0.5)[0][0]) - 1 for _ in range(400)]
    assert 0.55 < np.mean(np.array(half) == 3) < 0.8  # last window: 1/2 + 1/2 * 1/4 = 0.625
    state = rng.bit_generator.state
    training_windows([sequence], 3, rng, 0.0)
    assert rng.bit_generator.state == state  # the default draws no random numbers
    with pytest.raises(ValueError, match="random_window_prob must be in"):
        training_windows([sequence], 3, rng, 1.5)


def test_batches_train_on_random_windows():
    long_user = np.arange(1, 31)  # 30 items: 28 train, then valid and test
    split = leave_one_out(Interactions([long_user, np.array([1, 2, 3])], 2, 30))
    train = split.train[0]
    first_items = set()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        (causal,) = causal_batches(split, 8, 5, rng, random_window_prob=1.0)
        row = int(np.flatnonzero(causal.inputs[:, 0] != 0)[0])  # the long user's row (no padding)
        inputs, targets = causal.inputs[row], causal.targets[row]
        assert is_window_of(np.append(inputs, targets[-1]), train)
        np.testing.assert_array_equal(inputs[1:], targets[:-1])  # targets are still the next items
        first_items.add(int(inputs[0]))
        (cloze,) = cloze_batches(split, 8, 5, rng, mask_token=31, random_window_prob=1.0)
        row = int(np.flatnonzero(cloze.inputs[:, 0] != 0)[0])
        assert is_window_of(np.where(cloze.inputs[row] == 31, cloze.targets[row], cloze.inputs[row]), train)
    assert len(first_items) > 5  # not always the last window (which starts at item 23)
    with pytest.raises(ValueError, match="random_window_prob must be in"):
        causal_batches(split, 8, 5, np.random.default_rng(0), random_window_prob=-0.5)


def test_batches_are_reproducible(synthetic_split):
    def run(make):
        return [np.concatenate([a.reshape(len(a), -1) for a in batch], axis=1) for batch in make()]

    for make in (lambda: causal_batches(synthetic_split, 8, 10, np.random.default_rng(3), 2),
                 lambda: cloze_batches(synthetic_split, 8, 10, np.random.default_rng(3), 41)):
        first, second = run(make), run(make)
        assert all((a == b).all() for a, b in zip(first, second))


# ----------------------------------------------------------------------------- evaluation inputs

def test_eval_inputs(small_split):
    users, inputs, targets = eval_inputs(small_split, "valid", 3)
    assert users.tolist() == [0, 2, 3] and targets.tolist() == [3, 8, 8]
    assert inputs.tolist() == [[0, 1, 2], [0, 0, 7], [2, 4, 6]]
    users, inputs, targets = eval_inputs(small_split, "test", 3, append_mask_token=10)
    assert targets.tolist() == [4, 9, 1]
    assert inputs.tolist() == [[2, 3, 10], [7, 8, 10], [6, 8, 10]]


def test_seen_items_is_the_whole_input_history(small_split):
    assert [s.tolist() for s in seen_items(small_split, [0, 3], "valid")] == [[1, 2], [2, 4, 6]]
    assert [s.tolist() for s in seen_items(small_split, [0, 3], "test")] == [[1, 2, 3], [2, 4, 6, 8]]


def test_sample_negatives_for_eval(synthetic_split):
    users = np.flatnonzero(synthetic_split.test_target)
    negatives = sample_negatives_for_eval(synthetic_split, users, "test", num=20, seed=7)
    assert negatives.shape == (len(users), 20) and negatives.dtype == np.int64
    assert ((negatives >= 1) & (negatives <= synthetic_split.num_items)).all()
    for u, row in zip(users, negatives):
        assert len(set(row.tolist())) == 20
        whole = np.concatenate([synthetic_split.train[u],
                                [synthetic_split.valid_target[u], synthetic_split.test_target[u]]])
        assert not np.isin(row, whole).any()
    again = sample_negatives_for_eval(synthetic_split, users, "test", num=20, seed=7)
    other = sample_negatives_for_eval(synthetic_split, users, "test", num=20, seed=8)
    np.testing.assert_array_equal(negatives, again)
    assert (negatives != other).any()


def test_sample_negatives_needs_enough_unseen_items(small_split):
    with pytest.raises(ValueError, match="fewer than 100 unseen"):
        sample_negatives_for_eval(small_split, [0], "test")


def test_fewest_unseen_items(small_split):
    # 9 items; user 3 saw 2, 4, 6, 8, 1 (5 items), the most of the users
    everything = data.interacted_items(small_split, range(4))
    assert [s.tolist() for s in everything[:2]] == [[1, 2, 3, 4], [5, 6, 0, 0]]
    assert data.fewest_unseen_items(everything, 9) == 4
    assert data.fewest_unseen_items(small_split.train, 9) == 6  # user 3 trains on 2, 4, 6
    assert data.fewest_unseen_items([], 9) == 9


def test_sample_negatives_takes_all_remaining_items_when_num_is_exact(small_split):
    # user 0 saw 1..4 of 9 items: exactly 5 unseen
    (row,) = sample_negatives_for_eval(small_split, [0], "valid", num=5)
    assert sorted(row.tolist()) == [5, 6, 7, 8, 9]


# ----------------------------------------------------------------------------- synthetic data

def test_synthetic_interactions_are_seeded_and_predictable():
    a = synthetic_interactions(30, 25, 5, 10, seed=4)
    b = synthetic_interactions(30, 25, 5, 10, seed=4)
    assert as_lists(a) == as_lists(b) and as_lists(a) != as_lists(synthetic_interactions(30, 25, 5, 10, 5))
    assert all(5 <= len(s) <= 10 and s.min() >= 1 and s.max() <= 25 for s in a.sequences)
    steps = np.concatenate([np.diff(s) % 25 for s in a.sequences])
    assert set(steps.tolist()) <= {1, 2, 3} and np.mean(steps == 1) > 0.5
