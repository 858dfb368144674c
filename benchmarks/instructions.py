"""Instruction counts of one call, under valgrind's callgrind: a cost that this VM's speed
drift (up to 25 % within minutes) does not move, to set beside the wall-clock figures.

The child process runs the call once uninstrumented (imports, caches, lazy set-up), then
again with callgrind collecting, switched on and off around that call through callgrind's
client requests (a three-line C helper built with the machine's C compiler against
valgrind's header). Everything else (reading the data, start-up) runs uninstrumented.
Instructions are not seconds (cache misses and branch mispredictions cost extra), but the
same code on the same input gives the same count, whatever else the machine does.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HEADER = Path("/usr/include/valgrind/callgrind.h")
_SOURCE = """#include <valgrind/callgrind.h>
void start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT; }
void stop(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_STOP_INSTRUMENTATION; }
"""
TOGGLE_ENV = "BENCH_CALLGRIND_TOGGLE"
"""The child finds the helper library's path in this variable."""


def unavailable() -> str | None:
    """Why instructions cannot be counted here (None when they can)."""
    for tool in ("valgrind", "cc"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not HEADER.exists():
        return f"{HEADER} not found (Debian package valgrind)"
    return None


def count(args: list[str], workdir: Path) -> int:
    """Instructions executed by the measured call of ``python <args>`` (the child calls
    :func:`measure`), run under callgrind with ``workdir`` as scratch space.

    Raises
    ------
    RuntimeError
        When the child fails or callgrind wrote no total.
    """
    library = workdir / "toggle.so"
    if not library.exists():
        source = workdir / "toggle.c"
        source.write_text(_SOURCE)
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", library, source], check=True)
    out = workdir / "callgrind.out"
    env = {**os.environ, TOGGLE_ENV: str(library), "PYTHONHASHSEED": "0"}
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no"]
    cmd += [f"--callgrind-out-file={out}", sys.executable, *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed under valgrind:\n{done.stderr[-2000:]}")
    for line in out.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"callgrind wrote no totals for {' '.join(args)}")


def measure(call: Callable[[], object]) -> None:
    """In the child: ``call()`` once to warm up, then once more with callgrind collecting."""
    toggle = ctypes.CDLL(os.environ[TOGGLE_ENV])
    call()
    toggle.start()
    call()
    toggle.stop()


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A scratch folder for :func:`count` (the helper library and callgrind's output)."""
    return tempfile.TemporaryDirectory(prefix="callgrind-")
