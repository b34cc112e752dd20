"""examples/train_ml1m.py end to end on small generated data (seconds, not minutes)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyhydra.engine import checkpoint
from tinyhydra.rec import data
from tinyhydra.rec.metrics import metric_names
from tinyhydra.rec.registry import MODELS
from trainer import runs

from .scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
METRIC_NAMES = metric_names()  # HR@1 ... MRR: every metric of tinyhydra.rec.metrics.METRICS


def load_example(name: str):
    return load_script("examples", name)


@pytest.fixture(scope="module")
def script():
    return load_example("train")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "synthetic.txt.gz"
    data.write_sasrec_txt(data.synthetic_interactions(150, 300, 8, 30, seed=0), path)
    return path


def small_run(dataset, out, *extra):
    return ["--data", str(dataset), "--out", str(out), "--max-len", "16", "--dim", "16",
            "--batch-size", "64", "--eval-every", "1", "--progress", "false", *extra]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_and_writes_metrics(script, dataset, tmp_path, model):
    heads = ["--heads", "2"] if MODELS[model].takes_heads else []  # decayed Hydra: one head per feature
    result = script.main(small_run(dataset, tmp_path, "--model", model, "--epochs", "2", *heads))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["model"] == model == result["model"]
    assert written["epochs_run"] == 2 and len(written["history"]) == 2
    assert written["seconds_per_epoch"] > 0 and written["train_seconds"] > 0
    for split in ("valid", "test"):
        for protocol in ("full", "sampled"):
            for name in METRIC_NAMES:
                assert 0.0 <= written[split][f"{protocol}/{name}"] <= 1.0
    assert written["config"]["model"] == model and written["device"] == "cpu"


@pytest.mark.parametrize("loss", ["sampled", "bce"])
def test_causal_losses(script, dataset, tmp_path, loss):
    result = script.main(small_run(dataset, tmp_path, "--model", "sasrec", "--epochs", "1",
                                   "--loss", loss, "--negatives", "8", "--eval", "sampled"))
    assert set(result["test"]) == {f"sampled/{n}" for n in METRIC_NAMES}
    assert {"sampled/HR@10", "sampled/NDCG@1", "sampled/MRR"} <= set(result["test"])  # the keys of every run so far


@pytest.mark.parametrize("model", ["sasrec", "bert4rec"])
def test_random_windows_reach_the_batches(script, dataset, tmp_path, monkeypatch, model):
    calls = []
    monkeypatch.setattr(data.batches, "training_windows",
                        lambda *args: calls.append(args[3]) or [s[-args[1]:] for s in args[0]])
    script.main(small_run(dataset, tmp_path, "--model", model, "--epochs", "1", "--max-len", "8",
                          "--random-window", "0.5", "--eval", "none"))
    assert calls and set(calls) == {0.5}
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["random_window"] == 0.5


def test_resume_continues_where_it_stopped(script, dataset, tmp_path):
    script.main(small_run(dataset, tmp_path, "--epochs", "1"))
    result = script.main(small_run(dataset, tmp_path, "--epochs", "3", "--resume"))
    assert result["epochs_run"] == 3
    assert [record["epoch"] for record in result["history"]] == [1, 2, 3]


def test_resume_takes_the_flags_not_given_from_the_checkpoint(script, dataset, tmp_path, capsys):
    script.main(small_run(dataset, tmp_path, "--model", "bert4rec", "--epochs", "1", "--lr", "0.002",
                          "--mask-last", "0.5", "--max-minutes", "30"))
    result = script.main(["--out", str(tmp_path), "--resume", "--epochs", "2", "--progress", "false"])
    assert result["model"] == "bert4rec" and result["epochs_run"] == 2
    config = result["config"]
    assert (config["data"], config["dim"], config["max_len"]) == (str(dataset), 16, 16)
    assert (config["lr"], config["mask_last"]) == (0.002, 0.5)
    assert config["max_minutes"] == 0.0  # a time budget belongs to one invocation
    assert "replaces the checkpoint's" not in capsys.readouterr().out


def test_ema_validates_and_keeps_the_averaged_weights(script, dataset, tmp_path):
    script.main(small_run(dataset, tmp_path, "--model", "bert4rec", "--epochs", "1", "--ema", "0.9"))
    saved = checkpoint.load(tmp_path / "checkpoint.npz")
    best = checkpoint.load(tmp_path / "best.npz")  # epoch 1 is always the best so far
    names = list(saved["model"])
    assert len(names) == len(saved["ema"]["averages"])
    for name, average in zip(names, saved["ema"]["averages"]):
        np.testing.assert_array_equal(best[name], average, err_msg=name)
    trained_differs = [not np.array_equal(saved["model"][n], best[n]) for n in names]
    assert sum(trained_differs) > len(names) // 2  # best.npz holds the averages, not the weights


def test_resume_continues_the_moving_average(script, dataset, tmp_path):
    config = script.validate(script.Config(model="bert4rec", dim=16, max_len=16, ema=0.9))
    model, _ = script.build(config, num_items=300)
    weights = {name: p.data.copy() for name, p in model.named_parameters()}
    fresh = script.moving_average(config, model, {"ema": None})  # a run that had no average
    for average, weight in zip(fresh.averages, weights.values()):
        np.testing.assert_array_equal(average, weight)
    saved = {"ema": {"decay": 0.5, "averages": [w + 1.0 for w in weights.values()]}}
    continued = script.moving_average(config, model, saved)
    assert continued.decay == 0.9  # the command line's decay
    for average, weight in zip(continued.averages, weights.values()):
        np.testing.assert_array_equal(average, weight + 1.0)
    assert script.moving_average(script.validate(script.Config(ema=0.0)), model, saved) is None


def test_resume_keeps_the_folder_it_reads_the_checkpoint_from(script):
    saved = {"state": {"config": {"model": "bert4rec", "out": "runs/original", "lr": 0.002}}}
    config = runs.resumed_config(script.Config(out="runs/copy", resume=True), {"out"}, saved)
    assert (config.model, config.lr, config.out) == ("bert4rec", 0.002, "runs/copy")
    config = runs.resumed_config(script.Config(model="bert4rec", resume=True), {"model"}, saved)
    assert config.out == "runs/bert4rec"  # the default folder, where this checkpoint was read


def test_resume_on_other_data_says_the_checkpoint_does_not_fit(script, dataset, tmp_path, capsys):
    script.main(small_run(dataset, tmp_path, "--epochs", "1"))
    other = tmp_path / "other.txt"
    data.write_sasrec_txt(data.synthetic_interactions(150, 200, 8, 30, seed=1), other)
    with pytest.raises(SystemExit) as stop:
        script.main(["--out", str(tmp_path), "--resume", "--epochs", "2", "--data", str(other)])
    assert stop.value.code == 1
    assert "does not fit this DecayedHydraRecUni" in capsys.readouterr().err


def test_overwrite_starts_over_and_leaves_nothing_of_the_old_run(script, dataset, tmp_path):
    script.main(small_run(dataset, tmp_path, "--epochs", "1", "--eval", "full"))
    assert (tmp_path / "best.npz").exists()
    result = script.main(small_run(dataset, tmp_path, "--epochs", "1", "--eval", "none", "--overwrite"))
    assert not (tmp_path / "best.npz").exists()  # the old run's weights cannot leak into the test
    assert result["test"] == {} and result["config"]["eval"] == "none"


def test_full_ce_trains_a_user_who_has_seen_every_item(script, tmp_path):
    """Causal full-CE training draws no negatives, so no item needs to be left unseen."""
    path = tmp_path / "all.txt"
    lines = [f"1 {i}" for i in range(1, 21)] + ["1 3", "1 4"]  # user 1 trains on all 20 items
    lines += [f"{u} {i}" for u in range(2, 6) for i in (1, 2, 3, 4)]
    path.write_text("\n".join(lines) + "\n")
    result = script.main(small_run(path, tmp_path / "run", "--epochs", "1", "--eval", "full"))
    assert result["epochs_run"] == 1 and "full/NDCG@10" in result["test"]


def test_resume_uses_the_learning_rate_of_the_command_line(script, dataset, tmp_path, capsys):
    script.main(small_run(dataset, tmp_path, "--epochs", "1"))
    before = checkpoint.load(tmp_path / "checkpoint.npz")["model"]
    script.main(small_run(dataset, tmp_path, "--epochs", "2", "--resume", "--lr", "0.0"))
    assert "--lr 0.0 replaces the checkpoint's 0.001" in capsys.readouterr().out
    after = checkpoint.load(tmp_path / "checkpoint.npz")["model"]
    assert after["item_embedding.weight"].shape == before["item_embedding.weight"].shape
    for name, weight in before.items():  # lr 0 for epoch 2: nothing moves
        np.testing.assert_array_equal(after[name], weight, err_msg=name)


def test_cosine_schedule_anneals_the_learning_rate_to_zero_at_the_last_step(script, dataset, tmp_path, capsys):
    """--lr-schedule cosine: each epoch records the next step's learning rate, lr(t) of
    tinyhydra.nn.lr_schedule at t = the steps taken, reaching 0 after the last epoch."""
    result = script.main(small_run(dataset, tmp_path, "--epochs", "3", "--lr", "0.01", "--lr-schedule", "cosine",
                                   "--warmup-steps", "1", "--eval", "none"))
    steps = checkpoint.load(tmp_path / "checkpoint.npz")["state"]["train_steps"] // 3
    total = 3 * steps
    expected = [0.005 * (1 + np.cos(np.pi * (epoch * steps - 1) / (total - 1))) for epoch in (1, 2)]
    assert [record["lr"] for record in result["history"][:2]] == pytest.approx(expected, rel=1e-12)
    assert result["history"][2]["lr"] == 0.0 and expected[0] > expected[1] > 0
    assert "--patience" not in capsys.readouterr().out  # --eval none: nothing stops early
    script.main(small_run(dataset, tmp_path / "patient", "--epochs", "3", "--lr-schedule", "cosine",
                          "--patience", "2", "--eval-every", "1"))
    assert "note: --patience 2 may stop the run before the cosine schedule" in capsys.readouterr().out
    constant = script.main(small_run(dataset, tmp_path / "constant", "--epochs", "1", "--eval", "none"))
    assert "lr" not in constant["history"][0]  # a constant rate records nothing new


def test_cosine_run_stopped_mid_epoch_resumes_exactly(script, dataset, tmp_path, monkeypatch):
    """A scheduled run stopped during epoch 2 and resumed == the run that never stopped, bit for
    bit: the schedule continues from the step count in the checkpoint."""
    flags = ["--model", "hydrarec-uni-decay", "--epochs", "3", "--lr-schedule", "cosine", "--warmup-steps", "2",
             "--dropout", "0.3", "--ema", "0.9"]
    straight = script.main(small_run(dataset, tmp_path / "straight", *flags))
    original = script.train_one_epoch

    def stopped_in_epoch_two(config, epoch, *args, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(config, epoch, *args, **kwargs)

    monkeypatch.setattr(script, "train_one_epoch", stopped_in_epoch_two)
    with pytest.raises(SystemExit):
        script.main(small_run(dataset, tmp_path / "resumed", *flags))
    monkeypatch.setattr(script, "train_one_epoch", original)
    resumed = script.main(small_run(dataset, tmp_path / "resumed", "--resume"))
    assert_same_run(straight, resumed)
    assert [record["lr"] for record in resumed["history"]][-1] == 0.0


def test_ctrl_c_saves_a_checkpoint_that_resumes(script, dataset, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = script.train_one_epoch

    def interrupted_on_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(script, "train_one_epoch", interrupted_on_second_epoch)
    with pytest.raises(SystemExit) as stop:
        script.main(small_run(dataset, tmp_path, "--epochs", "3"))
    assert stop.value.code == 130
    saved = checkpoint.load(tmp_path / "checkpoint.npz")
    assert saved["state"]["epochs_done"] == 1
    monkeypatch.setattr(script, "train_one_epoch", original)
    result = script.main(small_run(dataset, tmp_path, "--epochs", "3", "--resume"))
    assert result["epochs_run"] == 3 and len(result["history"]) == 3


def without_seconds(history):
    """A run's history without the wall-clock seconds (which differ between two runs)."""
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


EXACT_RESUME_CASES = [
    ("sasrec", []),
    ("bert4rec", []),
    ("hydrarec-uni", ["--loss", "sampled", "--negatives", "8"]),
    ("hydrarec-bi", ["--mask-last", "0.5", "--heads", "4"]),  # --heads from the checkpoint too
]


@pytest.mark.parametrize("model, extra", EXACT_RESUME_CASES, ids=[case[0] for case in EXACT_RESUME_CASES])
def test_resumed_run_is_exactly_the_uninterrupted_run(script, dataset, tmp_path, model, extra):
    """3 epochs straight == 1 epoch + --resume to 3, bit for bit, with dropout on."""
    flags = ["--model", model, "--dropout", "0.3", "--random-window", "0.5", "--ema", "0.9", *extra]
    straight = script.main(small_run(dataset, tmp_path / "straight", *flags, "--epochs", "3"))
    script.main(small_run(dataset, tmp_path / "resumed", *flags, "--epochs", "1"))
    resumed = script.main(small_run(dataset, tmp_path / "resumed", "--epochs", "3", "--resume"))
    assert_same_run(straight, resumed)
    weights = [checkpoint.load(tmp_path / run / "checkpoint.npz")["model"] for run in ("straight", "resumed")]
    for name, array in weights[0].items():
        np.testing.assert_array_equal(weights[1][name], array, err_msg=name)


def assert_same_run(straight: dict, resumed: dict) -> None:
    assert without_seconds(straight["history"]) == without_seconds(resumed["history"])
    assert (straight["valid"], straight["test"]) == (resumed["valid"], resumed["test"])


def assert_same_recorded_numbers(old: dict, resumed: dict) -> None:
    """The resumed run has every number the old script recorded (today's code may compute more
    metrics than it did), equal as floats."""
    def recorded(new, old):
        if isinstance(old, dict):
            return {key: recorded(new[key], value) for key, value in old.items() if key != "seconds"}
        if isinstance(old, list):
            return [recorded(n, o) for n, o in zip(new, old, strict=True)]
        return new
    for key in ("history", "valid", "test"):
        assert recorded(resumed[key], old[key]) == recorded(old[key], old[key])


VERSION_2_COMMIT = "6798561"  # the last script that wrote version-2 checkpoints


def test_a_version_2_checkpoint_resumes_exactly(script, dataset, tmp_path):
    """A run begun by the script (and library) that wrote version-2 checkpoints (full CE then
    drew one unused negative per position) goes on exactly as that script would have gone on."""

    old_tree = tmp_path / "version2"
    old_tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", VERSION_2_COMMIT, "tinyhydra", "examples"],
                             capture_output=True)
    if archive.returncode:
        pytest.skip("needs the git history (the script that wrote version-2 checkpoints)")
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)

    def old_main(argv):  # that commit's script on that commit's library, in a process of its own
        environment = {**os.environ, "PYTHONPATH": str(old_tree)}
        subprocess.run([sys.executable, str(old_tree / "examples" / "train_ml1m.py"), *argv],
                       env=environment, check=True, capture_output=True)
        return json.loads((Path(argv[argv.index("--out") + 1]) / "metrics.json").read_text())

    flags = ["--model", "sasrec", "--random-window", "0.5", "--eval", "full"]  # causal, full CE
    straight = old_main(small_run(dataset, tmp_path / "straight", *flags, "--epochs", "3"))
    old_main(small_run(dataset, tmp_path / "resumed", *flags, "--epochs", "1"))
    assert checkpoint.load(tmp_path / "resumed" / "checkpoint.npz")["version"] == 2
    script.main(small_run(dataset, tmp_path / "resumed", "--epochs", "2", "--resume"))
    assert checkpoint.load(tmp_path / "resumed" / "checkpoint.npz")["version"] == 3
    resumed = script.main(small_run(dataset, tmp_path / "resumed", "--epochs", "3", "--resume"))
    assert_same_recorded_numbers(straight, resumed)


def test_sigterm_mid_epoch_then_resume_is_exactly_the_uninterrupted_run(script, tmp_path):
    """kill -TERM during epoch 2, then --resume: the same run, bit for bit, as no interruption."""
    import os
    import signal
    import subprocess
    import time

    dataset = tmp_path / "bigger.txt.gz"  # epochs of about a second, so the signal lands inside one
    data.write_sasrec_txt(data.synthetic_interactions(1500, 300, 8, 30, seed=0), dataset)
    flags = ["--epochs", "3", "--random-window", "0.5", "--eval", "full"]
    straight = script.main(small_run(dataset, tmp_path / "straight", *flags))

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, str(ROOT / "examples" / "train_ml1m.py"),
                                *small_run(dataset, interrupted, *flags)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline:
        saved = interrupted / "checkpoint.npz"
        if saved.exists() and checkpoint.load(saved)["state"]["epochs_done"] == 1:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted during epoch 2" in output, output
    assert checkpoint.load(interrupted / "checkpoint.npz")["state"]["epochs_done"] == 1

    resumed = script.main(small_run(dataset, interrupted, "--resume"))
    assert_same_run(straight, resumed)


def test_early_stopping_stops_before_the_epoch_budget(script, dataset, tmp_path):
    result = script.main(small_run(dataset, tmp_path, "--epochs", "50", "--patience", "1",
                                   "--lr", "0.0"))  # lr 0: validation never improves
    assert result["epochs_run"] == 2 and result["stop_reason"] == "early stopping"


def test_max_minutes_stops_before_an_epoch_would_pass_the_limit(script, dataset, tmp_path, monkeypatch):
    clock = {"now": 0.0}
    original = script.train_one_epoch

    def epoch_of_a_minute(*args, **kwargs):
        clock["now"] += 60.0
        return original(*args, **kwargs)

    monkeypatch.setattr(script, "wall_clock", lambda: clock["now"])
    monkeypatch.setattr(script, "train_one_epoch", epoch_of_a_minute)
    # epochs end at 1 and 2 minutes; a third would end at 3 > 2.5
    result = script.main(small_run(dataset, tmp_path, "--epochs", "10", "--max-minutes", "2.5"))
    assert result["epochs_run"] == 2 and result["stop_reason"] == "time limit"
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["stop_reason"] == "time limit" and written["test"]
    clock["now"] = 0.0
    resumed = script.main(small_run(dataset, tmp_path, "--epochs", "3", "--resume"))
    assert resumed["epochs_run"] == 3 and resumed["stop_reason"] == "epochs"


@pytest.fixture(scope="module")
def results_table():
    return load_example("results_table")


def test_results_table_lists_each_run(results_table, script, dataset, tmp_path):
    script.main(small_run(dataset, tmp_path, "--epochs", "1"))
    text = results_table.table([tmp_path / "metrics.json"])
    rows = text.splitlines()
    assert len(rows) == 3 and rows[2].startswith("| hydrarec-uni-decay --dim 16 | 1 (1) |")
    assert rows[2].count("|") == rows[0].count("|")
    history = results_table.history_table([tmp_path / "metrics.json"]).splitlines()
    assert history[0] == "| model | ep 1 |" and history[2].startswith("| hydrarec-uni-decay --dim 16 | 0.")


def test_results_table_names_non_default_recipes(results_table):
    """Flags are named against the model's direction's recipe: masking the last item is the
    bidirectional default; no weight averaging or windows differ from either."""
    config = {"loss": "ce", "lr": 0.001, "mask_prob": 0.2, "mask_last": 1.0, "random_window": 1.0, "ema": 0.998}
    assert results_table.run_label({"model": "bert4rec", "config": config}) == "bert4rec"
    assert results_table.run_label({"model": "sasrec", "config": {**config, "lr": 0.002}}) == "sasrec --lr 0.002"
    bigger = {**config, "dim": 256, "heads": 4, "mask_last": 0.0}
    assert (results_table.run_label({"model": "bert4rec", "config": bigger})
            == "bert4rec --dim 256 --heads 4 --mask-last 0.0")
    first_version = {**config, "random_window": 0.0, "ema": 0.0}
    assert (results_table.run_label({"model": "sasrec", "config": first_version})
            == "sasrec --random-window 0.0 --ema 0.0")


def test_results_table_history_at_chosen_epochs(results_table, tmp_path):
    run = {"model": "sasrec", "history": [{"epoch": e, "valid": {"full/NDCG@10": e / 100}} for e in (2, 4, 6)]}
    (tmp_path / "run.json").write_text(json.dumps(run))
    rows = results_table.history_table([tmp_path / "run.json"], epochs=[2, 6, 8]).splitlines()
    assert rows[0] == "| model | ep 2 | ep 6 | ep 8 |"
    assert rows[2] == "| sasrec | 0.0200 | 0.0600 |  |"


def test_results_table_main_prints_both_tables_and_one_line_errors(results_table, tmp_path, capsys):
    run = {"model": "sasrec", "epochs_run": 4, "best_epoch": 4, "seconds_per_epoch": 3.0, "device": "cpu",
           "test": {"full/NDCG@10": 0.1}, "history": [{"epoch": e, "valid": {"full/NDCG@10": e / 100}}
                                                     for e in (2, 4)]}
    (tmp_path / "run.json").write_text(json.dumps(run))
    results_table.main([str(tmp_path / "run.json"), "--epochs", "4"])
    out = capsys.readouterr().out
    assert "| sasrec | 4 (4) | 3.0 | cpu | - | 0.1000 | - | - |" in out and "| sasrec | 0.0400 |" in out
    for argv, status, words in ((["--epochs", "x", str(tmp_path / "run.json")], 2, "comma-separated"),
                                ([], 2, "required: paths"),
                                ([str(tmp_path / "none.json")], 1, "not a readable metrics.json")):
        with pytest.raises(SystemExit) as stop:
            results_table.main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == status and words in err and err.count("\n") == 1


def test_sigterm_from_another_process_saves_a_checkpoint(dataset, tmp_path):
    """A run killed with SIGTERM (or SIGINT while started in the background) keeps its progress."""
    import os
    import signal
    import subprocess
    import time

    command = [sys.executable, str(ROOT / "examples" / "train_ml1m.py"),
               *small_run(dataset, tmp_path, "--epochs", "1000", "--eval", "none")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.time() + 60
    while (not (tmp_path / "checkpoint.npz").exists() and process.poll() is None
           and time.time() < deadline):
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "continue with --resume" in output
    assert checkpoint.load(tmp_path / "checkpoint.npz")["state"]["epochs_done"] >= 0


def grid_commands(device, dataset="ml-1m", **env):
    """The training command of every row of scripts/decay_grid.sh DATASET (its DRY_RUN output)."""
    grid = ROOT / "scripts" / "decay_grid.sh"
    env = {**os.environ, "DRY_RUN": "1", "DEVICE": device, "SEED": "", "DATA": "DATA", **env}
    return subprocess.run(["bash", str(grid), dataset], env=env, capture_output=True, text=True,
                          check=True).stdout.splitlines()


def test_another_seed_trains_rows_of_their_own(script):
    """SEED=N: every row trains with --seed N into <row>-seedN, never into the seed-42 row's folder."""
    for line, default in zip(grid_commands("gpu", SEED="7"), grid_commands("gpu")):
        config, _ = script.parse_args(line.split()[1:])
        assert config.seed == 7 and "--resume" not in line
        assert config.out == default.split("--out ")[1].split()[0] + "-seed7"


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("dataset, rows", [("ml-1m", 13), ("beauty", 6), ("ml-20m", 6)])
def test_every_row_of_the_decay_grid_has_valid_flags(script, device, dataset, rows):
    """scripts/decay_grid.sh: each row's command parses and passes the config checks,
    and each row trains its own model into its own folder (under runs/<dataset>/ for a data
    set other than ML-1M); DEVICE=gpu rows train on the GPU into folders of their own (never
    a CPU row's checkpoint)."""
    printed = grid_commands(device, dataset)
    assert len(printed) == rows
    for line in printed:
        config, _ = script.parse_args(line.split()[1:])
        assert config.dataset == dataset and config.data == "DATA", line
        assert Path(config.out).name.startswith(config.model), line
        assert config.device == device, line
        assert Path(config.out).parent.name.endswith("-gpu") == (device == "gpu"), line
        assert (Path(config.out).parts[1] == dataset) == (dataset != "ml-1m"), line
    assert len({line.split("--out ")[1].split()[0] for line in printed}) == len(printed)


def grid_rows_of_the_script():
    """The row names scripts/decay_grid.sh ml-1m trains (their run folders' names)."""
    return [Path(line.split("--out ")[1].split()[0]).name for line in grid_commands("cpu")]


def fake_metrics(out, epochs_run, best, stop="epochs", max_len=200):
    history = [{"epoch": e, "loss": 1.0, "seconds": 1.0,
                **({"valid": {"full/NDCG@10": e / 1000}} if e % 2 == 0 else {})} for e in range(1, epochs_run + 1)]
    test = {"full/NDCG@10": 0.12345, "full/HR@10": 0.2, "sampled/HR@10": 0.7, "sampled/NDCG@10": 0.5}
    return {"config": {"out": out, "max_len": max_len}, "epochs_run": epochs_run, "best_epoch": best,
            "stop_reason": stop, "seconds_per_epoch": 12.34, "test": test, "history": history}


def test_grid_table_orders_rows_by_the_grid_and_marks_early_stops(tmp_path):
    """scripts/grid_table.py: ORDER names exactly the grid script's rows; a finished row gets
    one line (its L, epochs with the best one, an early stop said), validation every 10 epochs
    with '-' after a row stopped; GPU rows and directions are kept apart."""
    grid_table = load_script("scripts", "grid_table")
    assert sorted(grid_table.ORDER) == sorted(grid_rows_of_the_script())
    rows = {"decay-grid-hydrarec-uni-decay": fake_metrics("runs/causal/hydrarec-uni-decay", 30, 28),
            "decay-grid-sasrec": fake_metrics("runs/causal/sasrec", 20, 14, stop="early stopping"),
            "decay-grid-sasrec-seed7": fake_metrics("runs/causal/sasrec-seed7", 20, 20),
            "decay-grid-bert4rec": fake_metrics("runs/bidirectional/bert4rec", 10, 10),
            "decay-grid-gpu-sasrec-len800": fake_metrics("runs/causal-gpu/sasrec-len800", 10, 9, max_len=800)}
    for name, metrics in rows.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(metrics))
    lines = grid_table.main(["--results", str(tmp_path)])
    assert lines[2] == ("| sasrec | 200 | 20 (14), early stop | 12.3 | 0.1235 | 0.2000 | 0.7000 | 0.5000 | "
                        "[json](../results/decay-grid-sasrec.json) |")
    assert [line.split(" | ")[0] for line in lines[2:6]] == ["| sasrec", "| sasrec-seed7", "| hydrarec-uni-decay",
                                                            "| bert4rec"]
    assert "| sasrec | 0.0100 | 0.0200 | - |" in lines
    assert "| hydrarec-uni-decay | 0.0100 | 0.0200 | 0.0300 |" in lines
    assert "| bert4rec | 0.0100 |" in lines
    gpu = grid_table.main(["--results", str(tmp_path), "--device", "gpu", "--valid-every", "0"])
    assert len(gpu) == 3 and gpu[2].startswith("| sasrec-len800 | 800 | 10 (9) |")
    assert "decay-grid-gpu-sasrec-len800.json" in gpu[2]
    bidirectional = grid_table.main(["--results", str(tmp_path), "--direction", "bidirectional"])
    assert [line.split(" | ")[0] for line in bidirectional if line.startswith("| b")] == ["| bert4rec"] * 2
    with pytest.raises(SystemExit, match="no finished gpu ml-1m rows"):
        grid_table.main(["--results", str(tmp_path / "empty"), "--device", "gpu"])


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("dataset", ["ml-1m", "beauty", "ml-20m"])
def test_results_page_holds_every_finished_grid_row(device, dataset):
    """docs/results.md shows the finished rows of each data set as scripts/grid_table.py prints
    them from results/decay-grid-*.json: a row trained or retrained without updating the page fails here."""
    grid_table = load_script("scripts", "grid_table")
    page = (ROOT / "docs" / "results.md").read_text().splitlines()
    rows = grid_table.finished_rows(ROOT / "results", device, dataset=dataset)
    missing = [line for line in grid_table.test_table(rows, device, dataset)[2:] if line not in page]
    assert not missing, (f"docs/results.md lacks (paste `python scripts/grid_table.py --device {device} "
                         f"--dataset {dataset}`): {missing}")


def test_compare_runs_recomputes_each_run_and_bootstraps_the_difference(script, dataset, tmp_path, capsys):
    """scripts/compare_runs.py: every run's best weights give its metrics.json numbers again; the
    reported difference is that of the two test full NDCG@10 values; a run whose metrics.json
    does not belong to its weights, or a folder without a run, stops with one line."""
    compare = load_script("scripts", "compare_runs")
    folders = [tmp_path / "sasrec", tmp_path / "hydrarec-uni"]
    for folder in folders:
        script.main(small_run(dataset, folder, "--model", folder.name, "--epochs", "2"))
    report = compare.main([*map(str, folders), "--resamples", "300"])
    printed = capsys.readouterr().out
    assert printed.count("(metrics.json: the same)") == 2
    stored = [json.loads((folder / "metrics.json").read_text())["test"] for folder in folders]
    for folder, test in zip(folders, stored):  # each run's mean with its own bootstrap interval
        shown = re.search(rf"{folder.name}: .* NDCG@10 ([\d.]+) \[([\d.]+), ([\d.]+)\]", printed)
        assert float(shown[1]) == round(test["full/NDCG@10"], 4)
        assert float(shown[2]) <= float(shown[1]) <= float(shown[3]) and float(shown[2]) < float(shown[3])
    ndcg = report[("hydrarec-uni", "NDCG@10")]
    assert ndcg["difference"] == pytest.approx(stored[1]["full/NDCG@10"] - stored[0]["full/NDCG@10"])
    assert ndcg["low"] <= ndcg["difference"] <= ndcg["high"]
    assert set(report) == {("hydrarec-uni", "NDCG@10"), ("hydrarec-uni", "HR@10")}
    sampled = compare.main([*map(str, folders), "--resamples", "300", "--protocol", "sampled"])
    assert capsys.readouterr().out.count("(metrics.json: the same)") == 2  # the same 100 negatives again
    assert sampled[("hydrarec-uni", "HR@10")]["difference"] == pytest.approx(
        stored[1]["sampled/HR@10"] - stored[0]["sampled/HR@10"])
    assert compare.main([str(folders[0]), "--resamples", "50"]) == {}  # one run: its own intervals only
    alone = capsys.readouterr().out
    assert "sasrec:" in alone and " [" in alone and "difference" not in alone
    tampered = json.loads((folders[1] / "metrics.json").read_text())
    tampered["test"]["full/NDCG@10"] += 0.01
    (folders[1] / "metrics.json").write_text(json.dumps(tampered))
    with pytest.raises(SystemExit, match="differ from metrics.json"):
        compare.main([*map(str, folders), "--resamples", "10"])
    with pytest.raises(SystemExit, match="not a run folder"):
        compare.main([str(folders[0]), str(tmp_path)])


@pytest.mark.parametrize("dataset", ["ml-1m", "beauty", "ml-20m"])
def test_readme_holds_every_finished_headline_row_and_its_verdicts(dataset):
    """The README's headline table is scripts/grid_table.py --headline, row for row, and each
    verdict that notebook 05 prints (grid_table.verdicts) reads its two numbers from those rows."""
    grid_table = load_script("scripts", "grid_table")
    readme = (ROOT / "README.md").read_text()
    missing = [line for line in grid_table.headline_table(dataset)[2:] if line not in readme]
    assert not missing, f"paste `python scripts/grid_table.py --headline --dataset {dataset}` into README.md: {missing}"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in grid_table.headline_table(dataset)[2:]}
    names = {row: MODELS[row].model_class.__name__ for row in grid_table.HEADLINE_ROWS}
    for verdict in grid_table.verdicts(dataset):
        variant, base = verdict.split(": ")[1].split(" vs ")
        ours, theirs = verdict.split("full NDCG@10 ")[1].split(" (")[0].split(" vs ")
        assert f"| {ours} |" in rows[names[variant]] and f"| {theirs} |" in rows[names[base]], verdict


@pytest.mark.parametrize("model", ["hydrarec-uni", "hydrarec-bi"])
def test_head_norm_per_head_reaches_the_attention_and_changes_the_run(script, dataset, tmp_path, model):
    """--head-norm per_head: the layers normalise each head's features on their own, so the
    run differs from the global normalisation's from its first step."""
    losses = {}
    for norm in ("global", "per_head"):
        out = tmp_path / norm
        result = script.main(small_run(dataset, out, "--model", model, "--epochs", "1", "--heads", "4",
                                       "--head-norm", norm))
        losses[norm] = result["history"][0]["loss"]
        model_, _ = script.build(script.validate(script.Config(**result["config"])), 300)
        assert {layer.normalize for layer in model_.modules() if hasattr(layer, "normalize")} == {norm}
    assert losses["global"] != losses["per_head"]


def test_docstring_and_help_list_the_registered_models(script, capsys):
    """train.py's docstring names every registered model under its direction, and --help lists
    them (read from tinyhydra.rec.registry.MODELS when the parser is built)."""
    text = " ".join(script.__doc__.split())
    listed = text.split("Models: ", 1)[1].split(" (bidirectional", 1)[0]
    causal, bidirectional = listed.split(" (causal, SASRec-style) and ")
    assert causal.split(", ") == [name for name, entry in MODELS.items() if entry.causal]
    assert bidirectional.split(", ") == [name for name, entry in MODELS.items() if not entry.causal]
    with pytest.raises(SystemExit):
        script.parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(name in shown for name in MODELS)
