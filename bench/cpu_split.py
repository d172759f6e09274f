"""Where the machine's CPU goes during a load phase, per request (issue 18).

``Split.start()`` / ``Split.stop(requests)`` read ``/proc`` before and after a
phase and return the CPU milliseconds (user + system) per request spent by
the web server (the process group of gunicorn), PostgreSQL (every process of
the ``postgres`` user), Redis and this process (the load clients, threads of
the bench). Linux only; figures of other processes on the machine are not
counted, so an idle machine gives the cleanest split.
"""
from __future__ import annotations

import os
import pwd

_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _cpu_ms(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * _TICK_MS      # utime, stime


def _groups(web_pgid: int) -> dict[str, list[int]]:
    try:
        postgres_uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        postgres_uid = -1
    groups: dict[str, list[int]] = {"web": [], "postgresql": [], "redis": []}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getpgid(pid) == web_pgid:
                groups["web"].append(pid)
                continue
            if os.stat(f"/proc/{pid}").st_uid == postgres_uid:
                groups["postgresql"].append(pid)
                continue
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip().startswith("redis-server"):
                    groups["redis"].append(pid)
        except OSError:
            continue
    return groups


class Split:
    def __init__(self, web_pgid: int):
        self.web_pgid = web_pgid

    def _read(self) -> dict[str, float]:
        totals = {name: sum(_cpu_ms(pid) for pid in pids)
                  for name, pids in _groups(self.web_pgid).items()}
        totals["clients"] = _cpu_ms(os.getpid())
        return totals

    def start(self) -> None:
        self.before = self._read()

    def stop(self, requests: int) -> dict[str, float]:
        after = self._read()
        # A PostgreSQL backend that ended during the phase takes its ticks
        # away with it: the figure is a floor for that group.
        per = {name: max(0.0, after[name] - self.before.get(name, 0.0)) / max(requests, 1)
               for name in after}
        per["total"] = sum(per.values())
        return per


def describe(per: dict[str, float]) -> str:
    return " ".join(f"{name}={per[name]:.2f}" for name in
                    ("web", "postgresql", "redis", "clients", "total"))
