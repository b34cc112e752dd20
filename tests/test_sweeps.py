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
    write_step_costs(tmp_path / "head_costs" / "H1", {"softmax": (1.25, 1.0), "hydra": (2.5, 0.5)})
    write_step_costs(tmp_path / "head_costs" / "H2", {"softmax": (1.5, 1.0), "hydra": (2.0, 0.5)})
    lines = sweeps.main(["heads", "--results", str(tmp_path), "--figure", ""])
    link = "[sasrec-e30](../results/decay-grid-sasrec-e30.json)"
    assert f"| 1 | 50 | softmax | 0.1400 | 0.2800 | 50.0 | 1.250 | 1.00 | {link} |" in lines
    assert "| 50 | 1 | cosine | 0.1500 | 0.3000 | 40.0 | - | - |" in "\n".join(lines)  # no benchmark at H = 50
    assert "| 2 | 25 | cosine | - | - | - | 2.000 | 0.50 | not trained yet |" in lines  # a cost, no run yet
    assert any(line.startswith("| 5 | 10 | cosine | 0.1300 |") for line in lines)
    assert any(line.startswith("| 50 | 1 | cosine | 0.1500 |") for line in lines)
    missing = lines[-1].removeprefix("Not trained yet: ").rstrip(".").split(", ")
    assert "hydrarec-uni-e30-h1" in missing and "sasrec-e30-h50" in missing and "hydrarec-uni-e30-h5" not in missing
    assert "hydrarec-uni-e30-h5-perhead" in missing and len(missing) == len(set(missing))


def write_step_costs(folder, costs):
    """A benchmarks/train_step.py result: kind -> (seconds per step, peak GiB)."""
    folder.mkdir(parents=True)
    bench = {"models": {kind: {"seconds_per_step": seconds} for kind, (seconds, _) in costs.items()},
             "memory": {kind: {"peak_bytes": gib * 2**30} for kind, (_, gib) in costs.items()}}
    (folder / "train_step.json").write_text(json.dumps(bench))


def test_lengths_table_fits_the_slope_of_the_step_costs_against_length(tmp_path, sweeps):
    for length in (50, 100, 200, 400, 800):   # softmax quadratic in time, all three linear in memory
        write_step_costs(tmp_path / "length_costs" / f"L{length}",
                         {"softmax": ((length / 100) ** 2, length / 100), "hydra": (length / 100, length / 100),
                          "decayed-hydra": (length / 50, length / 200)})
    write_row(tmp_path, "hydrarec-uni-e30", 0.1, 40.0)
    figure = tmp_path / "lengths.png"
    lines = sweeps.main(["lengths", "--results", str(tmp_path), "--figure", str(figure)])
    slopes = "sasrec {}, hydrarec-uni 1.00, hydrarec-uni-decay 1.00."
    assert "Fitted slope of log(s/step) on log(L): " + slopes.format("2.00") in lines
    assert "Fitted slope of log(peak memory) on log(L): " + slopes.format("1.00") in lines
    assert "| sasrec | 400 | - | - | 16.000 | 4.00 | not trained yet |" in lines
    link = "[hydrarec-uni-e30](../results/decay-grid-hydrarec-uni-e30.json)"
    assert f"| hydrarec-uni | 200 | 0.1000 | 40.0 | 2.000 | 2.00 | {link} |" in lines
    assert figure.stat().st_size > 1000


def test_pair_table_reports_each_row_against_the_target(tmp_path, sweeps):
    history = [{"epoch": 1, "loss": 7.6}, {"epoch": 2, "loss": 7.3, "valid": {"full/NDCG@10": 0.18}}]
    metrics = {"epochs_run": 2, "best_epoch": 2, "stop_reason": "epochs", "train_seconds": 5400.0,
               "valid": {"full/NDCG@10": 0.18}, "test": {"full/NDCG@10": 0.1925, "full/HR@10": 0.31},
               "history": history}
    (tmp_path / "decay-grid-hydrarec-uni-decay-e300.json").write_text(json.dumps(metrics))
    figure = tmp_path / "pair.png"
    lines = sweeps.main(["pair", "--results", str(tmp_path), "--figure", str(figure)])
    link = "[hydrarec-uni-decay-e300](../results/decay-grid-hydrarec-uni-decay-e300.json)"
    assert f"| {link} | 2 | 2 | epochs | 0.1800 | 0.1925 | 0.3100 | +0.0025 | 1.5 |" in lines
    assert "Best test full NDCG@10: 0.1925 (hydrarec-uni-decay-e300): 0.19 reached (+0.0025)." in lines
    assert not any(" against " in line for line in lines)  # its softmax twin is not trained
    assert lines[-1] == ("Not trained yet: sasrec-e300, sasrec-e300-cos, hydrarec-uni-decay-e300-cos, "
                         "sasrec-e300-cos-full, hydrarec-uni-decay-e300-cos-full.")
    assert figure.stat().st_size > 1000


def test_pair_verdicts_compare_each_twin_and_say_by_how_much_the_target_is_missed(sweeps):
    tests = {"sasrec-e300": 0.16, "hydrarec-uni-decay-e300": 0.18, "sasrec-e300-cos": 0.15}
    assert sweeps.pair_verdicts(tests) == [
        "", "hydrarec-uni-decay-e300 against sasrec-e300: test full NDCG@10 0.1800 against 0.1600 (+0.0200, +12.5%).",
        "Best test full NDCG@10: 0.1800 (hydrarec-uni-decay-e300): 0.19 missed by 0.0100 (5.3%)."]
    assert sweeps.pair_verdicts({}) == []


@pytest.mark.parametrize("sweep", ["heads", "lengths", "pair"])
def test_results_page_holds_the_sweep_tables(sweeps, sweep):
    """docs/results.md shows each sweep as scripts/sweeps.py prints it from results/: a row that
    finishes without the page being updated fails here."""
    page = (sweeps.ROOT / "docs" / "results.md").read_text()
    printed = "\n".join(sweeps.main([sweep, "--figure", ""]))
    assert printed in page, f"paste `python scripts/sweeps.py {sweep}` into docs/results.md"
