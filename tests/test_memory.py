"""tinyhydra.engine.memory: freed memory kept for reuse where glibc allows it, the opt-out, and the
same numbers either way."""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import tinyhydra as th
from tinyhydra.engine import memory
from tinyhydra.rec import data

ROOT = Path(__file__).resolve().parents[1]
GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# allocates and frees a 64 MiB block; prints the bytes glibc's heap then holds free for reuse
# (mallinfo2's fordblks: a block served by mmap would have gone back to the system instead)
FREE_IN_HEAP = """
import ctypes
import tinyhydra, numpy as np


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
mallinfo2.restype = MallInfo2
block = np.ones(1 << 24, np.float32)
del block
print(mallinfo2().fordblks)
"""


def run_python(code: str, keep: str, *args) -> str:
    env = {**os.environ, memory.ENV: keep, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *(["-c", code] if code else []), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's")
def test_the_setting_is_applied_at_import_on_glibc():
    assert th.freed_memory_setting() == {"kept": True, "why": "glibc malloc keeps freed blocks below 1024 MiB"}
    assert memory.keep_freed_memory()["kept"]  # applying again changes nothing


def test_the_opt_out_is_reported():
    printed = run_python("import tinyhydra; print(tinyhydra.freed_memory_setting())", "0")
    assert "'kept': False" in printed and "opted out with TINYHYDRA_KEEP_FREED_MEMORY=0" in printed


def test_elsewhere_it_is_a_no_op_not_an_error(monkeypatch):
    monkeypatch.setattr(memory, "_setting", {"kept": False, "why": "not applied yet"})
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.keep_freed_memory() == {"kept": False, "why": memory.freed_memory_setting()["why"]}
    assert memory.freed_memory_setting()["why"].startswith("not glibc Linux (darwin")


@pytest.mark.skipif(not GLIBC or platform.libc_ver()[1] < "2.33", reason="mallinfo2 is glibc >= 2.33's")
def test_a_freed_block_stays_in_the_heap_instead_of_going_back_to_the_system():
    kept, given_back = int(run_python(FREE_IN_HEAP, "1")), int(run_python(FREE_IN_HEAP, "0"))
    assert kept >= 64 << 20 > given_back, (kept, given_back)


def test_training_gives_the_same_numbers_either_way(tmp_path):
    path = tmp_path / "walks.txt"
    data.write_sasrec_txt(data.synthetic_interactions(80, 300, 8, 30, seed=3), path)
    results = []
    for keep in ("1", "0"):
        out = tmp_path / f"run-{keep}"
        run_python("", keep, "examples/train.py", "--data", str(path), "--out", str(out), "--epochs", "2",
                   "--eval-every", "1", "--max-len", "20", "--dim", "16", "--progress", "false")
        metrics = json.loads((out / "metrics.json").read_text())
        results.append((metrics["history"], metrics["test"]))
    for record in results[0][0]:
        record.pop("seconds")
    for record in results[1][0]:
        record.pop("seconds")
    assert results[0] == results[1]
