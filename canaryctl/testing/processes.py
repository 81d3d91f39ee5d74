"""Child processes in tests and demos: free ports, polling with a deadline, dying with the parent,
stopping politely then firmly, reading output line by line, and what a benchmark reads of a
child (its CPU time and peak memory)."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable


def stdout_lines(process: subprocess.Popen) -> queue.Queue[str | None]:
    """The child's stdout lines as they come, then None when it closes."""
    lines: queue.Queue[str | None] = queue.Queue()
    output = process.stdout
    assert output is not None, "start the child with stdout=subprocess.PIPE"

    def pump() -> None:
        for line in output:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def next_line(
    lines: queue.Queue[str | None], process: subprocess.Popen, timeout: float = 30
) -> str:
    """The next line, or a failed assertion with the child's exit code and stderr once it
    closed."""
    line = lines.get(timeout=timeout)
    stderr = process.stderr
    assert line is not None, f"exited with {process.wait()}: {stderr.read() if stderr else ''}"
    return line


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the child when its parent exits."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_until(
    predicate: Callable[[], bool],
    timeout: float = 5.0,
    what: str = "a condition",
    interval: float = 0.1,
) -> None:
    """Poll `predicate` until it is true; raise with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def terminate(process: subprocess.Popen | None, grace: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far, from /proc/<pid>/stat."""
    return sum(cpu_times(pid))


def cpu_times(pid: int) -> tuple[float, float]:
    """The user and the system CPU seconds process `pid` has used so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size of process `pid` (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
