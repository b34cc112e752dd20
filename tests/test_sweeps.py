"""scripts/sweeps.py: the head-count and length tables from fake finished rows."""
import json

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def sweeps():
    return load_script("scripts", "sweeps")


def write_row(folder, row, ndcg, seconds):
    metrics = {"test": {"full/NDCG@10": ndcg, "full/HR@10": 2 * ndcg}, "seconds_per_epoch": seconds}
    (folder / f"decay-grid-{row}.json").write_text(json.dumps(metrics))


def test_heads_table_maps_each_kernels_default_to_its_plain_row(tmp_path, sweeps):
    write_row(tmp_path, "sasrec-e30", 0.14, 50.0)          # softmax, H = 1
    write_row(tmp_path, "hydrarec-uni-e30", 0.15, 40.0)    # cosine, H = D = 50 (Hydra)
    write_row(tmp_path, "hydrarec-uni-e30-h5", 0.13, 45.0)
    lines = sweeps.main(["heads", "--results", str(tmp_path), "--figure", ""])
    link = "[sasrec-e30](../results/decay-grid-sasrec-e30.json)"
    assert f"| 1 | 50 | softmax | 0.1400 | 0.2800 | 50.0 | {link} |" in lines
    assert any(line.startswith("| 5 | 10 | cosine | 0.1300 |") for line in lines)
    assert any(line.startswith("| 50 | 1 | cosine | 0.1500 |") for line in lines)
    missing = lines[-1].removeprefix("Not trained yet: ").rstrip(".").split(", ")
    assert "hydrarec-uni-e30-h1" in missing and "sasrec-e30-h50" in missing and "hydrarec-uni-e30-h5" not in missing
    assert "hydrarec-uni-e30-h5-perhead" in missing and len(missing) == len(set(missing))


def test_lengths_table_fits_the_slope_of_time_against_length(tmp_path, sweeps):
    for length, seconds in ((50, 10.0), (200, 40.0), (800, 160.0)):   # linear: slope 1
        write_row(tmp_path, "hydrarec-uni-e30" if length == 200 else f"hydrarec-uni-len{length}", 0.1, seconds)
    for length, seconds in ((100, 10.0), (400, 160.0)):               # quadratic: slope 2
        write_row(tmp_path, f"sasrec-len{length}", 0.1, seconds)
    figure = tmp_path / "lengths.png"
    lines = sweeps.main(["lengths", "--results", str(tmp_path), "--figure", str(figure)])
    assert "Fitted slope of log(s/epoch) on log(L): sasrec 2.00, hydrarec-uni 1.00." in lines
    assert figure.stat().st_size > 1000


@pytest.mark.parametrize("sweep", ["heads", "lengths"])
def test_results_page_holds_the_sweep_tables(sweeps, sweep):
    """docs/results.md shows each sweep as scripts/sweeps.py prints it from results/: a row that
    finishes without the page being updated fails here."""
    page = (sweeps.ROOT / "docs" / "results.md").read_text()
    printed = "\n".join(sweeps.main([sweep, "--figure", ""]))
    assert printed in page, f"paste `python scripts/sweeps.py {sweep}` into docs/results.md"
