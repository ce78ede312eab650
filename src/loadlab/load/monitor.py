"""CPU and memory of each component, sampled once a second while a variant runs.

A component is a process tree (gunicorn and its workers, PostgreSQL and its backends, the
Locust master and its workers); its CPU is the sum over the tree, in percent of one core.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import psutil

from loadlab.load import procfs

GENERATOR = "locust"
SATURATED_CPU = 90.0  # percent of one core: a Locust process is single-threaded
SATURATED_SECONDS = 3
# PSS is read every this many samples (a new process's at once), RSS and CPU every sample:
# the kernel walks a process's page tables to sum its PSS, about 1 ms a process here, and
# with PostgreSQL's backends that was 30 ms of CPU a second taken from the stack measured.
PSS_EVERY = 5
# A measured window this long can tell memory that levels off from memory that keeps growing
# (report/writer.memory_warnings); growth under GROWTH_FLOOR_MB per 10 minutes is no news.
SOAK_SECONDS = 600
GROWTH_FLOOR_MB = 1.0


@dataclass
class Samples:
    t: list[float] = field(default_factory=list)  # when each sample was taken (epoch s)
    cpu: list[float] = field(default_factory=list)  # percent of one core, per second
    memory_mb: list[float] = field(default_factory=list)  # PSS, summed over the tree
    rss_mb: list[float] = field(default_factory=list)  # RSS, summed: counts shared pages again
    # Busiest single process per second: what saturates first in a one-thread generator.
    busiest_process_cpu: list[float] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)  # in the tree (server + workers)

    def within(self, start: float, end: float) -> Samples:
        """The samples taken between start and end (the measured part of a run)."""
        keep = [i for i, t in enumerate(self.t) if start <= t <= end]
        series: tuple[list, ...] = (  # type: ignore[type-arg]
            self.t,
            self.cpu,
            self.memory_mb,
            self.rss_mb,
            self.busiest_process_cpu,
            self.processes,
        )
        return Samples(*([values[i] for i in keep] for values in series))

    def summary(self) -> dict[str, float | None]:
        if not self.cpu:
            return {
                "cpu_mean": 0.0,
                "cpu_max": 0.0,
                "memory_max_mb": 0.0,
                "rss_max_mb": 0.0,
                "process_cpu_max": 0.0,
                "processes_max": 0,
            }
        third = len(self.t) // 3
        return {
            "cpu_mean": round(sum(self.cpu) / len(self.cpu), 1),
            "cpu_max": round(max(self.cpu), 1),
            "memory_max_mb": round(max(self.memory_mb), 1),
            "rss_max_mb": round(max(self.rss_mb), 1),
            "process_cpu_max": round(max(self.busiest_process_cpu), 1),
            "processes_max": max(self.processes, default=0),
            # A soak's question: does memory keep growing? Over the window, and over its
            # last third, which is near 0 once it has levelled off.
            "memory_growth_mb_per_10min": growth_per_10min(self.t, self.memory_mb),
            "memory_growth_last_third_mb_per_10min": growth_per_10min(
                self.t[-third:] if third else [], self.memory_mb[-third:] if third else []
            ),
        }


def growth_per_10min(t: list[float], mb: list[float]) -> float | None:
    """The least-squares slope of memory over time, in MB per 10 minutes (None: fewer than
    ten samples, too few to say)."""
    if len(t) < 10:
        return None
    mean_t, mean_mb = sum(t) / len(t), sum(mb) / len(mb)
    spread = sum((x - mean_t) ** 2 for x in t)
    if not spread:
        return None
    slope = sum((x - mean_t) * (y - mean_mb) for x, y in zip(t, mb, strict=True)) / spread
    return round(slope * 600, 2)


class Monitor:
    """Samples the given process trees in a background thread until stopped."""

    def __init__(
        self,
        roots: dict[str, list[int]],
        interval: float = 1.0,
        listening: dict[str, int] | None = None,
    ) -> None:
        self.roots = roots
        # Per service, its listening port: the accept queue's depth is sampled each second.
        self.listening = listening or {}
        self.accept: dict[str, list[tuple[float, int]]] = {n: [] for n in self.listening}
        self.interval = interval
        self.samples: dict[str, Samples] = {name: Samples() for name in roots}
        self.machine_cpu: list[float] = []
        self.machine_t: list[float] = []
        # Each process's CPU seconds at the last sample, and when: its CPU % is the change.
        self._cpu_seen: dict[int, tuple[float, float]] = {}
        # Each process's latest PSS, read every PSS_EVERY samples (see there).
        self._pss: dict[int, int | None] = {}
        self._samples_taken = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()  # roots and samples change together
        self._thread = threading.Thread(target=self._loop, name="loadlab-monitor", daemon=True)

    def __enter__(self) -> Monitor:
        psutil.cpu_percent()
        self._sample()  # primes cpu_percent of every process
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def add(self, name: str, pid: int) -> None:
        """Watch one more process tree (e.g. Locust, once started). Its samples exist before
        the sampling thread can see the tree: the other order once killed that thread with
        a KeyError, and the resources table and the saturation flag went missing."""
        with self._lock:
            self.samples.setdefault(name, Samples())
            self.roots.setdefault(name, []).append(pid)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            now = time.time()
            self.machine_cpu.append(psutil.cpu_percent())
            self.machine_t.append(now)
            if self.listening:
                queues = procfs.listen_queues()
                for name, port in self.listening.items():
                    if port in queues:
                        self.accept[name].append((now, queues[port]))
            with self._lock:
                sampled = self._sample()
            for name, samples in sampled.items():
                self.samples[name].t.append(now)
                self.samples[name].cpu.append(samples[0])
                self.samples[name].memory_mb.append(samples[1])
                self.samples[name].rss_mb.append(samples[2])
                self.samples[name].busiest_process_cpu.append(samples[3])
                self.samples[name].processes.append(samples[4])

    @staticmethod
    def _tree(pid: int, children: dict[int, list[int]]) -> list[int]:
        members, todo = [], [pid]
        while todo:
            current = todo.pop()
            members.append(current)
            todo.extend(children.get(current, ()))
        return members

    def _cpu_percent(self, pid: int, cpu_s: float, now: float) -> float:
        """Percent of one core since this process's last sample; 0 at its first (as psutil)."""
        last = self._cpu_seen.get(pid)
        self._cpu_seen[pid] = (now, cpu_s)
        if last is None or now <= last[0] or cpu_s < last[1]:  # new, or a reused pid
            return 0.0
        return 100.0 * (cpu_s - last[1]) / (now - last[0])

    def _sample(self) -> dict[str, tuple[float, float, float, float, int]]:
        """Per tree: CPU %, PSS MB, RSS MB, busiest process CPU %, processes."""
        result = {}
        # Every process's parent, CPU time and RSS from one pass over /proc: psutil reads a
        # process's stat file again for each figure, and walked /proc once per tree.
        table = procfs.stat_table()
        now = time.monotonic()
        children: dict[int, list[int]] = defaultdict(list)
        for pid, stat in table.items():
            children[stat.ppid].append(pid)
        fresh_pss = self._samples_taken % PSS_EVERY == 0
        self._samples_taken += 1
        if fresh_pss:  # forget processes gone (backends, restarted workers): a soak's memory
            self._cpu_seen = {p: seen for p, seen in self._cpu_seen.items() if p in table}
            self._pss = {p: pss for p, pss in self._pss.items() if p in table}
        for name, pids in list(self.roots.items()):
            cpu = pss = rss = busiest = 0.0
            count = 0
            for pid in (p for root in pids if root in table for p in self._tree(root, children)):
                stat = table[pid]
                used = self._cpu_percent(pid, stat.cpu_s, now)
                if fresh_pss or pid not in self._pss:
                    self._pss[pid] = procfs.pss_bytes(pid)
                cpu += used
                pss += (self._pss[pid] or stat.rss_bytes) / 2**20
                rss += stat.rss_bytes / 2**20
                busiest = max(busiest, used)
                count += 1
            result[name] = (cpu, pss, rss, busiest, count)
        return result

    def accept_queue(self, start: float, end: float) -> dict[str, dict[str, float]]:
        """Per service, the accept queue's depth while measuring: mean and max."""
        found = {}
        for name, samples in self.accept.items():
            inside = [depth for t, depth in samples if start <= t <= end]
            if inside:
                found[name] = {"mean": round(sum(inside) / len(inside), 2), "max": max(inside)}
        return found

    def measured(self, start: float, end: float) -> Measured:
        """What was sampled between start and end: the warm-up (spawning users, filling
        pools) is not what the measured figures saw. All samples if none fall inside."""
        pairs = zip(self.machine_t, self.machine_cpu, strict=True)
        inside = [cpu for t, cpu in pairs if start <= t <= end]
        if not inside:
            return Measured(self.samples, self.machine_cpu)
        return Measured({n: s.within(start, end) for n, s in self.samples.items()}, inside)


@dataclass
class Measured:
    """The samples of the measured part of a run, per component and for the machine."""

    samples: dict[str, Samples]
    machine_cpu: list[float]

    @property
    def machine_cpu_mean(self) -> float:
        return round(sum(self.machine_cpu) / max(len(self.machine_cpu), 1), 1)

    def generator_saturated(self) -> bool:
        """True when a Locust process ran at >= 90% of a core for 3 seconds or more."""
        samples = self.samples.get(GENERATOR)
        if samples is None:
            return False
        return sum(c >= SATURATED_CPU for c in samples.busiest_process_cpu) >= SATURATED_SECONDS
