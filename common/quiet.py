"""Keeps TensorFlow's start-up chatter off a CPU machine's console; real warnings still show.

TensorFlow's C++ core writes some lines before its log level is read (absl's "before
InitializeLog" notice, oneDNN and CUDA-driver probes, and an E-level "failed call to cuInit" on a
machine without a GPU), so ``TF_CPP_MIN_LOG_LEVEL`` alone cannot silence them. ``install`` puts a
filter on file descriptor 2 for the whole process that drops exactly those known lines and passes
every other byte through in order. Call it before TensorFlow is imported; it does not import it.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# Lines that say nothing actionable on a CPU-only machine (matched anywhere in the line).
NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|port\.cc:\d+\] oneDNN custom operations are on"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers"
    r"|cuda_platform\.cc:\d+\] failed call to cuInit"
    r"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .*rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
)

_installed = False


def gpu_driver_present() -> bool:
    """An NVIDIA driver is installed (cheap: no TensorFlow, no CUDA call)."""
    return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidiactl")


def install() -> None:
    """Filters fd 2 (no-op where a GPU driver exists: there the CUDA lines can matter)."""
    global _installed
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # INFO and WARNING from TF's C++ after init
    if _installed or gpu_driver_present() or os.environ.get("RNN_SUITE_RAW_STDERR"):
        return
    _installed = True
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            pending = b""
            while True:
                chunk = source.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = [line for line in lines if not NOISE.search(line.decode("utf-8", "replace"))]
                if kept:
                    os.write(original, b"\n".join(kept) + b"\n")
            if pending and not NOISE.search(pending.decode("utf-8", "replace")):
                os.write(original, pending)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        # Runs after an uncaught exception's traceback is printed: put fd 2 back, let the pump drain.
        sys.stderr.flush()
        os.dup2(original, 2)
        thread.join(timeout=5)

    atexit.register(restore)
