"""The registries of file layouts and named data sets (tinyhydra.rec.data.datasets), the
per-user and ratings.csv readers, and the trainer's --dataset / --data-format, all on
small generated files."""
import dataclasses
import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tests.scripts import load_script
from tests.test_data import EXPECTED, RATINGS, as_lists
from tinyhydra.rec import data
from tinyhydra.rec.data import DATA_FORMATS, DATASETS, DataFormatError, DownloadError, detect_format, load_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# ML-20M's layout: a header, comma-separated, fractional ratings; the same interactions as RATINGS
RATINGS_CSV = "userId,movieId,rating,timestamp\n" + "".join(
    f"{u},{i},{r}.5,{t}\n" for u, i, r, t in (line.split("::") for line in RATINGS.split()))
PER_USER = "1 3 1 2\n2 2 3\n3 1 2 3 4\n"


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# ----------------------------------------------------------------------------- per-user layout

def test_per_user_reader_keeps_each_line_in_order(tmp_path):
    got = data.read_per_user_txt(write(tmp_path / "Beauty.txt.gz", PER_USER))
    assert (got.num_users, got.num_items, got.num_interactions) == (3, 4, 9)
    assert as_lists(got) == [[3, 1, 2], [2, 3], [1, 2, 3, 4]]


def test_per_user_reader_sorts_users_and_remaps_sparse_items(tmp_path):
    got = data.read_per_user_txt(write(tmp_path / "u.txt", "9 70 5\n4 5\n"))
    assert as_lists(got) == [[1], [2, 1]]  # user 4 first; item 5 -> 1, item 70 -> 2


@pytest.mark.parametrize("text, line, words", [
    ("1 2 3\n2\n", 2, "expected <user id> <item id>"),
    ("1 2 x\n", 1, "item id is not an integer"),
    ("1 2 0\n", 1, "item id must be a positive integer"),
    ("1 2 3\n1 4\n", 2, "user 1 already had a line"),
    ("\n\n", 1, "file is empty"),
])
def test_per_user_reader_names_file_and_line_of_bad_input(tmp_path, text, line, words):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataFormatError, match=words) as info:
        data.read_per_user_txt(path)
    assert f"{path}, line {line}:" in str(info.value)


# ----------------------------------------------------------------------------- ML-20M's ratings.csv

def test_ratings_csv_is_preprocessed_as_ratings_dat(tmp_path):
    """Same >= 5 filter, time order with ties in file order, and new ids as ML-1M's file."""
    assert as_lists(load_dataset(write(tmp_path / "ratings.csv", RATINGS_CSV))) == EXPECTED
    archive = tmp_path / "ml-20m.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ml-20m/ratings.csv", RATINGS_CSV)
    assert as_lists(load_dataset(archive)) == EXPECTED


def test_ratings_csv_filters_once_with_ties_in_file_order(tmp_path):
    """User 1 rates 6 movies; movie 9 has 1 rating (dropped), then user 1 keeps 5; users 2-5
    rate movies 1-5 at one time: ties keep file order (ascending movie id)."""
    lines = ["1,9,4.0,5"] + [f"1,{m},3.0,{10 - m}" for m in range(1, 6)]
    lines += [f"{u},{m},1.0,7" for u in range(2, 6) for m in range(1, 6)]
    got = load_dataset(write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n" + "\n".join(lines)))
    # items numbered by first appearance after filtering: movie 1 -> 1, ..., 5 -> 5
    assert as_lists(got) == [[5, 4, 3, 2, 1]] + [[1, 2, 3, 4, 5]] * 4


@pytest.mark.parametrize("text, words", [
    ("userid;movieid\n1;2\n", "expected the header"),
    ("userId,movieId,rating,timestamp\n1,2,3.5\n", "line 2: expected userId,movieId,rating,timestamp"),
    ("userId,movieId,rating,timestamp\n", "no ratings"),
])
def test_ratings_csv_errors_name_the_file(tmp_path, text, words):
    path = write(tmp_path / "ratings.csv", text)
    with pytest.raises(DataFormatError, match=words):
        data.read_movielens_ratings(path)


# ----------------------------------------------------------------------------- detection

@pytest.mark.parametrize("name, text, layout", [
    ("a.txt", "1 1\n1 2\n2 1\n", "sasrec"),
    ("a.txt.gz", "1 1\n1 2\n2 1\n", "sasrec"),
    ("b.txt", PER_USER, "per-user"),
    ("b.gz", PER_USER, "per-user"),  # gzip found by its magic bytes, not the name
    ("ratings.dat", RATINGS, "movielens"),
    ("ratings.csv", RATINGS_CSV, "movielens"),
])
def test_layout_is_detected_from_the_content(tmp_path, name, text, layout):
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    assert detect_format(path) == layout


def test_a_given_layout_wins_over_detection(tmp_path):
    path = write(tmp_path / "pairs.txt", "1 5\n2 6\n")  # reads the same either way
    assert as_lists(load_dataset(path, "per-user")) == as_lists(load_dataset(path, "sasrec"))
    with pytest.raises(DataFormatError, match="already had a line"):
        load_dataset(write(tmp_path / "sasrec.txt", "1 5\n1 6\n"), "per-user")


# ----------------------------------------------------------------------------- the registry

def test_every_data_set_names_a_layout_a_checksum_and_a_length():
    assert set(DATASETS) >= {"ml-1m", "ml-20m", "beauty"}
    for name, entry in DATASETS.items():
        algorithm, digest = entry.checksum.split(":")
        assert algorithm in ("md5", "sha256") and len(digest) == {"md5": 32, "sha256": 64}[algorithm], name
        assert entry.data_format in DATA_FORMATS and entry.max_len >= 2, name
        assert entry.url.startswith("https://") and entry.filename, name
    assert {name: DATASETS[name].max_len for name in ("ml-1m", "ml-20m", "beauty")} == \
        {"ml-1m": 200, "ml-20m": 200, "beauty": 50}


FILES = {"ml-1m": ("ml-1m/ratings.dat", RATINGS), "ml-20m": ("ml-20m/ratings.csv", RATINGS_CSV),
         "beauty": (None, PER_USER)}


def serve(tmp_path, name) -> tuple[Path, str]:
    """A stand-in for the data set's public file (zip or text), and its checksum."""
    entry = DATASETS[name]
    source = tmp_path / "source" / entry.filename
    source.parent.mkdir(exist_ok=True)
    member, text = FILES[name]
    if member:
        with zipfile.ZipFile(source, "w") as z:
            z.writestr(member, text)
    else:
        source.write_text(text)
    algorithm = entry.checksum.split(":")[0]
    return source, f"{algorithm}:{hashlib.new(algorithm, source.read_bytes()).hexdigest()}"


@pytest.mark.parametrize("name", ["ml-1m", "ml-20m", "beauty"])
def test_each_data_set_downloads_checks_and_caches(tmp_path, monkeypatch, name):
    source, checksum = serve(tmp_path, name)
    entry = dataclasses.replace(DATASETS[name], url=source.as_uri(), checksum=checksum)
    path = entry.download(tmp_path / "cache")
    assert path == tmp_path / "cache" / entry.filename and path.read_bytes() == source.read_bytes()
    source.unlink()  # cached: no download the second time
    assert entry.download(tmp_path / "cache") == path
    assert load_dataset(path, entry.data_format).num_users == (5 if name != "beauty" else 3)


@pytest.mark.parametrize("name", ["ml-1m", "ml-20m", "beauty"])
def test_a_wrong_checksum_is_an_error_and_leaves_nothing(tmp_path, name):
    source, checksum = serve(tmp_path, name)
    algorithm = checksum.split(":")[0]
    entry = dataclasses.replace(DATASETS[name], url=source.as_uri(), checksum=f"{algorithm}:{'0' * 32}")
    with pytest.raises(DownloadError, match=f"its {algorithm} is .*Download {source.as_uri()} by hand"):
        entry.download(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.skipif(not (SHARED / "amazon-beauty" / "Beauty.txt.gz").exists(), reason="no shared Beauty copy")
def test_the_shared_beauty_file_gives_the_registered_counts():
    got = load_dataset(SHARED / "amazon-beauty" / "Beauty.txt.gz")
    assert (got.num_users, got.num_items, got.num_interactions) == DATASETS["beauty"].counts


# ----------------------------------------------------------------------------- the trainer

@pytest.fixture(scope="module")
def script():
    return load_script("examples", "train")


def test_trainer_downloads_a_named_data_set_and_records_it(tmp_path, monkeypatch, script):
    source, checksum = serve(tmp_path, "beauty")
    monkeypatch.setitem(DATASETS, "beauty", dataclasses.replace(DATASETS["beauty"], url=source.as_uri(),
                                                                checksum=checksum))
    monkeypatch.setenv("TINYHYDRA_CACHE", str(tmp_path / "cache"))
    result = script.main(["--dataset", "beauty", "--epochs", "1", "--dim", "8", "--eval", "full",
                          "--progress", "false", "--out", str(tmp_path / "run")])
    assert result["config"]["max_len"] == 50  # Beauty's default length
    assert result["dataset"] == "beauty"
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["data_sha256"] == sha256


def test_a_local_file_without_a_data_set_is_named_by_its_file(tmp_path, script):
    path = write(tmp_path / "mine.txt", PER_USER)
    result = script.main(["--data", str(path), "--data-format", "per-user", "--epochs", "1", "--dim", "8",
                          "--eval", "full", "--progress", "false", "--out", str(tmp_path / "run")])
    assert result["dataset"] == "mine.txt" and result["config"]["max_len"] == 200
