"""Keeping freed memory for reuse on the CPU: glibc's two malloc thresholds, set once.

NumPy takes its arrays from ``malloc``. By default glibc serves a block above its mmap
threshold (128 KiB, rising to at most 32 MiB as it adapts) with a fresh ``mmap`` and gives it
back with ``munmap`` when it is freed; and it trims the top of its heap back to the system
once more than its trim threshold is free. A training step allocates and frees the same
large temporaries (B x L x D activations, B x L x items logits) again and again, so every
step's first touch of each new page costs a page fault, and the kernel zeroes the page.

At import, on Linux with glibc, tinyhydra raises both thresholds to 1 GiB
(``mallopt(M_MMAP_THRESHOLD)``, ``mallopt(M_TRIM_THRESHOLD)``): freed blocks stay in the
heap and the next step reuses them, already mapped. The numbers computed are the same bit for
bit; what changes is the resident memory, which stays near the peak of the largest step
instead of falling back between steps. PyTorch's CPU guidance reaches the same end by
preloading jemalloc or tcmalloc.

* Opt out with ``TINYHYDRA_KEEP_FREED_MEMORY=0`` in the environment (before ``import tinyhydra``).
* Elsewhere (macOS, Windows, musl) this is a no-op, never an error.
* :func:`freed_memory_setting` says what is in effect and why.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

ENV = "TINYHYDRA_KEEP_FREED_MEMORY"
THRESHOLD = 1 << 30  # bytes: blocks below this stay in the heap when freed
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)

_setting = {"kept": False, "why": "not applied yet"}


def keep_freed_memory() -> dict:
    """Raise glibc's mmap and trim thresholds to THRESHOLD unless opted out or unsupported;
    returns :func:`freed_memory_setting`. Applying it again changes nothing."""
    if _setting["kept"]:
        return freed_memory_setting()
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        _setting.update(kept=False, why=f"opted out with {ENV}={os.environ[ENV]}")
    elif not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        _setting.update(kept=False, why=f"not glibc Linux ({sys.platform}, {platform.libc_ver()[0] or 'no libc'})")
    else:
        try:
            mallopt = ctypes.CDLL("libc.so.6").mallopt
            ok = mallopt(M_MMAP_THRESHOLD, THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, THRESHOLD) == 1
        except (OSError, AttributeError) as error:
            ok, detail = False, str(error)
        else:
            detail = "mallopt refused the thresholds"
        _setting.update(kept=ok, why=f"glibc malloc keeps freed blocks below {THRESHOLD >> 20} MiB"
                        if ok else detail)
    return freed_memory_setting()


def freed_memory_setting() -> dict:
    """``{"kept": bool, "why": str}``: whether freed memory is kept for reuse, and why (not)."""
    return dict(_setting)
