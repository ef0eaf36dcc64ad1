"""Thread policy: how many threads a call may use on a shared machine.

Machines here are shared: when another process keeps a core busy, a
parallel region split evenly over two threads waits for the thread that
cannot get its core (measured: torch's two threads 3.7-4.3x slower than
one). Before each calculator call or training epoch, `threads_for_call`
looks at how many cores other processes kept busy over the last half
second (/proc/stat minus this process's own CPU time) and uses only the
free ones (at least one). AENET_TORCH_ADAPTIVE_THREADS=0 switches this off.
"""

from __future__ import annotations

import os
import time

import torch


class _LoadMonitor:
    """How many cores other processes keep busy (Linux /proc/stat), from the
    system's busy time minus this process's own CPU time between samples."""

    def __init__(self, interval: float = 0.5, first_interval: float = 0.05):
        self.interval = interval
        # the first estimate comes after a short window (10 ms ticks: +-0.2
        # cores), so that the first calls of a run on a busy machine do not
        # all use the busy core; later ones average over `interval`
        self.first_interval = first_interval
        self.last = None
        self.estimated = False
        self.others = 0.0

    @staticmethod
    def _sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        tick = os.sysconf("SC_CLK_TCK")
        t = os.times()
        return time.monotonic(), (sum(fields) - idle) / tick, t.user + t.system

    def busy_elsewhere(self) -> float:
        """Cores (0..n) kept busy by other processes, averaged over the last
        interval; 0 where /proc/stat cannot be read."""
        if self.last is not None and (time.monotonic() - self.last[0]
                                      < (self.interval if self.estimated else self.first_interval)):
            return self.others  # too soon for a new estimate: no /proc/stat read (~20 us per call)
        try:
            now = self._sample()
        except (OSError, ValueError, IndexError):
            return 0.0
        if self.last is None:
            self.last = now
            return self.others
        wall = now[0] - self.last[0]
        if wall >= (self.interval if self.estimated else self.first_interval):
            busy = (now[1] - self.last[1]) - (now[2] - self.last[2])
            self.others = max(0.0, busy / wall)
            self.last = now
            self.estimated = True
        return self.others


_load = _LoadMonitor()
#: thread counts picked by `threads_for_call` so far (for benchmarks)
picked = []


def threads_for_call(requested: int) -> int:
    """Threads to use now: the requested count, less the cores other
    processes keep busy (at least 1). So a busy machine does not make two
    threads wait for a core they cannot get. AENET_TORCH_ADAPTIVE_THREADS=0
    keeps the requested count."""
    if requested <= 1 or os.environ.get("AENET_TORCH_ADAPTIVE_THREADS", "1") == "0":
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    free = min(requested, cores) - _load.busy_elsewhere()
    n = max(1, min(requested, int(free + 0.5)))
    if len(picked) < 100_000:
        picked.append(n)
    return n




class adaptive_threads:
    """torch's thread count set to `threads_for_call` for the block (training
    epochs, featurisation), and restored after."""

    def __enter__(self):
        self.n = max(1, torch.get_num_threads())
        wanted = threads_for_call(self.n)
        if wanted != self.n:
            torch.set_num_threads(wanted)
        return self

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.n:
            torch.set_num_threads(self.n)
