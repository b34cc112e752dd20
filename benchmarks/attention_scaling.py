"""How softmax, Hydra, decayed Hydra and elu+1 linear attention scale with the sequence length L.

What is measured, for each attention kind and each L (64, 128, ..., 8192 by default):

* **time**: one forward AND backward pass of the attention function alone
  (``F.softmax_attention``, ``F.hydra_attention``, ``F.decayed_hydra_attention`` with
  decays from 0.5 to 0.999, ``F.linear_attention``) on
  float32 q, k, v of shape (B, L, D), D = 64, with a fixed random cotangent
  ``out.backward(G)``. No projections, no loss: just the op and its hand-written
  backward. Inputs are made once, outside the clock; the causal (L, L) mask of
  softmax attention IS built inside the timed call, as the model builds it at every
  call (Hydra and linear attention take ``causal=True`` and build nothing of size
  L^2). ``--warmup`` untimed calls, then the median of ``--repeats`` timed calls;
  on the GPU the device is synchronised before each clock reading. Lengths are the
  outer loop and kinds the inner one, so slow drift in the machine's load (other
  processes) hits all three kinds alike.
* **peak memory**: one extra (untimed) forward+backward call. CPU: ``tracemalloc``
  peak minus its value at the start of the call (NumPy reports its array buffers to
  tracemalloc), i.e. the high-water mark of the arrays the call creates (saved
  activations, the L x L score matrices, temporaries and the gradients), inputs not
  included. GPU: the peak of live bytes handed out by CuPy's memory pool, tracked
  with a ``cupy.cuda.MemoryHook`` (pool caching and cuBLAS workspaces excluded).

Heads: softmax attention uses ``--softmax-heads`` heads (default 1 head of d = 64,
SASRec's setting); Hydra always has D heads of one feature (that is what Hydra is);
linear attention uses ``--linear-heads`` (default 1 head of 64, the setting
``LinearRecUni`` runs with num_heads=1; try 8 for the more common 8 heads of 8).
Causal attention is the default, as in SASRec / HydraRecUni (``--no-causal`` for
the bidirectional form).

On a machine whose cores are shared with other busy processes, multi-threaded
BLAS can stall for tens of milliseconds waiting for its threads; ``--threads 1``
(exported as OPENBLAS_NUM_THREADS etc. before NumPy loads, so it works when the
script is run from the command line) gives much steadier numbers there.

A (kind, L) pair whose *estimated* peak memory (a formula per kind, printed
against the measured peak so it can be checked) exceeds ``--max-gib`` is skipped
and reported as such, not run.

Summary per kind: the least-squares slope of log(time) vs log(L) over ALL lengths
and over L >= ``--fit-min-length`` (512; at short lengths Python overhead per op
flattens the curve, so the long-length slope is the one that shows the asymptotic
order: ~2 for softmax, ~1 for Hydra and linear attention), the ratio
time(L=4096) / time(L=512) (8x longer: ~64 for quadratic, ~8 for linear cost), and
the length where Hydra (and linear attention) become faster than softmax.

    python benchmarks/attention_scaling.py                      # CPU, full sweep
    python benchmarks/attention_scaling.py --quick              # seconds-long smoke run
    python benchmarks/attention_scaling.py --device gpu --batch 8
    python benchmarks/attention_scaling.py --lengths 256 1024 4096 --repeats 5

Writes ``attention_scaling.json`` and ``attention_scaling.png`` into ``--out`` (default
results/attention_scaling_<device>/).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import common  # benchmarks/common.py: this script's folder is on sys.path
import numpy as np

from tinyhydra import functional as F
from tinyhydra.attention.linear_attention import LINEAR_ATTENTION_CHUNK
from tinyhydra.attention.masking import causal_mask
from tinyhydra.engine import backend
from tinyhydra.engine.tensor import Tensor

KINDS = ("softmax", "hydra", "decayed", "linear")
LINEAR_KINDS = KINDS[1:]  # the kinds whose cost should grow as L, compared with softmax


@dataclass
class Config:
    lengths: list[int] = field(default_factory=lambda: [64 * 2 ** i for i in range(8)],
                               metadata={"help": "sequence lengths L"})
    dim: int = field(default=64, metadata={"help": "feature dimension D of q, k, v"})
    batch: int = field(default=2, metadata={"help": "batch size B (2: softmax at L=8192 "
                                                    "needs ~1.4 GiB per batch element)"})
    softmax_heads: int = field(default=1, metadata={"help": "heads of softmax attention"})
    linear_heads: int = field(default=1, metadata={"help": "heads of elu+1 linear attention"})
    causal: bool = field(default=True, metadata={"help": "causal (SASRec) or bidirectional"})
    repeats: int = field(default=3, metadata={"help": "timed calls per point (median)"})
    warmup: int = field(default=1, metadata={"help": "untimed calls per point"})
    max_gib: float = field(default=8.0, metadata={"help": "skip points whose estimated "
                                                          "peak memory exceeds this"})
    fit_min_length: int = field(default=512, metadata={"help": "shortest L of the long-length fit"})
    memory: bool = field(default=True, metadata={"help": "measure peak memory (one extra call)"})
    device: str = field(default="cpu", metadata={"help": "cpu or gpu (CuPy)"})
    threads: int = field(default=0, metadata={"help": "BLAS threads (exported before NumPy "
                                                      "loads; 0 = BLAS default)"})
    seed: int = 0
    out: str = field(default="", metadata={"help": common.OUT_HELP})
    plot: bool = field(default=True, metadata={"help": "write attention_scaling.png"})
    quick: bool = field(default=False, metadata={"help": "smoke run: L = 64, 128, 256, "
                                                         "1 repeat, no warm-up"})

    def __post_init__(self):
        if self.quick:
            self.lengths = [64, 128, 256]
            self.repeats, self.warmup = 1, 0
        if self.dim % self.softmax_heads or self.dim % self.linear_heads:
            raise ValueError("--softmax-heads and --linear-heads must divide --dim")


# ---------------------------------------------------------------------- memory estimate
def estimated_bytes(kind: str, cfg: Config, length: int) -> float:
    """A rough upper estimate of the peak extra memory of one forward+backward.

    softmax: per (batch, head) the saved probabilities P and the backward's dP are
    (L, L) float32, the causal mask is (L, L) bool and its negation is broadcast to
    (B, H, L, L) bool: 4 + 4 + 1 + 1 bytes per score, plus O(L D) terms.
    linear (causal, chunks of C = 64): the (C, C) within-chunk scores and their
    gradient per chunk and head, plus the per-chunk states (dh, dh + 1).
    Every kind: ~32 float32 arrays of (B, L, D) for inputs' gradients, saved
    activations and temporaries.
    """
    b, d = cfg.batch, cfg.dim
    linear_terms = 32.0 * b * length * d * 4
    if kind == "softmax":
        h = cfg.softmax_heads
        return b * h * length * length * 10.0 + (length * length if cfg.causal else 0) + linear_terms
    if kind == "linear" and cfg.causal:
        h = cfg.linear_heads
        dh = d // h
        chunk = min(LINEAR_ATTENTION_CHUNK, length)
        chunks = math.ceil(length / chunk)
        return (3.0 * b * h * chunks * chunk * chunk * 4
                + 4.0 * b * h * chunks * dh * (dh + 1) * 4 + linear_terms)
    return linear_terms


# ---------------------------------------------------------------------- one measurement
def make_inputs(kind: str, cfg: Config, length: int, rng: np.random.Generator):
    """q, k, v leaf Tensors and the cotangent G on ``cfg.device``.

    softmax with H > 1 heads gets (B, H, L, D/H) arrays (heads already split, as
    the model hands them over); the others get (B, L, D).
    """
    b, d = cfg.batch, cfg.dim
    if kind == "softmax" and cfg.softmax_heads > 1:
        shape = (b, cfg.softmax_heads, length, d // cfg.softmax_heads)
    else:
        shape = (b, length, d)

    def array():
        return backend.to_device(rng.standard_normal(shape, dtype=np.float32), cfg.device)

    q, k, v = (Tensor(array(), requires_grad=True) for _ in range(3))
    return q, k, v, array()


def make_step(kind: str, cfg: Config, q: Tensor, k: Tensor, v: Tensor, grad):
    """The callable that is timed: one forward + backward of ``kind``."""
    length = q.shape[-2]
    decays = np.geomspace(0.5, 0.999, cfg.dim).astype(np.float32)  # half-lives 1 to ~700
    decay = Tensor(backend.to_device(decays if cfg.causal else np.stack([decays, decays]), cfg.device),
                   requires_grad=True)

    def step():
        for tensor in (q, k, v, decay):
            tensor.grad = None  # so .backward() does not accumulate into old gradients
        if kind == "softmax":
            mask = causal_mask(length, like=q.data) if cfg.causal else None
            out = F.softmax_attention(q, k, v, mask=mask)
        elif kind == "hydra":
            out = F.hydra_attention(q, k, v, causal=cfg.causal)
        elif kind == "decayed":
            out = F.decayed_hydra_attention(q, k, v, decay, causal=cfg.causal)
        else:
            out = F.linear_attention(q, k, v, cfg.linear_heads, causal=cfg.causal)
        out.backward(grad)

    return step


def measure(kind: str, cfg: Config, length: int, xp, rng) -> dict:
    """Timing (and peak memory) of one (kind, L) point, or why it was skipped."""
    estimate = estimated_bytes(kind, cfg, length)
    point = {"kind": kind, "length": length, "estimated_bytes": estimate,
             "seconds": None, "runs": [], "peak_bytes": None, "skipped": None}
    if estimate > cfg.max_gib * common.GIB:
        point["skipped"] = f"estimated {estimate / common.GIB:.1f} GiB > --max-gib {cfg.max_gib:g}"
        return point
    q = k = v = grad = step = None
    try:
        q, k, v, grad = make_inputs(kind, cfg, length, rng)
        step = make_step(kind, cfg, q, k, v, grad)
        point["runs"] = common.time_runs(step, cfg.repeats, cfg.warmup, xp)
        point["seconds"] = common.median(point["runs"])
        if cfg.memory:
            for tensor in (q, k, v):
                tensor.grad = None  # outside the measured call: do not count freeing them
            point["peak_bytes"] = common.peak_memory(step, xp)["bytes"]
    except Exception as exc:  # out of memory: report it, keep the sweep going
        if not common.is_out_of_memory(exc):
            raise
        point["skipped"] = f"out of memory ({type(exc).__name__})"
    finally:
        del q, k, v, grad, step
        backend.free_cached_memory(xp)
    return point


# ---------------------------------------------------------------------- summary
def summarise(cfg: Config, points: list[dict]) -> dict:
    lengths = list(cfg.lengths)
    by_kind = {kind: {p["length"]: p for p in points if p["kind"] == kind} for kind in KINDS}
    seconds = {kind: [by_kind[kind][n]["seconds"] for n in lengths] for kind in KINDS}
    peaks = {kind: [by_kind[kind][n]["peak_bytes"] for n in lengths] for kind in KINDS}
    summary = {}
    for kind in KINDS:
        summary[kind] = {
            "slope_all": common.loglog_slope(lengths, seconds[kind]),
            "slope_long": common.loglog_slope(lengths, seconds[kind], cfg.fit_min_length),
            "ratio_4096_512": common.ratio_at(lengths, seconds[kind], 4096, 512),
            "memory_slope_long": common.loglog_slope(
                lengths, [None if m is None else float(m) for m in peaks[kind]],
                cfg.fit_min_length),
        }
    return {
        "per_kind": summary,
        "fit_min_length": cfg.fit_min_length,
        **{f"crossover_{kind}_vs_softmax": common.crossover(lengths, seconds[kind], seconds["softmax"])
           for kind in LINEAR_KINDS},
        "decayed_over_hydra": {n: common.ratio_of(d, h) for n, d, h in
                               zip(lengths, seconds["decayed"], seconds["hydra"])},
        "seconds": seconds,
        "peak_bytes": peaks,
    }


def print_table(cfg: Config, points: list[dict], summary: dict) -> None:
    by_key = {(p["kind"], p["length"]): p for p in points}
    print(f"\nforward + backward, B={cfg.batch}, D={cfg.dim}, "
          f"{'causal' if cfg.causal else 'bidirectional'}, float32, device={cfg.device}, "
          f"median of {cfg.repeats} (ms) and peak extra memory")
    head = f"{'L':>6}" + "".join(f"{kind + ' ms':>14}" for kind in KINDS) + "".join(
        f"{kind + ' mem':>14}" for kind in KINDS)
    print(head)
    skipped = []
    for n in cfg.lengths:
        cells_t, cells_m = [], []
        for kind in KINDS:
            p = by_key[(kind, n)]
            if p["skipped"]:
                cells_t.append(f"{'skipped*':>14}")
                cells_m.append(f"{'-':>14}")
                skipped.append(f"  * {kind} L={n}: {p['skipped']}")
            else:
                cells_t.append(f"{1e3 * p['seconds']:>14.3f}")
                cells_m.append(f"{common.fmt_bytes(p['peak_bytes']):>14}")
        print(f"{n:>6}" + "".join(cells_t) + "".join(cells_m))
    for line in skipped:
        print(line)
    print(f"\n{'kind':<9}{'slope (all L)':>15}{f'slope (L>={cfg.fit_min_length})':>17}"
          f"{'t(4096)/t(512)':>16}{'mem slope':>11}")
    for kind in KINDS:
        s = summary["per_kind"][kind]
        print(f"{kind:<9}{common.fmt(s['slope_all'], '.2f'):>15}{common.fmt(s['slope_long'], '.2f'):>17}"
              f"{common.fmt(s['ratio_4096_512'], '.1f'):>16}{common.fmt(s['memory_slope_long'], '.2f'):>11}")
    ratios = [f"L={n}: {r:.2f}" for n, r in summary["decayed_over_hydra"].items() if r]
    print("decayed / plain Hydra time: " + ", ".join(ratios))
    for name in LINEAR_KINDS:
        c = summary[f"crossover_{name}_vs_softmax"]
        text = (f"{name} faster than softmax from L = {c['first_measured']} (measured)"
                if c["first_measured"] else f"{name} never faster than softmax")
        if c["interpolated"]:
            text += f", log-log interpolated crossover L ~ {c['interpolated']:.0f}"
        if c["note"]:
            text += f" ({c['note']})"
        print(text)


def plot(cfg: Config, summary: dict, path: Path) -> Path | None:
    plt = common.pyplot()
    if plt is None:
        print("matplotlib is not installed: no plot")
        return None
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind, marker in zip(KINDS, "osd^"):
        pts = [(n, t) for n, t in zip(cfg.lengths, summary["seconds"][kind]) if t]
        if pts:
            ax_t.loglog(*zip(*[(n, 1e3 * t) for n, t in pts]), marker=marker, label=kind)
        pts = [(n, m) for n, m in zip(cfg.lengths, summary["peak_bytes"][kind]) if m]
        if pts:
            ax_m.loglog(*zip(*[(n, m / common.MIB) for n, m in pts]), marker=marker, label=kind)
    mode = "causal" if cfg.causal else "bidirectional"
    threads = f", {cfg.threads} BLAS thread(s)" if cfg.threads else ""
    ax_t.set(xlabel="sequence length L (tokens)", ylabel="forward + backward time (ms)",
             title=f"time, B={cfg.batch}, D={cfg.dim}, {mode}, {cfg.device}{threads}")
    ax_m.set(xlabel="sequence length L (tokens)", ylabel="peak extra memory (MiB)",
             title="peak memory of one forward + backward")
    for ax in (ax_t, ax_m):
        ax.set_xscale("log", base=2)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- main
def main(argv=None) -> dict:
    cfg, xp, rng, out = common.setup(Config, argv, __doc__, "attention_scaling")
    print(f"attention_scaling: lengths {cfg.lengths}, B={cfg.batch}, D={cfg.dim}, "
          f"softmax heads {cfg.softmax_heads}, linear heads {cfg.linear_heads}, "
          f"{'causal' if cfg.causal else 'bidirectional'}, {cfg.device}")
    started = time.perf_counter()
    points = []
    for length in cfg.lengths:  # lengths outer, kinds inner: load drift hits every kind
        for kind in KINDS:
            point = measure(kind, cfg, length, xp, rng)
            points.append(point)
            status = point["skipped"] or f"{1e3 * point['seconds']:.2f} ms"
            print(f"  L={length:<5} {kind:<8} {status}", flush=True)
    summary = summarise(cfg, points)
    print_table(cfg, points, summary)
    results = {
        "benchmark": "attention_scaling",
        "config": asdict(cfg),
        "environment": common.environment(cfg.device),
        "points": points,
        "summary": summary,
        "wall_seconds": time.perf_counter() - started,
    }
    json_path = common.write_json(results, out / "attention_scaling.json")
    results["json"] = str(json_path)
    if cfg.plot:
        png = plot(cfg, summary, out / "attention_scaling.png")
        results["plot"] = str(png) if png else None
    print(f"\nwrote {json_path}" + (f" and {results.get('plot')}" if results.get("plot") else ""))
    return results


if __name__ == "__main__":
    common.run(main)
