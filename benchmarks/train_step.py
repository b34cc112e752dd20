"""Seconds per training step of SASRec (softmax) and HydraRecUni (Hydra) at ML-1M shapes.

What is measured:

* **seconds per step**: one full training step, ``optimizer.zero_grad()``,
  ``model.loss(batch)`` (forward, full-softmax cross-entropy over all items by
  default), ``loss.backward()`` and ``Adam.step()``, float32, dropout on. Shapes
  of ML-1M in the HydraRec/SASRec setting: batch 128, max_len 200, dim 50, 2 blocks,
  1 head, 3,416 items in the (tied) output layer. Batches come from ``--data`` (a
  SASRec-format file such as ../shared/data/ml-1m/ml-1m.txt.gz, read with
  ``read_sasrec_txt`` -> ``leave_one_out`` -> ``causal_batches``) or, without it,
  are synthetic with every position real (the worst case: M = B * L target rows).
  Batches are built before the clock starts. ``--warmup`` untimed steps per model,
  then ``--steps`` timed steps, reported as the median; the models (and their
  PyTorch twins) take turns step by step, so drift in the load of the machine (other
  processes) hits all of them alike. GPU: the device is synchronised before each
  clock reading.
* **per-op breakdown**: ``th.profile()`` over ``--profile-steps`` more steps: wall
  time per Function type, forward and backward (``synchronize=True`` on the GPU),
  per step. Two extra rows: ``Adam.step`` (timed around ``optimizer.step()``, which
  is not a Function) and ``(outside Functions)``: the rest of the step, i.e. graph
  bookkeeping, gradient accumulation and unbroadcasting in ``Tensor.backward``,
  ``zero_grad`` and Python overhead.
* **achieved GFLOP/s**: matmul FLOPs counted analytically from the shapes (an
  (n, k) @ (k, m) product is 2 n k m flops forward, twice that backward; see
  :func:`count_flops`) divided by the profiled time of the ``MatMul`` Function
  (projections, feed-forward, output layer) and, separately, of the fused
  ``SoftmaxAttention`` Function (its QK^T and PV products; Hydra attention has no
  matmul). Compared with this machine's own float32 GEMM speed, measured in the same
  run (best of 5 products of 2048 x 2048 matrices on the same device).
* **PyTorch** (optional, only if ``import torch`` works): the same model written in
  PyTorch eager mode (``torch_sasrec.torch_model`` in benchmarks/torch_sasrec.py: same layers, same masks, same dropout
  sites, same full-softmax CE over the gathered target rows, ``torch.optim.Adam``),
  on the same batches, with ``torch.set_num_threads(os.cpu_count())`` (or
  ``--threads``), timed the same way. Printed as the ratio tinyhydra / PyTorch.
* **memory at long sequences** (``--memory-len``, default 2048, 0 to skip): the peak
  extra memory of one training step (after one warm-up step, so Adam's moments are
  already allocated and not counted) of both models at L = ``--memory-len`` with a
  smaller batch ``--memory-batch`` (default 8: softmax's per-layer (B, L, L)
  probabilities and their gradient take 8 * 2048^2 * 4 B = 128 MiB each), synthetic
  full-length batches, measured with tracemalloc (CPU) or a CuPy memory hook (GPU):
  see ``common.peak_memory``. The time of one (untraced) step at that length is
  reported beside it.

``--threads N`` fixes the BLAS threads (exported before NumPy loads) and PyTorch's
threads alike; on a machine shared with other busy processes ``--threads 1`` gives
far steadier numbers than multi-threaded BLAS, which stalls waiting for its threads.

    python benchmarks/train_step.py                          # CPU, synthetic, PyTorch if installed
    python benchmarks/train_step.py --data ../shared/data/ml-1m/ml-1m.txt.gz
    python benchmarks/train_step.py --quick                  # seconds-long smoke run
    python benchmarks/train_step.py --device gpu --steps 20

Writes ``train_step.json`` into ``--out`` (default results/train_step_<device>/).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import cycle, islice
from pathlib import Path

import common  # benchmarks/common.py: this script's folder is on sys.path
import numpy as np
import overhead  # benchmarks/overhead.py
import torch_sasrec  # benchmarks/torch_sasrec.py: imports torch only when asked

import tinyhydra as th
from tinyhydra import models
from tinyhydra.engine import backend
from tinyhydra.rec import data


@dataclass
class Config:
    models: str = field(default="softmax,hydra", metadata={
        "help": "attention kinds of the SASRec models to time, comma-separated "
                "(softmax = SASRec, hydra = HydraRecUni, decayed-hydra = DecayedHydraRecUni)"})
    batch: int = field(default=128, metadata={"help": "batch size B"})
    seq_len: int = field(default=200, metadata={"help": "max_len L of the inputs"})
    dim: int = field(default=50, metadata={"help": "hidden size D"})
    layers: int = field(default=2, metadata={"help": "transformer blocks"})
    heads: int = field(default=0, metadata={"help": "heads H (dividing --dim) of softmax and Hydra "
                                                    "attention; 0 = each model's own (SASRec 1, Hydra D)"})
    dropout: float = 0.2
    num_items: int = field(default=3416, metadata={"help": "items in the output layer "
                                                           "(synthetic data; --data sets its own)"})
    loss: str = field(default="ce", metadata={"help": "ce (full softmax), sampled or bce"})
    num_negatives: int = field(default=100, metadata={"help": "negatives of the sampled loss"})
    lr: float = 1e-3
    data: str | None = field(default=None, metadata={"help": "SASRec-format interactions file "
                                                             "(default: synthetic batches)"})
    steps: int = field(default=5, metadata={"help": "timed steps per model (median)"})
    warmup: int = field(default=2, metadata={"help": "untimed steps per model"})
    profile_steps: int = field(default=2, metadata={"help": "steps under th.profile()"})
    top: int = field(default=15, metadata={"help": "rows of the per-op table"})
    torch: bool | None = field(default=None, metadata={
        "help": "compare with PyTorch eager (default: yes if installed, no with --quick)"})
    threads: int = field(default=0, metadata={
        "help": "BLAS threads (exported before NumPy loads) and torch threads; "
                "0 = BLAS default and torch.set_num_threads(os.cpu_count())"})
    memory_len: int = field(default=2048, metadata={"help": "L of the peak-memory step (0: skip)"})
    memory_batch: int = field(default=8, metadata={"help": "batch of the peak-memory step"})
    matmul_n: int = field(default=2048, metadata={"help": "size of the peak-GEMM probe"})
    device: str = field(default="cpu", metadata={"help": "cpu or gpu (CuPy)"})
    seed: int = 0
    out: str = field(default="", metadata={"help": common.OUT_HELP})
    quick: bool = field(default=False, metadata={
        "help": "smoke run: tiny shapes, 2 steps, no PyTorch unless --torch"})
    tiny: bool = field(default=False, metadata={
        "help": "B=8, L=16, D=16 (where the engine's Python, not arithmetic, is what a step "
                "costs); use with --threads 1"})
    engine_ops: int = field(default=200, metadata={
        "help": "operations in the engine-overhead chain, about a training step's (0: skip)"})
    clock: str = field(default="wall", metadata={
        "help": "wall time, or this process's CPU time (CPU only, with --threads 1: on a machine "
                "shared with busy processes it leaves out the time others hold the cores)"})
    compare_with: str | None = field(default=None, metadata={
        "help": "root of another checkout whose tinyhydra is timed too, interleaved step by "
                "step with this one (contestants compared/<kind>), for before/after tables"})
    count_kernels: str = field(default="", metadata={
        "help": "GPU only: count the kernels of ONE step of each contestant named here "
                "(comma-separated, e.g. tinyhydra/hydra,torch/hydra, or all), read by "
                "PyTorch's profiler (CUPTI), write kernels.json and exit"})

    def __post_init__(self):
        if self.tiny:
            self.batch, self.seq_len, self.dim = 8, 16, 16
        if self.quick:
            self.batch, self.seq_len, self.dim, self.num_items = 4, 16, 16, 50
            self.steps, self.warmup, self.profile_steps = 2, 1, 1
            self.memory_len = min(self.memory_len, 32)  # 0 still skips it
            self.memory_batch, self.matmul_n = 2, 256
            self.num_negatives = min(self.num_negatives, 10)
        if self.torch is None:
            self.torch = not self.quick
        if self.profile_steps < 1:
            raise ValueError(f"--profile-steps must be >= 1 (the per-op table needs a step), got {self.profile_steps}")
        if self.loss not in models.LOSSES:
            raise ValueError(f"--loss must be one of {models.LOSSES}, got {self.loss!r}")
        if self.clock not in ("wall", "cpu"):
            raise ValueError(f"--clock must be wall or cpu, got {self.clock!r}")
        if self.clock == "cpu" and self.device != "cpu":
            raise ValueError("--clock cpu times CPU work; a GPU step needs --clock wall")
        if self.count_kernels and self.device != "gpu":
            raise ValueError("--count-kernels marks one GPU step for a CUDA profiler: add --device gpu")
        if self.heads and "decayed-hydra" in self.kinds:
            raise ValueError("--heads: decayed Hydra has one head per feature; leave decayed-hydra out of --models")
        if self.heads not in (0, self.dim) and "hydra" in self.kinds and self.torch:
            raise ValueError("--heads: the PyTorch twin of Hydra has one head per feature; add --torch false")

    @property
    def kinds(self) -> list[str]:
        return [kind.strip() for kind in self.models.split(",") if kind.strip()]


# ---------------------------------------------------------------------- batches
def negatives_per_position(cfg: Config) -> int:
    return cfg.num_negatives if cfg.loss == "sampled" else 1


def synthetic_batches(cfg: Config, count: int, batch: int, length: int, rng) -> list:
    """``count`` batches with every position real: random ids, targets and negatives."""
    n = negatives_per_position(cfg)
    return [data.CausalBatch(rng.integers(1, cfg.num_items + 1, (batch, length)),
                             rng.integers(1, cfg.num_items + 1, (batch, length)),
                             rng.integers(1, cfg.num_items + 1, (batch, length, n)))
            for _ in range(count)]


def load_batches(cfg: Config, count: int, rng) -> tuple[list, dict]:
    """The batches to time with, and a description of where they came from."""
    if cfg.data:
        split = data.leave_one_out(data.read_sasrec_txt(cfg.data))
        cfg.num_items = split.num_items
        epoch = data.causal_batches(split, cfg.batch, cfg.seq_len, rng,
                                    num_negatives=negatives_per_position(cfg))
        batches = list(islice(cycle(epoch), count))
        source = f"{cfg.data} ({split.num_users} users, {split.num_items} items)"
    else:
        batches = synthetic_batches(cfg, count, cfg.batch, cfg.seq_len, rng)
        source = "synthetic, every position real"
    real = [int(np.count_nonzero(b.targets)) for b in batches]
    return batches, {"source": source, "num_items": cfg.num_items,
                     "target_positions_per_batch": float(np.mean(real)),
                     "positions_per_batch": cfg.batch * cfg.seq_len}


# ---------------------------------------------------------------------- tinyhydra
# attention kind -> the causal model with it (Hydra kinds have one head per feature)
MODEL_OF_KIND = {"softmax": "sasrec", "hydra": "hydrarec-uni", "decayed-hydra": "hydrarec-uni-decay"}


def tinyhydra_model(cfg: Config, kind: str, max_len: int, lib=th):
    """The causal model of ``kind`` and its Adam, built by the tinyhydra package ``lib``
    (this one, or a ``--compare-with`` one)."""
    lib.manual_seed(cfg.seed)
    lib_models, lib_optim = (importlib.import_module(f"{lib.__name__}.{name}") for name in ("models", "optim"))
    heads = {"num_heads": cfg.heads} if cfg.heads else {}  # 0: the model's own
    model = lib_models.build_model(MODEL_OF_KIND[kind], cfg.num_items, max_len=max_len, dim=cfg.dim,
                                   num_layers=cfg.layers, dropout=cfg.dropout, **heads)
    model.to(cfg.device)
    return model, lib_optim.Adam(model.parameters(), lr=cfg.lr)


def load_compared_tinyhydra(path: str):
    """The tinyhydra package in ``path``/tinyhydra (e.g. a checkout of an older commit),
    imported as ``tinyhydra_compared`` so that both versions run side by side, step by
    step, in one process: on a busy machine that is the only fair before/after."""
    init = Path(path).resolve() / "tinyhydra" / "__init__.py"
    if not init.exists():
        raise FileNotFoundError(f"--compare-with {path}: no tinyhydra/__init__.py there; pass "
                                "the root of a checkout (e.g. made by `git worktree add`)")
    spec = importlib.util.spec_from_file_location("tinyhydra_compared", init,
                                                  submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def tinyhydra_step(cfg: Config, model, optimizer, xp):
    """step(batch) -> seconds spent in ``optimizer.step()`` (the step itself is timed outside)."""
    def step(batch):
        optimizer.zero_grad()
        loss = model.loss(batch, loss=cfg.loss, num_negatives=cfg.num_negatives
                          if cfg.loss == "sampled" else None)
        loss.backward()
        backend.synchronize(xp)
        start = time.perf_counter()
        optimizer.step()
        backend.synchronize(xp)
        return time.perf_counter() - start
    return step


# ---------------------------------------------------------------------- FLOPs
def count_flops(cfg: Config, kind: str, target_rows: float, length: int | None = None) -> dict:
    """Matmul FLOPs of one training step, from the shapes (forward + backward = 3x forward).

    With N = B L positions (every position goes through the blocks, padding too),
    M target rows, D = dim, H_ff = D (SASRec's feed-forward), V = num_items:

    * ``MatMul`` Function, per block: Q, K, V, output projections 4 * 2 N D D and the
      feed-forward 2 * 2 N D H_ff; output layer 2 M D V ("ce") or 2 M (1 + negatives) D
      (sampled / bce: one batched (M, C, D) @ (M, D, 1) product);
    * ``SoftmaxAttention``, per block: Q K^T and P V, 2 * 2 B L^2 D forward over the
      FULL (L, L) square (the kernel does not skip the causally masked half);
      the backward's four products (dV, dP, dQ, dK) are twice that;
    * Hydra and linear attention: no matmul counted (elementwise products and a
      cumsum for Hydra; linear attention's chunked products are left out).

    Every MatMul here has both inputs requiring gradients, so its backward is two
    products of the forward's size.
    """
    n_pos = cfg.batch * (length or cfg.seq_len)
    d, hidden, layers = cfg.dim, cfg.dim, cfg.layers
    blocks = layers * (4 * 2 * n_pos * d * d + 2 * 2 * n_pos * d * hidden)
    if cfg.loss == "ce":
        output = 2.0 * target_rows * d * cfg.num_items
    else:
        output = 2.0 * target_rows * (1 + negatives_per_position(cfg)) * d
    matmul_forward = blocks + output
    attention_forward = (layers * 2 * 2 * n_pos * (length or cfg.seq_len) * d
                         if kind == "softmax" else 0.0)
    return {"matmul_forward": matmul_forward, "matmul_step": 3.0 * matmul_forward,
            "attention_forward": attention_forward, "attention_step": 3.0 * attention_forward}


# ---------------------------------------------------------------------- measurements
def time_interleaved(contestants: dict, batches: list, steps: int, warmup: int,
                     clock=time.perf_counter) -> dict:
    """{name: [seconds per step]}: every contestant runs step i before any runs step i + 1,
    in an order that rotates from step to step.

    ``contestants`` maps a name to (step(batch), sync()); ``warmup`` untimed steps each.
    ``clock``: wall time, or ``time.process_time`` (this process's CPU seconds, see --clock).
    """
    for name, (step, sync) in contestants.items():
        start = time.perf_counter()
        for i in range(warmup):
            step(batches[i % len(batches)])
        sync()
        print(f"  warm-up {name}: {warmup} steps, {time.perf_counter() - start:.2f} s", flush=True)
    seconds = {name: [] for name in contestants}
    names = list(contestants)
    for i in range(steps):
        batch = batches[(warmup + i) % len(batches)]
        # the order rotates every step, so no contestant always runs right after the same
        # one (whose freed memory, or caches, it would otherwise always inherit)
        for name in names[i % len(names):] + names[:i % len(names)]:
            step, sync = contestants[name]
            sync()
            start = clock()
            step(batch)
            sync()
            seconds[name].append(clock() - start)
        print(f"  step {i + 1}/{steps}: " + ", ".join(
            f"{name} {runs[-1]:.3f} s" for name, runs in seconds.items()), flush=True)
    return seconds


def profile_model(cfg: Config, step, batches: list, xp) -> dict:
    """Per-step seconds per Function (forward, backward), Adam and the rest, over profile_steps."""
    total = adam = 0.0
    with th.profile(synchronize=xp is not np) as prof:
        for i in range(cfg.profile_steps):
            backend.synchronize(xp)
            start = time.perf_counter()
            adam += step(batches[i % len(batches)])
            backend.synchronize(xp)
            total += time.perf_counter() - start
    n = cfg.profile_steps
    functions = {name: {"forward": row["forward"] / n, "backward": row["backward"] / n,
                        "calls": row["calls"] / n}
                 for name, row in prof.by_function().items()}
    in_functions = prof.total_seconds() / n
    return {"step_seconds": total / n, "functions": functions, "function_seconds": in_functions,
            "adam_seconds": adam / n, "outside_seconds": total / n - in_functions - adam / n}


def print_profile(name: str, profile: dict, top: int) -> None:
    step = profile["step_seconds"]
    print(f"\nper-op profile, {name}: {1e3 * step:.1f} ms per profiled step")
    print(f"{'function':<26}{'calls':>7}{'forward ms':>12}{'backward ms':>13}{'share':>8}")
    rows = list(profile["functions"].items())[:top]
    for fn, row in rows:
        share = (row["forward"] + row["backward"]) / step
        print(f"{fn:<26}{row['calls']:>7.0f}{1e3 * row['forward']:>12.2f}"
              f"{1e3 * row['backward']:>13.2f}{share:>8.1%}")
    for label, key in (("Adam.step", "adam_seconds"), ("(outside Functions)", "outside_seconds")):
        print(f"{label:<26}{'':>7}{1e3 * profile[key]:>25.2f}{profile[key] / step:>8.1%}")


def achieved_flops(cfg: Config, kind: str, profile: dict, target_rows: float, peak: float) -> dict:
    counts = count_flops(cfg, kind, target_rows)
    fns = profile["functions"]

    def seconds(name):
        row = fns.get(name)
        return row["forward"] + row["backward"] if row else None

    matmul_s, attention_s = seconds("MatMul"), seconds("SoftmaxAttention")
    result = dict(counts)
    result["matmul_seconds"] = matmul_s
    result["matmul_gflops"] = counts["matmul_step"] / matmul_s / 1e9 if matmul_s else None
    result["attention_seconds"] = attention_s
    result["attention_gflops"] = (counts["attention_step"] / attention_s / 1e9
                                  if attention_s and counts["attention_step"] else None)
    for key in ("matmul", "attention"):
        value = result[f"{key}_gflops"]
        result[f"{key}_fraction_of_peak"] = value / peak if value and peak else None
    return result


def measure_memory(cfg: Config, xp, rng) -> dict:
    """Peak extra memory (and time) of one training step at L = memory_len per model."""
    length, batch = cfg.memory_len, cfg.memory_batch
    batches = synthetic_batches(cfg, 3, batch, length, rng)
    result = {"length": length, "batch": batch,
              "method": "tracemalloc" if xp is np else "cupy MemoryHook"}
    for kind in cfg.kinds:
        model, optimizer = tinyhydra_model(cfg, kind, max_len=length)
        step = tinyhydra_step(cfg, model, optimizer, xp)
        try:
            step(batches[0])  # warm-up: Adam's moments exist before the measured step
            backend.synchronize(xp)
            start = time.perf_counter()
            step(batches[1])
            backend.synchronize(xp)
            seconds = time.perf_counter() - start
            peak = common.peak_memory(lambda step=step: step(batches[2]), xp)["bytes"]
            result[kind] = {"peak_bytes": peak, "step_seconds": seconds}
        except Exception as exc:  # out of memory: report it and go on
            if not common.is_out_of_memory(exc):
                raise
            result[kind] = {"peak_bytes": None, "step_seconds": None, "error": repr(exc)}
        del model, optimizer, step
        backend.free_cached_memory(xp)
    return result


def count_kernels(names: list[str], contestants: dict, batches: list, warmup: int) -> dict:
    """Kernels launched by ONE training step of each contestant in ``names``.

    Each contestant is warmed up first (CuPy's kernel compilation, the memory pool
    growing and Adam's first step are one-time work), then one step runs inside
    ``torch.profiler.profile(activities=[CUDA])``. PyTorch's profiler records through
    CUPTI, which sees every kernel this process launches, CuPy's as well as PyTorch's;
    the kernels are the trace's events of category ``kernel`` (copies and memsets are
    counted apart). Needs PyTorch with CUDA (it is not a dependency of tinyhydra).
    Returns {name: {"kernels", "distinct", "copies", "top"}}.
    """
    try:
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        raise RuntimeError("--count-kernels reads CUPTI through PyTorch's profiler: "
                           "pip install torch (with CUDA), or drop --count-kernels") from None
    unknown = [name for name in names if name not in contestants]
    if unknown:
        raise ValueError(f"--count-kernels {','.join(unknown)}: choose from {sorted(contestants)}")
    counts = {}
    for name in names:
        step, sync = contestants[name]
        for i in range(warmup):
            step(batches[i % len(batches)])
        sync()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step(batches[warmup % len(batches)])
            sync()
        with tempfile.TemporaryDirectory() as folder:
            trace = Path(folder) / "trace.json"
            prof.export_chrome_trace(str(trace))
            events = json.loads(trace.read_text()).get("traceEvents", [])
        kernels = Counter(e["name"] for e in events if e.get("cat") == "kernel")
        copies = sum(e.get("cat") in ("gpu_memcpy", "gpu_memset") for e in events)
        counts[name] = {"kernels": sum(kernels.values()), "distinct": len(kernels),
                        "copies": copies, "top": kernels.most_common(8)}
    print(f"\nkernels launched by one training step (after {warmup} warm-up; CUPTI via torch.profiler)")
    print(f"{'contestant':<22}{'kernels':>8}{'distinct':>10}{'copies':>8}")
    for name, row in counts.items():
        print(f"{name:<22}{row['kernels']:>8}{row['distinct']:>10}{row['copies']:>8}")
    return counts


# ---------------------------------------------------------------------- main
def main(argv=None) -> dict:
    cfg, xp, rng, out = common.setup(Config, argv, __doc__, "train_step")
    started = time.perf_counter()
    batches, data_info = load_batches(cfg, cfg.warmup + max(cfg.steps, cfg.profile_steps), rng)
    print(f"train_step: SASRec {cfg.kinds}, B={cfg.batch}, L={cfg.seq_len}, D={cfg.dim}, "
          f"{cfg.layers} blocks, {cfg.num_items} items, loss={cfg.loss}, {cfg.device}; "
          f"data: {data_info['source']}, {data_info['target_positions_per_batch']:.0f} target "
          f"rows per batch")

    peak = common.matmul_peak_gflops(cfg.device, n=cfg.matmul_n)
    print(f"machine float32 GEMM peak ({cfg.matmul_n}^3, best of 5): {peak['gflops']:.1f} GFLOP/s")

    contestants, tiny = {}, {}
    for kind in cfg.kinds:
        model, optimizer = tinyhydra_model(cfg, kind, cfg.seq_len)
        tiny[kind] = tinyhydra_step(cfg, model, optimizer, xp)
        contestants[f"tinyhydra/{kind}"] = (tiny[kind], lambda: backend.synchronize(xp))
    if cfg.compare_with:
        compared_lib = load_compared_tinyhydra(cfg.compare_with)
        for kind in cfg.kinds:
            model, optimizer = tinyhydra_model(cfg, kind, cfg.seq_len, lib=compared_lib)
            contestants[f"compared/{kind}"] = (tinyhydra_step(cfg, model, optimizer, xp),
                                               lambda: backend.synchronize(xp))
    torch_info = torch_sasrec.torch_setup(cfg)
    if torch_info["run"]:
        for kind in torch_info["kinds"]:
            model, optimizer, torch_device = torch_sasrec.torch_model(cfg, kind, cfg.device)
            contestants[f"torch/{kind}"] = (torch_sasrec.torch_step(model, optimizer, torch_device),
                                            lambda d=torch_device: torch_sasrec.torch_sync(d))
    if cfg.count_kernels:
        names = sorted(contestants) if cfg.count_kernels == "all" else cfg.count_kernels.split(",")
        counts = count_kernels(names, contestants, batches, cfg.warmup)
        common.write_json({"benchmark": "train_step --count-kernels", "config": asdict(cfg),
                           "environment": common.environment(cfg.device), "kernels": counts},
                          out / "kernels.json")
        return counts
    clock = time.process_time if cfg.clock == "cpu" else time.perf_counter
    seconds = time_interleaved(contestants, batches, cfg.steps, cfg.warmup, clock)

    results_models, profiles, flops = {}, {}, {}
    profiled = [batches[i % len(batches)] for i in range(cfg.profile_steps)]
    profiled_rows = float(np.mean([np.count_nonzero(b.targets) for b in profiled]))
    for kind in cfg.kinds:
        runs = seconds[f"tinyhydra/{kind}"]
        results_models[kind] = {"seconds_per_step": common.median(runs), "runs": runs}
        profiles[kind] = profile_model(cfg, tiny[kind], batches, xp)
        flops[kind] = achieved_flops(cfg, kind, profiles[kind], profiled_rows, peak["gflops"])
    if torch_info["run"]:
        torch_info["models"] = {}
        for kind in torch_info["kinds"]:
            runs = seconds[f"torch/{kind}"]
            median = common.median(runs)
            torch_info["models"][kind] = {
                "seconds_per_step": median, "runs": runs,
                "tinyhydra_over_torch": results_models[kind]["seconds_per_step"] / median}
    compared = None
    if cfg.compare_with:
        compared = {"path": str(Path(cfg.compare_with).resolve()), "models": {}}
        for kind in cfg.kinds:
            runs = seconds[f"compared/{kind}"]
            compared["models"][kind] = {
                "seconds_per_step": common.median(runs), "runs": runs,
                "this_over_compared": results_models[kind]["seconds_per_step"] / common.median(runs),
                # the fastest step of each: the one least disturbed by other processes
                "best_this_over_compared": min(results_models[kind]["runs"]) / min(runs)}
    memory = measure_memory(cfg, xp, rng) if cfg.memory_len > 0 else None
    engine = overhead.engine_overhead(cfg.engine_ops) if cfg.engine_ops > 0 else None
    calls = overhead.attention_call_overhead() if cfg.engine_ops > 0 else None
    model, _ = tinyhydra_model(cfg, cfg.kinds[0], cfg.seq_len)
    update = overhead.optimizer_update_seconds(model, xp)

    # ------------------------------------------------------------ report
    print(f"\nmilliseconds per training step (median of {cfg.steps}, after {cfg.warmup} warm-up, "
          f"{cfg.clock} clock)")
    print(f"{'model':<14}{'tinyhydra ms':>13}{'torch ms':>10}{'ratio':>8}"
          f"{'MatMul GFLOP/s':>16}{'attn GFLOP/s':>14}")
    for kind in cfg.kinds:
        t = torch_info.get("models", {}).get(kind, {})
        torch_ms = 1e3 * t["seconds_per_step"] if t else None
        print(f"{kind:<14}{1e3 * results_models[kind]['seconds_per_step']:>13.2f}"
              f"{common.fmt(torch_ms, '.2f'):>10}"
              f"{common.fmt(t.get('tinyhydra_over_torch'), '.2f'):>8}"
              f"{common.fmt(flops[kind]['matmul_gflops'], '.1f'):>16}"
              f"{common.fmt(flops[kind]['attention_gflops'], '.1f'):>14}")
    if not torch_info["run"]:
        print(f"PyTorch comparison skipped: {torch_info['reason']}")
    else:
        print(f"(ratio = tinyhydra / PyTorch {torch_info['version']} eager, "
              f"{torch_info['threads']} threads)")
    if compared:
        print(f"this tinyhydra against the one in {compared['path']} (same steps, interleaved):")
        for kind, row in compared["models"].items():
            print(f"  {kind:<14}{1e3 * row['seconds_per_step']:>10.2f} ms there, ratio here/there "
                  f"{row['this_over_compared']:.3f} (medians), {row['best_this_over_compared']:.3f} "
                  "(fastest steps)")
    print(f"GEMM peak of this machine: {peak['gflops']:.1f} GFLOP/s")
    for kind in cfg.kinds:
        print_profile(kind, profiles[kind], cfg.top)
    if update:
        print(f"\nAdam update of {update['parameters']} parameters ({update['elements']:,} numbers), "
              f"best of 30: flat {1e3 * update['flat']:.3f} ms, per parameter "
              f"{1e3 * update['per_parameter']:.3f} ms")
    if engine:
        print(f"\nengine overhead (chain of {engine['ops']} ops on 4-element arrays, best of 50), "
              f"microseconds per op: forward {engine['forward_us_per_op']:.2f} "
              f"(NumPy alone {engine['raw_forward_us_per_op']:.2f}, engine "
              f"{engine['engine_forward_us_per_op']:.2f}), backward {engine['backward_us_per_op']:.2f} "
              f"(NumPy alone {engine['raw_backward_us_per_op']:.2f}, engine "
              f"{engine['engine_backward_us_per_op']:.2f}), of which topological order "
              f"{engine['topological_order_us_per_op']:.2f}")
    if calls:
        print(f"\nfixed cost of one attention call, forward + backward at (B, L, D) = {tuple(calls['shape'])}, "
              f"best of 200, microseconds:")
        for name, microseconds in calls.items():
            if name != "shape":
                print(f"  {name:<30}{microseconds:>8.1f}")
    if memory:
        print(f"\npeak extra memory of one training step at L={memory['length']}, "
              f"B={memory['batch']} ({memory['method']})")
        for kind in cfg.kinds:
            m = memory[kind]
            print(f"  {kind:<14}{common.fmt_bytes(m['peak_bytes']):>12}"
                  f"   step {common.fmt(m['step_seconds'], '.3f')} s")

    results = {
        "benchmark": "train_step",
        "config": asdict(cfg),
        "environment": common.environment(cfg.device),
        "data": data_info,
        "matmul_peak": peak,
        "models": results_models,
        "profile": profiles,
        "flops": flops,
        "torch": torch_info,
        "compared": compared,
        "memory": memory,
        "engine_overhead": engine,
        "attention_call_overhead": calls,
        "optimizer_update": update,
        "wall_seconds": time.perf_counter() - started,
    }
    json_path = common.write_json(results, out / "train_step.json")
    results["json"] = str(json_path)
    print(f"\nwrote {json_path}")
    return results


if __name__ == "__main__":
    common.run(main)
