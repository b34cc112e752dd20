"""Every mistake a user can make with examples/train_ml1m.py, one row each.

A row is the command line, the exit status (2: a flag or a conflict between flags,
1: a data or checkpoint file) and words the one-line message must contain. Every
mistake is caught before anything is trained or written, and no row may print a
traceback. Placeholders: {data} a good dataset, {small} one of 50 items, {tmp} the
row's folder, {run} a finished sasrec run copied into it; ``files`` are written into
{tmp} first (bytes, or a callable that makes the file).
"""
import dataclasses
import gzip
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyhydra.engine import backend, checkpoint
from tinyhydra.rec import data

from .scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def truncated_gzip(path):
    path.write_bytes(gzip.compress(b"1 2\n" * 2000)[:-40])


def folder(path):
    path.mkdir()


def garbage(path):
    path.write_bytes(b"PK\x03\x04 this is not what it seems")


def truncated_checkpoint(path):
    path.write_bytes(path.read_bytes()[:2000])


def checkpoint_without_version(path):
    tree = checkpoint.load(path)
    del tree["version"]
    checkpoint.save(tree, path)


def foreign_npz(path):
    np.savez(path, weights=np.ones(3))  # path ends in .npz: numpy keeps the name


def weights_only(path):
    checkpoint.save({"version": 3, **checkpoint.load(path.parent / "best.npz")}, path)


def user_who_saw_everything(path):
    lines = [f"1 {i}" for i in range(1, 21)] + ["1 3", "1 4"]  # trains on all 20 items
    lines += [f"{u} {i}" for u in range(2, 6) for i in (1, 2, 3, 4)]
    path.write_text("\n".join(lines) + "\n")


FLAGS = "--data {data} --out {tmp}/out --progress false"
RUN = "--out {run} --progress false"
ROWS = [
    # ---------------------------------------------------------------- flags: exit 2
    (f"{FLAGS} --model gpt", 2, ["--model", "invalid choice", "sasrec"], None),
    (f"{FLAGS} --learning-rate 1", 2, ["unrecognized arguments", "--learning-rate"], None),
    (f"{FLAGS} --epoch 3", 2, ["unrecognized arguments", "--epoch"], None),
    (f"{FLAGS} --epochs many", 2, ["--epochs", "invalid int value"], None),
    (f"{FLAGS} --epochs", 2, ["--epochs", "expected one argument"], None),
    (f"{FLAGS} --epochs 0", 2, ["--epochs 0", ">= 1"], None),
    (f"{FLAGS} --epochs 2 --lr-schedule cosine --warmup-steps 100000", 2,
     ["--warmup-steps 100000", "steps in all", "fewer warm-up steps"], None),
    (f"{FLAGS} --patience 0", 2, ["--patience 0", ">= 1"], None),
    (f"{FLAGS} --max-steps -1", 2, ["--max-steps -1", ">= 0"], None),
    (f"{FLAGS} --eval-every 0", 2, ["--eval-every 0", ">= 1"], None),
    (f"{FLAGS} --eval-every -1", 2, ["--eval-every -1", ">= 1"], None),
    (f"{FLAGS} --lr nan", 2, ["--lr", "finite"], None),
    (f"{FLAGS} --lr inf", 2, ["--lr", "finite"], None),
    (f"{FLAGS} --lr -0.1", 2, ["--lr -0.1", ">= 0"], None),
    (f"{FLAGS} --weight-decay -1", 2, ["--weight-decay", ">= 0"], None),
    (f"{FLAGS} --batch-size 0", 2, ["--batch-size 0", ">= 1"], None),
    (f"{FLAGS} --max-len -1", 2, ["--max-len -1", ">= 0"], None),
    (f"{FLAGS} --model hydrarec-uni --head-norm per_head", 2, ["--head-norm per_head", "--heads below", "sign(x)"],
     None),
    (f"{FLAGS} --model sasrec --heads 5 --head-norm per_head", 2, ["--head-norm", "does not apply", "sasrec"], None),
    (f"{FLAGS} --dataset imagenet", 2, ["--dataset", "imagenet", "ml-1m", "beauty"], None),
    (f"{FLAGS} --data-format csv", 2, ["--data-format", "csv", "per-user"], None),
    ("--data-format sasrec", 2, ["--data-format sasrec", "--dataset ml-1m", "leave it out"], None),
    (f"{FLAGS} --model bert4rec --max-len 1", 2, ["--max-len 1", ">= 2", "bidirectional"], None),
    (f"{FLAGS} --heads 3", 2, ["--heads 3", "divide", "50"], None),
    (f"{FLAGS} --model bert4rec --dim 30 --heads 4", 2, ["--heads 4", "divide", "30"], None),
    (f"{FLAGS} --model hydrarec-uni-decay --heads 2", 2, ["--heads", "does not apply", "hydrarec-uni-decay"], None),
    (f"{FLAGS} --model hydrarec-uni --heads 3", 2, ["--heads 3", "divide", "50"], None),
    (f"{FLAGS} --model hydrarec-bi --dim 30 --heads 4", 2, ["--heads 4", "divide", "30"], None),
    (f"{FLAGS} --model sasrec --fixed-decay", 2, ["--fixed-decay", "does not apply", "sasrec"], None),
    (f"{FLAGS} --conv -4", 2, ["--conv -4", ">= 0"], None),
    (f"{FLAGS} --dim -5", 2, ["--dim -5", ">= 0"], None),
    (f"{FLAGS} --dropout 1", 2, ["--dropout 1.0", "[0, 1)"], None),
    (f"{FLAGS} --negatives 0", 2, ["--negatives 0", ">= 1"], None),
    (f"{FLAGS} --model bert4rec --mask-prob 1.5", 2, ["--mask-prob 1.5", "[0, 1]"], None),
    (f"{FLAGS} --model bert4rec --mask-last 1.5", 2, ["--mask-last 1.5", "[0, 1]"], None),
    (f"{FLAGS} --random-window 2", 2, ["--random-window 2.0", "[0, 1]"], None),
    (f"{FLAGS} --ema 1", 2, ["--ema 1.0", "[0, 1)"], None),
    (f"{FLAGS} --max-minutes -1", 2, ["--max-minutes -1.0", ">= 0"], None),
    (f"{FLAGS} --seed -1", 2, ["--seed -1", ">= 0"], None),
    (f"{FLAGS} --loss focal", 2, ["--loss", "invalid choice"], None),
    (f"{FLAGS} --model bert4rec --loss bce", 2, ["--loss bce", "SASRec's loss"], None),
    (f"{FLAGS} --eval some", 2, ["--eval", "invalid choice"], None),
    (f"{FLAGS} --progress maybe", 2, ["--progress", "true or false"], None),
    (f"{FLAGS} --device tpu", 2, ["--device", "invalid choice"], None),
    (f"{FLAGS} --device gpu", 2, ["--device gpu", "CuPy", "pip install"], None),
    (f"{FLAGS} --resume --overwrite", 2, ["--resume", "--overwrite", "one of them"], None),
    # ------------------------------------------------------- run folders: exit 2
    ("--data {data} --out {tmp}/a_file", 2, ["--out", "a_file", "is a file"], {"a_file": b"x"}),
    (RUN + " --data {data}", 2, ["already holds a run", "--resume", "--overwrite"], None),
    ("--data {data} --out {tmp}/empty --resume", 2, ["--resume", "no checkpoint", "leave out --resume"],
     {"empty": folder}),
    (RUN + " --resume --model hydrarec-uni", 2, ["hydrarec-uni-decay", "not --model hydrarec-uni", "--overwrite"],
     None),
    (RUN + " --resume --dim 8", 2, ["--dim 16", "not --dim 8", "leave out --dim"], None),
    # ------------------------------------------------ data that do not fit: exit 2
    ("--data {small} --out {tmp}/out", 2, ["--eval both", "only", "--eval full"], None),
    ("--data {small} --out {tmp}/out --eval sampled", 2, ["--eval sampled", "--eval full"], None),
    ("--data {tmp}/all.txt --out {tmp}/out --eval full --loss sampled", 2,
     ["--loss sampled", "every item", "--loss ce"], {"all.txt": user_who_saw_everything}),
    # ------------------------------------------------------------- data files: exit 1
    ("--data {tmp}/missing.txt", 1, ["missing.txt", "no such file", "SASRec"], None),
    ("--data {tmp}/empty.txt", 1, ["empty.txt", "line 1", "empty"], {"empty.txt": b""}),
    ("--data {tmp}/commas.txt", 1, ["commas.txt, line 1", "spaces or tabs"], {"commas.txt": b"1,2\n1,3\n"}),
    ("--data {tmp}/words.txt", 1, ["words.txt, line 2", "not an integer"], {"words.txt": b"1 2\nuser item\n"}),
    ("--data {tmp}/plain.txt.gz", 1, ["plain.txt.gz", "not gzip-compressed"], {"plain.txt.gz": b"1 2\n"}),
    ("--data {tmp}/cut.txt.gz", 1, ["cut.txt.gz", "truncated"], {"cut.txt.gz": truncated_gzip}),
    ("--data {tmp}/data.txt", 1, ["data.txt", "is a folder"], {"data.txt": folder}),
    ("--data {tmp}/huge.txt", 1, ["huge.txt, line 2", "int64"],
     {"huge.txt": b"1 2\n1 99999999999999999999\n"}),
    ("--data {tmp}/zero.txt", 1, ["zero.txt, line 1", "positive"], {"zero.txt": b"0 2\n"}),
    ("--data {tmp}/ratings.csv", 1, ["ratings.csv", "line 1", "separate fields by spaces or tabs"],
     {"ratings.csv": b"1,2\n"}),
    ("--data {tmp}/ratings.dat", 1, ["ratings.dat, line 2", "expected 4 fields"],
     {"ratings.dat": b"1::2::5::100\n1::3::4\n"}),
    ("--data {tmp}/ml-1m.zip", 1, ["ml-1m.zip", "not a readable zip"], {"ml-1m.zip": garbage}),
    ("--data {tmp}/short.txt", 1, ["short.txt", "3 or more interactions"], {"short.txt": b"1 1\n1 2\n2 1\n"}),
    # ------------------------------------------------------- checkpoints: exit 1
    (RUN + " --resume", 1, ["checkpoint.npz", "cannot be read", "--overwrite", "older copy"],
     {"run/checkpoint.npz": garbage}),
    (RUN + " --resume", 1, ["checkpoint.npz", "cannot be read", "--overwrite"],
     {"run/checkpoint.npz": truncated_checkpoint}),
    (RUN + " --resume", 1, ["has no version number", "reads version 2, 3", "--overwrite"],
     {"run/checkpoint.npz": checkpoint_without_version}),
    (RUN + " --resume", 1, ["not a checkpoint written by tinyhydra", "--overwrite"],
     {"run/checkpoint.npz": foreign_npz}),
    (RUN + " --resume", 1, ["not a training checkpoint", "--overwrite"], {"run/checkpoint.npz": weights_only}),
    (RUN + " --resume --data {small} --eval full", 1,
     ["does not fit this DecayedHydraRecUni", "the data the run was trained on"], None),
]


@pytest.fixture(scope="module")
def script():
    return load_script("examples", "train")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, script):
    folder = tmp_path_factory.mktemp("cli")
    paths = {"data": folder / "synthetic.txt.gz", "small": folder / "small.txt"}
    data.write_sasrec_txt(data.synthetic_interactions(60, 300, 8, 20, seed=0), paths["data"])
    data.write_sasrec_txt(data.synthetic_interactions(30, 50, 5, 10, seed=0), paths["small"])
    paths["run"] = folder / "run"
    script.main(["--data", str(paths["data"]), "--out", str(paths["run"]), "--epochs", "1", "--eval-every", "1",
                 "--max-len", "8", "--dim", "16", "--eval", "full", "--progress", "false"])
    return paths


def command_of(row_argv: str, tmp_path: Path, datasets: dict, files: dict | None) -> list[str]:
    if "{run}" in row_argv:
        shutil.copytree(datasets["run"], tmp_path / "run")
    for name, content in (files or {}).items():
        path = tmp_path / name
        content(path) if callable(content) else path.write_bytes(content)
    text = row_argv.format(data=datasets["data"], small=datasets["small"], tmp=tmp_path,
                           run=tmp_path / "run")
    return shlex.split(text)


def row_id(row) -> str:
    """'--epochs 0', 'run --resume [run/checkpoint.npz garbage]': the mistake, short."""
    argv, _, _, files = row
    made = [f"{name} {content.__name__ if callable(content) else 'bytes'}" for name, content in (files or {}).items()]
    return " ".join([argv.replace(FLAGS, "").replace(RUN, "run").strip(), *(f"[{m}]" for m in made)])


@pytest.mark.parametrize("argv, status, words, files", ROWS, ids=[row_id(row) for row in ROWS])
def test_every_mistake_is_one_line_and_an_exit_status(script, datasets, tmp_path, capsys, argv, status,
                                                      words, files):
    if "--device gpu" in argv and backend.gpu_available():
        pytest.skip("CuPy works here: --device gpu is not a mistake")
    command = command_of(argv, tmp_path, datasets, files)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as stop:
        script.main(command)
    captured = capsys.readouterr()
    assert stop.value.code == status, captured.err
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert "allow_pickle" not in captured.err
    for word in words:
        assert word in captured.err, f"{word!r} not in {captured.err!r}"
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before  # caught before anything was written


@pytest.mark.parametrize("dataset", list(data.DATASETS))
def test_download_failure_is_one_line(script, tmp_path, capsys, monkeypatch, dataset):
    closed = dataclasses.replace(data.DATASETS[dataset], url="http://127.0.0.1:9/file")  # closed port
    monkeypatch.setitem(data.DATASETS, dataset, closed)
    monkeypatch.setenv("TINYHYDRA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as stop:
        script.main(["--dataset", dataset, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and err.count("\n") == 1
    assert "could not download" in err and "--data" in err
    assert not (tmp_path / "out").exists()


def test_the_process_prints_one_line_and_exits_with_the_status(datasets, tmp_path):
    """The same through a real process: the status and stderr the shell sees."""
    for argv, status in ((["--epochs", "0"], 2), (["--data", str(tmp_path / "none.txt")], 1)):
        done = subprocess.run([sys.executable, str(ROOT / "examples" / "train_ml1m.py"), *argv,
                               "--out", str(tmp_path / "out")], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == status, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_help_lists_every_flag_with_its_default_and_choices(script, capsys):
    with pytest.raises(SystemExit) as stop:
        script.main(["--help"])
    text = capsys.readouterr().out
    assert stop.value.code == 0
    for name in ("--batch-size", "--random-window", "--overwrite", "--resume", "--max-minutes"):
        assert name in text
    assert "(default: 128)" in text and "{sasrec,hydrarec-uni" in text and "{both,full,sampled,none}" in text


def test_a_genuine_bug_keeps_its_traceback(script, datasets, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug, not a user mistake")

    monkeypatch.setattr(script, "build", broken)
    with pytest.raises(ZeroDivisionError):
        script.main(["--data", str(datasets["data"]), "--out", str(tmp_path / "out"),
                     "--progress", "false"])
