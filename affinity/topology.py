"""CPU topology: logical CPUs grouped by physical core and by package.

On Linux the kernel describes each logical CPU under
``/sys/devices/system/cpu/cpuN/topology/``: ``physical_package_id`` (the
socket), ``core_id`` and ``core_cpus_list`` (called ``thread_siblings_list``
on older kernels; the SMT siblings sharing the core).  ``cpu_topology()``
reads those files for the CPUs that are online and that this process may
use, and falls back to the core counts psutil reports when they are missing
(other platforms, unusual containers).

Thread safety: ``cpu_topology()`` keeps no state between calls; it only
reads files and builds new frozen dataclasses.  The returned ``Topology``
is immutable (frozen dataclasses holding tuples), so it can be shared freely
between threads without locks, GIL or not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from .cpus import _as_cpu_set, _format_cpu_list, _parse_cpu_list, available_cpus

__all__ = ["Core", "Package", "Topology", "cpu_topology"]

SYSFS_CPU_ROOT = "/sys/devices/system/cpu"


@dataclass(frozen=True)
class Core:
    """One physical core and the logical CPUs (SMT threads) it runs."""

    package_id: int
    core_id: int
    cpus: tuple[int, ...]


@dataclass(frozen=True)
class Package:
    """One physical package (socket) and its cores."""

    id: int
    cores: tuple[Core, ...]

    @property
    def cpus(self) -> tuple[int, ...]:
        """All logical CPUs of this package, sorted."""
        return tuple(sorted(cpu for core in self.cores for cpu in core.cpus))


@dataclass(frozen=True)
class Topology:
    """Logical CPUs grouped by package and physical core.

    Packages are ordered by id, cores within a package by core id, and the
    CPUs of a core by CPU id.  *source* says where the information came
    from: ``"sysfs"`` or ``"psutil"`` (the fallback, which guesses).
    """

    packages: tuple[Package, ...]
    source: str = "sysfs"

    @property
    def cpus(self) -> tuple[int, ...]:
        """All logical CPUs, sorted."""
        return tuple(sorted(cpu for core in self.cores for cpu in core.cpus))

    @property
    def cores(self) -> tuple[Core, ...]:
        """All cores, in package order."""
        return tuple(core for package in self.packages for core in package.cores)

    @property
    def cpu_count(self) -> int:
        """Number of logical CPUs."""
        return sum(len(core.cpus) for core in self.cores)

    @property
    def core_count(self) -> int:
        """Number of physical cores."""
        return len(self.cores)

    @property
    def package_count(self) -> int:
        """Number of packages (sockets)."""
        return len(self.packages)

    @property
    def threads_per_core(self) -> int:
        """Largest number of logical CPUs on one core (1 without SMT)."""
        return max((len(core.cpus) for core in self.cores), default=0)

    def __str__(self) -> str:
        lines = [
            f"{_plural(self.package_count, 'package')}, "
            f"{_plural(self.core_count, 'core')}, "
            f"{_plural(self.cpu_count, 'CPU')} (from {self.source})"
        ]
        for package in self.packages:
            cores = "; ".join(
                f"core {core.core_id}: {_format_cpu_list(core.cpus)}"
                for core in package.cores)
            lines.append(f"  package {package.id}: {cores}")
        return "\n".join(lines)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def cpu_topology(sysfs_root: str | os.PathLike[str] = SYSFS_CPU_ROOT,
                 cpus: Iterable[int] | None = None) -> Topology:
    """Describe how the usable logical CPUs map to cores and packages.

    Only CPUs that are online and in *cpus* are included; *cpus* defaults to
    ``available_cpus()``.  Pass *sysfs_root* and *cpus* to describe a fake
    sysfs tree (tests).  When the sysfs files are missing, falls back to
    psutil's logical and physical core counts: SMT siblings are assumed to
    be numbered next to each other, all in one package.
    """
    wanted = available_cpus() if cpus is None else _as_cpu_set(cpus, allow_empty=True)
    root = os.fspath(sysfs_root)
    online = _read_cpu_list(os.path.join(root, "online"))
    if online is not None:
        wanted &= online

    entries = _read_sysfs(root, wanted)
    if entries is None:
        return _topology_from_psutil(wanted)

    # Group CPUs into cores.  The sibling list, when the kernel gives one,
    # tells cores apart even where core ids repeat (multi-die packages).
    groups: dict[tuple, list[int]] = {}
    core_ids: dict[tuple, int] = {}
    for cpu, package_id, core_id, siblings in entries:
        key = (package_id, core_id, siblings)
        groups.setdefault(key, []).append(cpu)
        core_ids[key] = core_id

    cores_by_package: dict[int, list[Core]] = {}
    for key, members in groups.items():
        package_id = key[0]
        core = Core(package_id, core_ids[key], tuple(sorted(members)))
        cores_by_package.setdefault(package_id, []).append(core)

    packages = tuple(
        Package(package_id,
                tuple(sorted(cores, key=lambda c: (c.core_id, c.cpus))))
        for package_id, cores in sorted(cores_by_package.items()))
    return Topology(packages, source="sysfs")


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_cpu_list(path: str) -> frozenset[int] | None:
    text = _read_text(path)
    return None if text is None else _parse_cpu_list(text)


def _read_sysfs(root: str, wanted: frozenset[int]
                ) -> list[tuple[int, int, int, frozenset[int] | None]] | None:
    """Read (cpu, package_id, core_id, siblings) for each wanted CPU.

    CPUs without a ``cpuN`` directory do not exist and CPUs whose
    ``cpuN/online`` says 0 are offline; both are skipped.  Returns None when
    the topology files are missing, so the caller falls back to psutil.
    """
    if not os.path.isdir(root):
        return None
    entries = []
    for cpu in sorted(wanted):
        cpu_dir = os.path.join(root, f"cpu{cpu}")
        if not os.path.isdir(cpu_dir):
            continue
        if (_read_text(os.path.join(cpu_dir, "online")) or "1").strip() == "0":
            continue
        topo = os.path.join(cpu_dir, "topology")
        package_text = _read_text(os.path.join(topo, "physical_package_id"))
        core_text = _read_text(os.path.join(topo, "core_id"))
        if package_text is None or core_text is None:
            return None
        try:
            # Some platforms report -1 when they do not know the package.
            package_id = max(int(package_text), 0)
            core_id = int(core_text)
        except ValueError:
            return None
        siblings = _read_cpu_list(os.path.join(topo, "core_cpus_list"))
        if siblings is None:
            siblings = _read_cpu_list(os.path.join(topo, "thread_siblings_list"))
        entries.append((cpu, package_id, core_id, siblings))
    return entries


def _topology_from_psutil(wanted: frozenset[int]) -> Topology:
    """Guess a topology from psutil's CPU counts (one package).

    When the logical count is a whole multiple of the physical count, CPUs
    are grouped into cores of that many adjacent ids (Windows numbering);
    otherwise each CPU is taken to be its own core.
    """
    try:
        logical = psutil.cpu_count(logical=True) or 0
        physical = psutil.cpu_count(logical=False) or 0
    except (OSError, psutil.Error):
        logical = physical = 0
    per_core = 1
    if physical and logical > physical and logical % physical == 0:
        per_core = logical // physical

    groups: dict[int, list[int]] = {}
    for cpu in sorted(wanted):
        groups.setdefault(cpu // per_core, []).append(cpu)
    cores = tuple(Core(0, core_id, tuple(members))
                  for core_id, members in sorted(groups.items()))
    packages = (Package(0, cores),) if cores else ()
    return Topology(packages, source="psutil")
