"""Smoke tests of the benchmark scripts: their --quick modes run and write what they promise.

benchmarks/ is not a package, so each script is loaded from its file.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinyhydra as th
from tinyhydra import functional as F

from .scripts import load_script


def load_benchmark(name):
    return load_script("benchmarks", name)


def positive_finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def attention_scaling():
    return load_benchmark("attention_scaling")


@pytest.fixture(scope="module")
def train_step():
    return load_benchmark("train_step")


# ---------------------------------------------------------------- attention_scaling
def test_attention_scaling_quick(attention_scaling, tmp_path):
    results = attention_scaling.main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "attention_scaling.json").read_text())
    for key in ("config", "environment", "points", "summary"):
        assert key in saved
    lengths = saved["config"]["lengths"]
    assert len(saved["points"]) == 4 * len(lengths)
    for point in saved["points"]:
        assert point["skipped"] is None
        assert positive_finite(point["seconds"])
        assert point["peak_bytes"] > 0
    summary = saved["summary"]
    for kind in ("softmax", "hydra", "decayed", "linear"):
        row = summary["per_kind"][kind]
        assert {"slope_all", "slope_long", "ratio_4096_512", "memory_slope_long"} <= set(row)
        assert math.isfinite(row["slope_all"])
    for name in ("crossover_hydra_vs_softmax", "crossover_decayed_vs_softmax",
                 "crossover_linear_vs_softmax"):
        assert {"first_measured", "interpolated", "below_range", "note"} <= set(summary[name])
    assert all(positive_finite(r) for r in summary["decayed_over_hydra"].values())
    assert results["summary"]["per_kind"].keys() == summary["per_kind"].keys()
    if results.get("plot"):
        assert (tmp_path / "attention_scaling.png").stat().st_size > 0


def test_attention_scaling_skips_over_budget(attention_scaling, tmp_path):
    """A point whose estimated memory exceeds --max-gib is reported as skipped, not run."""
    results = attention_scaling.main(["--lengths", "64", "2048", "--repeats", "1", "--warmup", "0",
                                      "--max-gib", "0.05", "--batch", "1", "--no-memory",
                                      "--no-plot", "--out", str(tmp_path)])
    by_key = {(p["kind"], p["length"]): p for p in results["points"]}
    assert by_key[("softmax", 2048)]["skipped"].startswith("estimated")
    assert by_key[("softmax", 2048)]["seconds"] is None
    assert positive_finite(by_key[("hydra", 2048)]["seconds"])
    assert positive_finite(by_key[("softmax", 64)]["seconds"])


def test_fit_helpers():
    common = load_benchmark("common")

    lengths = [64, 128, 256, 512, 1024]
    quadratic = [1e-6 * n ** 2 for n in lengths]
    linear = [1e-3 * n for n in lengths]
    assert common.loglog_slope(lengths, quadratic) == pytest.approx(2.0)
    assert common.loglog_slope(lengths, linear, min_length=256) == pytest.approx(1.0)
    assert common.loglog_slope(lengths, linear, min_length=2048) is None
    assert common.ratio_at(lengths, quadratic, 1024, 512) == pytest.approx(4.0)
    assert common.ratio_at(lengths, quadratic, 4096, 512) is None
    # the lines cross where 1e-6 n^2 = 1e-3 n, i.e. n = 1000
    cross = common.crossover(lengths, linear, quadratic)
    assert cross["first_measured"] == 1024
    assert cross["interpolated"] == pytest.approx(1000.0, rel=1e-6)
    assert common.crossover(lengths, quadratic, [10.0] * 5)["first_measured"] == 64
    assert common.crossover(lengths, [10.0] * 5, quadratic)["first_measured"] is None



def test_common_reads_no_argv_at_import_and_run_applies_threads(monkeypatch):
    """Importing common changes nothing; common.run exports --threads and restarts the
    interpreter (os.execv) so that a fresh NumPy reads it, unless it is already set."""
    monkeypatch.setattr(sys, "argv", ["bench.py", "--threads", "3"])
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "7")
    common = load_benchmark("common")
    assert os.environ["OPENBLAS_NUM_THREADS"] == "7"
    calls = []
    monkeypatch.setattr(os, "execv", lambda exe, args: calls.append((exe, args)))
    common.run(lambda: calls.append("main"))
    assert calls == [(sys.executable, [sys.executable, "bench.py", "--threads", "3"]), "main"]
    assert {os.environ[name] for name in common.THREAD_VARIABLES} == {"3"}
    calls.clear()
    common.run(lambda: calls.append("main"))  # already set: no restart
    assert calls == ["main"]


def test_benchmark_flags_use_the_library_parser(attention_scaling, capsys):
    """The benchmarks parse with trainer.cli: lists, bools, defaults; a typo is one line, exit 2."""
    cfg = load_benchmark("common").parse_config(attention_scaling.Config,
                                                ["--lengths", "64", "128", "--no-memory"])
    assert cfg.lengths == [64, 128] and cfg.memory is False and cfg.repeats == attention_scaling.Config().repeats
    with pytest.raises(SystemExit) as stop:
        attention_scaling.main(["--lenghts", "64"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lenghts" in err and "Traceback" not in err

# ---------------------------------------------------------------- train_step
def test_train_step_quick(train_step, tmp_path):
    results = train_step.main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "train_step.json").read_text())
    for key in ("config", "environment", "data", "matmul_peak", "models", "profile", "flops",
                "torch", "memory"):
        assert key in saved
    assert positive_finite(saved["matmul_peak"]["gflops"])
    for kind in ("softmax", "hydra"):
        assert positive_finite(saved["models"][kind]["seconds_per_step"])
        assert all(positive_finite(t) for t in saved["models"][kind]["runs"])
        profile = saved["profile"][kind]
        assert "MatMul" in profile["functions"]
        assert positive_finite(profile["adam_seconds"])
        assert positive_finite(saved["flops"][kind]["matmul_gflops"])
        assert positive_finite(saved["memory"][kind]["peak_bytes"])
    assert "SoftmaxAttention" in saved["profile"]["softmax"]["functions"]
    assert "FusedHydraAttention" in saved["profile"]["hydra"]["functions"]
    assert positive_finite(saved["flops"]["softmax"]["attention_gflops"])
    assert saved["flops"]["hydra"]["attention_gflops"] is None
    assert saved["torch"]["run"] is False  # --quick skips PyTorch unless --torch
    engine = saved["engine_overhead"]
    assert engine["ops"] == 200
    for key in ("forward_us_per_op", "backward_us_per_op", "raw_forward_us_per_op", "topological_order_us_per_op"):
        assert positive_finite(engine[key])
    calls = saved["attention_call_overhead"]
    assert calls["shape"] == [1, 8, 8] and len(calls) == 1 + 4 * 2  # four ops, both directions
    assert all(positive_finite(us) for name, us in calls.items() if name != "shape")
    update = saved["optimizer_update"]
    assert positive_finite(update["flat"]) and positive_finite(update["per_parameter"])
    model, _ = train_step.tinyhydra_model(train_step.Config(quick=True), "softmax", 16)
    assert update["parameters"] == len(model.parameters())
    assert results["models"]["softmax"]["seconds_per_step"] == saved["models"]["softmax"]["seconds_per_step"]


def test_train_step_heads_reach_softmax_and_hydra_only(train_step):
    """--heads H builds both kinds with H heads (0: each model's own); decayed Hydra, one head per
    feature, and the one-head-per-feature PyTorch twin of Hydra refuse it in one line."""
    for heads, expected in ((0, {"softmax": 1, "hydra": None}), (4, {"softmax": 4, "hydra": 4})):  # None: H = D
        cfg = train_step.Config(quick=True, heads=heads, models="softmax,hydra")
        for kind, count in expected.items():
            model, _ = train_step.tinyhydra_model(cfg, kind, 16)
            assert model.blocks[0].attention.num_heads == count, (heads, kind)
    with pytest.raises(ValueError, match="leave decayed-hydra out"):
        train_step.Config(quick=True, heads=2, models="softmax,decayed-hydra")
    with pytest.raises(ValueError, match="add --torch false"):
        train_step.Config(quick=True, heads=2, models="hydra", torch=True)


def test_count_flops_matches_shapes(train_step):
    """The analytic count, checked by hand for one block of the ce loss."""
    cfg = train_step.Config(batch=2, seq_len=3, dim=4, layers=1, num_items=5)
    counts = train_step.count_flops(cfg, "softmax", target_rows=6)
    n = 2 * 3
    blocks = 4 * 2 * n * 4 * 4 + 2 * 2 * n * 4 * 4
    assert counts["matmul_forward"] == blocks + 2 * 6 * 4 * 5
    assert counts["matmul_step"] == 3 * counts["matmul_forward"]
    assert counts["attention_forward"] == 2 * 2 * 2 * 3 * 3 * 4
    assert train_step.count_flops(cfg, "hydra", target_rows=6)["attention_step"] == 0


def test_torch_twin_matches_tinyhydra(train_step):
    """The PyTorch model computes the same loss as tinyhydra's SASRec from the same weights."""
    torch = pytest.importorskip("torch")
    for kind in ("softmax", "hydra"):
        cfg = train_step.Config(batch=3, seq_len=8, dim=8, num_items=20, dropout=0.0)
        model, _ = train_step.tinyhydra_model(cfg, kind, cfg.seq_len)
        twin, _, device = load_benchmark("torch_sasrec").torch_model(cfg, kind, "cpu")
        twin.load_state_dict({name: torch.from_numpy(array)
                              for name, array in model.state_dict().items()})
        rng = np.random.default_rng(0)
        inputs = rng.integers(1, 21, (3, 8))
        inputs[0, :3] = 0  # left padding
        targets = rng.integers(1, 21, (3, 8))
        targets[inputs == 0] = 0
        batch = train_step.data.CausalBatch(inputs, targets, np.ones((3, 8, 1), np.int64))
        expected = model.loss(batch).item()
        got = twin.loss(torch.from_numpy(inputs), torch.from_numpy(targets)).item()
        assert got == pytest.approx(expected, rel=1e-5), kind


def test_train_step_quick_with_torch(train_step, tmp_path):
    pytest.importorskip("torch")
    results = train_step.main(["--quick", "--torch", "--memory-len", "0", "--out", str(tmp_path)])
    assert results["torch"]["run"] is True
    for kind in ("softmax", "hydra"):
        row = results["torch"]["models"][kind]
        assert positive_finite(row["seconds_per_step"])
        assert positive_finite(row["tinyhydra_over_torch"])
    assert results["memory"] is None


# ---------------------------------------------------------------- hydra_vs_torch
def test_hydra_vs_torch_twins_match_and_run(tmp_path):
    """The PyTorch side computes the same outputs and gradients as the fused ops (float64),
    causal and bidirectional, and the script times all four runs per direction and length."""
    torch = pytest.importorskip("torch")
    script = load_benchmark("hydra_vs_torch")
    rng = np.random.default_rng(0)
    for length in (5, 40, 300):  # one chunk, several, a padded last chunk
        for causal in (True, False):
            decay = rng.uniform(0, 1, (8,) if causal else (2, 8))
            arrays = [rng.standard_normal((2, length, 8)) for _ in range(3)] + [decay]
            cotangent = rng.standard_normal((2, length, 8))
            for decayed in (False, True):
                ours = [th.Tensor(a, requires_grad=True) for a in arrays[:3 + decayed]]
                fn = F.decayed_hydra_attention if decayed else F.hydra_attention
                out = fn(*ours, causal=causal)
                out.backward(cotangent)
                theirs = [torch.tensor(a, requires_grad=True) for a in arrays[:3 + decayed]]
                twin = script.torch_hydra(torch, *theirs[:3], theirs[3] if decayed else None, causal=causal)
                twin.backward(torch.from_numpy(cotangent))
                np.testing.assert_allclose(twin.detach().numpy(), out.data, atol=1e-12)
                for a, b in zip(ours, theirs):
                    np.testing.assert_allclose(b.grad.numpy(), a.grad, atol=1e-11)
    results = script.main(["--lengths", "64", "128", "--repeats", "1", "--warmup", "0",
                           "--out", str(tmp_path)])
    assert (tmp_path / "hydra_vs_torch.json").exists()
    assert set(results["seconds"]) == {"causal", "bidirectional"}
    for lengths in results["seconds"].values():
        assert set(lengths) == {64, 128}
        for seconds in lengths.values():
            assert set(seconds) == {"hydra", "hydra (torch)", "decayed", "decayed (torch)"}
            assert all(positive_finite(s) for s in seconds.values())


def test_hydra_vs_torch_in_separate_processes(tmp_path):
    """--processes: each side timed in processes of its own, at both allocator settings."""
    pytest.importorskip("torch")
    script = load_benchmark("hydra_vs_torch")
    results = script.main(["--lengths", "64", "--directions", "bidirectional", "--repeats", "1",
                           "--warmup", "0", "--processes", "1", "--out", str(tmp_path)])
    by_process = results["seconds_by_process"]
    assert set(by_process) == {label for label, _, _ in script.PROCESSES}
    assert set(by_process["tinyhydra"]["bidirectional"][64]) == {"hydra", "decayed"}
    assert set(by_process["torch at its defaults"]["bidirectional"][64]) == {"hydra (torch)", "decayed (torch)"}
    assert all(positive_finite(s) for process in by_process.values() for s in process["bidirectional"][64].values())


def test_tiny_preset_and_count_kernels_needs_a_gpu(train_step):
    cfg = train_step.Config(tiny=True)
    assert (cfg.batch, cfg.seq_len, cfg.dim, cfg.num_items) == (8, 16, 16, 3416)
    with pytest.raises(ValueError, match="--device gpu"):
        train_step.Config(count_kernels="tinyhydra/hydra")


def test_count_kernels_counts_the_kernels_of_one_step(train_step, accelerator, tmp_path):
    """On a GPU with PyTorch: one step of each named contestant launches kernels, CuPy's
    as well as PyTorch's, and a step of the same model launches as many each time.
    Skipped without CuPy and a GPU, or without PyTorch."""
    pytest.importorskip("torch")
    names = "tinyhydra/hydra,torch/hydra"
    counts = train_step.main(["--quick", "--torch", "--device", accelerator, "--count-kernels", names,
                              "--out", str(tmp_path)])
    assert set(counts) == set(names.split(","))
    assert all(row["kernels"] > 20 and row["distinct"] > 5 for row in counts.values())
    again = train_step.main(["--quick", "--device", accelerator, "--count-kernels", "tinyhydra/hydra",
                             "--out", str(tmp_path)])
    assert again["tinyhydra/hydra"]["kernels"] == counts["tinyhydra/hydra"]["kernels"]
    assert (tmp_path / "kernels.json").exists()
    with pytest.raises(ValueError, match="choose from"):
        train_step.main(["--quick", "--device", accelerator, "--count-kernels", "tinyhydra/nope",
                         "--out", str(tmp_path)])


def test_compare_with_times_another_checkout_side_by_side(train_step, tmp_path):
    """--compare-with ROOT imports ROOT/tinyhydra under another name and times it interleaved
    with this one (here: this very checkout, so both run the same code)."""
    root = str(Path(train_step.__file__).resolve().parents[1])
    results = train_step.main(["--quick", "--compare-with", root, "--memory-len", "0", "--engine-ops", "0",
                               "--out", str(tmp_path)])
    compared = results["compared"]
    assert compared["path"] == root
    for kind in ("softmax", "hydra"):
        row = compared["models"][kind]
        assert len(row["runs"]) == 2 and all(positive_finite(t) for t in row["runs"])
        assert positive_finite(row["this_over_compared"]) and positive_finite(row["best_this_over_compared"])
    with pytest.raises(FileNotFoundError, match="no tinyhydra/__init__.py"):
        train_step.load_compared_tinyhydra(str(tmp_path))


def test_scan_forms_quick_times_both_forms_that_agree(tmp_path):
    script = load_benchmark("scan_forms")
    results = script.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "scan_forms.json").exists()
    assert len(results["rows"]) == 4  # two shapes, plain and decayed
    for row in results["rows"]:
        assert set(row["ms"]) == {"loop", "matmul"} and all(positive_finite(ms) for ms in row["ms"].values())
        assert row["max_difference"] < 1e-4


def test_hydra_heads_quick_times_every_head_count(tmp_path):
    script = load_benchmark("hydra_heads")
    results = script.main(["--quick", "--out", str(tmp_path)])
    assert [row["num_heads"] for row in results["rows"]] == [1, 2, 5, 10]
    assert all(positive_finite(ms) for row in results["rows"] for ms in row["ms"].values())
    assert "H = 10 global is Hydra" in (tmp_path / "hydra_heads_cpu.txt").read_text()


def test_allocator_compares_both_settings_in_separate_processes(tmp_path):
    """benchmarks/allocator.py: one training process per model, setting and repeat, each with
    its CPU time, page faults and peak RSS."""
    from tinyhydra.rec import data
    allocator = load_benchmark("allocator")
    path = tmp_path / "walks.txt"
    data.write_sasrec_txt(data.synthetic_interactions(200, 300, 20, 60, seed=0), path)
    runs = allocator.main(["--data", str(path), "--steps", "3", "--repeats", "1", "--models", "sasrec",
                           "--out", str(tmp_path)])
    kept, given_back = runs["sasrec"]["kept"][0], runs["sasrec"]["given back"][0]
    for run in (kept, given_back):
        assert run["cpu_seconds"] > 0 and run["minor_faults"] > 0 and run["peak_rss_gib"] > 0
    assert json.loads((tmp_path / "allocator.json").read_text())["runs"]["sasrec"]["kept"][0] == kept


@pytest.mark.parametrize("flags", [["--tiny", "--models", "sasrec", "--steps", "3", "--warmup", "1"],
                                   ["--data", "walks.txt", "--steps", "2", "--warmup", "1"]])
def test_checkout_step_times_one_checkout_in_its_own_process(tmp_path, flags):
    """benchmarks/checkout_step.py ROOT: this checkout's tinyhydra, alone in a process, at the
    tiny shapes and on a small generated data file; every reading positive and finite."""
    from tinyhydra.rec import data
    data.write_sasrec_txt(data.synthetic_interactions(40, 300, 20, 60, seed=0), tmp_path / "walks.txt")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "checkout_step.py"), str(root), *flags],
                          cwd=tmp_path, capture_output=True, text=True, check=True, timeout=300)
    out = json.loads(done.stdout)
    assert Path(out["tinyhydra"]).resolve() == root / "tinyhydra" / "__init__.py"
    assert list(out["models"]) == (["sasrec"] if "--tiny" in flags else ["sasrec", "hydrarec-uni"])
    for row in out["models"].values():
        for key in ("cpu_ms_median", "cpu_ms_min", "wall_ms_median"):
            assert positive_finite(row[key]), (key, row)
        for key in ("user_ms_median", "system_ms_median", "page_faults_per_step"):  # 0 when none
            assert math.isfinite(row[key]) and row[key] >= 0, (key, row)


def test_benchmarks_write_under_results_by_default():
    """results/ is the one home of measurements: without --out a benchmark writes into
    results/<benchmark>_<device>/ (allocator.py, CPU only, into results/allocator/)."""
    common = load_benchmark("common")
    root = Path(__file__).resolve().parents[1]
    assert common.default_out("train_step", "gpu") == root / "results" / "train_step_gpu"
    for name in ("attention_scaling", "hydra_heads", "hydra_vs_torch", "scan_forms", "train_step"):
        assert load_benchmark(name).Config().out == "", name  # common.setup fills in default_out
    assert "benchmarks/results" not in (root / ".gitignore").read_text()
