"""Tests for the affinity package.

Topology and planning are tested on fake sysfs trees built in tmp_path;
pinning is tested on the real machine, from inside the pinned threads and
from outside through /proc.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import warnings

import psutil
import pytest

import affinity
from affinity import pinning
from affinity.cpus import _format_cpu_list, _parse_cpu_list

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="needs Linux /proc and sysfs")


# --- fake sysfs trees -----------------------------------------------------

def make_sysfs(root, layout, online=None, siblings_file="core_cpus_list",
               no_topology=()):
    """Write a fake /sys/devices/system/cpu tree under *root*.

    *layout* maps cpu -> (package_id, core_id, siblings).  *online* is the
    text of the global "online" file (None: no file).  CPUs in
    *no_topology* get a cpuN directory without topology files, like an
    offline CPU on Linux.
    """
    root.mkdir(parents=True, exist_ok=True)
    if online is not None:
        (root / "online").write_text(online + "\n")
    for cpu, (package_id, core_id, siblings) in layout.items():
        cpu_dir = root / f"cpu{cpu}"
        cpu_dir.mkdir()
        if cpu in no_topology:
            continue
        topo = cpu_dir / "topology"
        topo.mkdir()
        (topo / "physical_package_id").write_text(f"{package_id}\n")
        (topo / "core_id").write_text(f"{core_id}\n")
        if siblings_file:
            text = ",".join(str(cpu) for cpu in sorted(siblings))
            (topo / siblings_file).write_text(text + "\n")
    return root


def two_socket_smt_layout():
    """2 packages x 4 cores x 2 threads; siblings are cpuN and cpuN+8."""
    layout = {}
    for package_id in range(2):
        for core_id in range(4):
            first = package_id * 4 + core_id
            siblings = [first, first + 8]
            for cpu in siblings:
                layout[cpu] = (package_id, core_id, siblings)
    return layout


@pytest.fixture
def two_socket(tmp_path):
    root = make_sysfs(tmp_path / "cpu", two_socket_smt_layout(), online="0-15")
    return affinity.cpu_topology(root, cpus=range(16))


def single(*cpus):
    return [frozenset({cpu}) for cpu in cpus]


def record_warnings(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    return result, [w for w in caught
                    if issubclass(w.category, affinity.AffinityWarning)]


# --- CPU lists ------------------------------------------------------------

def test_parse_and_format_cpu_list():
    assert _parse_cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert _parse_cpu_list("5") == {5}
    assert _parse_cpu_list("\n") == frozenset()
    assert _format_cpu_list({0, 1, 2, 3, 8, 10, 11}) == "0-3,8,10-11"
    assert _format_cpu_list([4]) == "4"


# --- topology ---------------------------------------------------------------

def test_topology_two_sockets_smt(two_socket):
    topo = two_socket
    assert topo.source == "sysfs"
    assert (topo.package_count, topo.core_count, topo.cpu_count) == (2, 8, 16)
    assert topo.threads_per_core == 2
    assert topo.cpus == tuple(range(16))
    assert [p.id for p in topo.packages] == [0, 1]
    assert topo.packages[0].cores[0] == affinity.Core(0, 0, (0, 8))
    assert topo.packages[1].cores[3] == affinity.Core(1, 3, (7, 15))
    assert topo.packages[1].cpus == (4, 5, 6, 7, 12, 13, 14, 15)
    assert [c.cpus for c in topo.cores] == [(n, n + 8) for n in range(8)]
    text = str(topo)
    assert "2 packages, 8 cores, 16 CPUs" in text
    assert "package 1: core 0: 4,12" in text


def test_topology_old_kernel_thread_siblings_list(tmp_path):
    root = make_sysfs(tmp_path / "cpu", two_socket_smt_layout(), online="0-15",
                      siblings_file="thread_siblings_list")
    topo = affinity.cpu_topology(root, cpus=range(16))
    assert [c.cpus for c in topo.cores] == [(n, n + 8) for n in range(8)]


def test_topology_without_sibling_files_groups_by_core_id(tmp_path):
    root = make_sysfs(tmp_path / "cpu", two_socket_smt_layout(), online="0-15",
                      siblings_file=None)
    topo = affinity.cpu_topology(root, cpus=range(16))
    assert [c.cpus for c in topo.cores] == [(n, n + 8) for n in range(8)]


def test_topology_excludes_offline_cpus(tmp_path):
    # 1 package x 4 cores x 2 threads, siblings cpuN and cpuN+4.  cpu3 is
    # offline without topology files, cpu6 offline with stale ones.
    layout = {}
    for core_id in range(4):
        for cpu in (core_id, core_id + 4):
            layout[cpu] = (0, core_id, [core_id, core_id + 4])
    root = make_sysfs(tmp_path / "cpu", layout, online="0-2,4-5,7",
                      no_topology={3})
    topo = affinity.cpu_topology(root, cpus=range(8))
    assert topo.cpus == (0, 1, 2, 4, 5, 7)
    assert [c.cpus for c in topo.cores] == [(0, 4), (1, 5), (2,), (7,)]
    assert affinity.plan(6, "compact", topology=topo) == single(0, 1, 2, 7, 4, 5)


def test_topology_per_cpu_online_file(tmp_path):
    layout = {cpu: (0, cpu, [cpu]) for cpu in range(4)}
    root = make_sysfs(tmp_path / "cpu", layout, online=None)
    (root / "cpu2" / "online").write_text("0\n")
    (root / "cpu1" / "online").write_text("1\n")
    topo = affinity.cpu_topology(root, cpus=range(8))  # cpu4-7 do not exist
    assert topo.cpus == (0, 1, 3)


def test_topology_restricted_cpuset(tmp_path):
    root = make_sysfs(tmp_path / "cpu", two_socket_smt_layout(), online="0-15")
    topo = affinity.cpu_topology(root, cpus={0, 1, 2, 8, 9, 12})
    assert topo.cpus == (0, 1, 2, 8, 9, 12)
    assert [(c.package_id, c.core_id, c.cpus) for c in topo.cores] == [
        (0, 0, (0, 8)), (0, 1, (1, 9)), (0, 2, (2,)), (1, 0, (12,))]
    assert affinity.plan(6, "compact", topology=topo) == single(0, 1, 2, 12, 8, 9)
    assert affinity.plan(6, "spread", topology=topo) == single(0, 12, 1, 2, 8, 9)
    with pytest.raises(ValueError, match=r"CPU 4 is not available.*0-2,8-9,12"):
        affinity.plan(2, [0, 4], topology=topo)


def test_topology_fallback_to_psutil_smt(tmp_path, monkeypatch):
    counts = {True: 8, False: 4}
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: counts[logical])
    topo = affinity.cpu_topology(tmp_path / "missing", cpus=range(8))
    assert topo.source == "psutil"
    assert [c.cpus for c in topo.cores] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    topo = affinity.cpu_topology(tmp_path / "missing", cpus={1, 2, 3})
    assert [c.cpus for c in topo.cores] == [(1,), (2, 3)]


@pytest.mark.parametrize("physical", [None, 3, 8])
def test_topology_fallback_to_psutil_one_cpu_per_core(tmp_path, monkeypatch,
                                                      physical):
    counts = {True: 8, False: physical}
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: counts[logical])
    topo = affinity.cpu_topology(tmp_path / "missing", cpus=range(8))
    assert [c.cpus for c in topo.cores] == [(n,) for n in range(8)]


def test_topology_fallback_when_topology_files_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 4)
    layout = {cpu: (0, cpu, [cpu]) for cpu in range(4)}
    root = make_sysfs(tmp_path / "cpu", layout, online="0-3", no_topology={2})
    topo = affinity.cpu_topology(root, cpus=range(4))
    assert topo.source == "psutil"
    assert topo.cpus == (0, 1, 2, 3)


@linux_only
def test_real_topology_matches_available_cpus():
    topo = affinity.cpu_topology()
    assert frozenset(topo.cpus) == affinity.available_cpus()
    assert topo.cpu_count >= 1


# --- plan -----------------------------------------------------------------

def test_plan_compact_two_sockets(two_socket):
    assert affinity.plan(16, "compact", topology=two_socket) == single(*range(16))
    assert affinity.plan(3, "compact", topology=two_socket) == single(0, 1, 2)


def test_plan_spread_two_sockets(two_socket):
    expected = [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]
    assert affinity.plan(16, "spread", topology=two_socket) == single(*expected)


def test_plan_none():
    assert affinity.plan(3, "none") == [None, None, None]


def test_plan_explicit_ids_and_sets(two_socket):
    plan, caught = record_warnings(affinity.plan, 3, [5, 9, 2], topology=two_socket)
    assert plan == single(5, 9, 2)
    assert caught == []
    sets = [{0, 8}, (4, 12)]
    assert affinity.plan(4, sets, topology=two_socket) == [
        frozenset({0, 8}), frozenset({4, 12})] * 2


def test_plan_explicit_ids_checked_against_available_cpus():
    available = affinity.available_cpus()
    cpu = min(available)
    assert affinity.plan(1, [cpu]) == [frozenset({cpu})]
    bad = max(available) + 1000
    with pytest.raises(ValueError) as info:
        affinity.plan(2, [cpu, bad])
    message = str(info.value)
    assert str(bad) in message
    assert _format_cpu_list(available) in message


def test_plan_unavailable_cpus_named(two_socket):
    with pytest.raises(ValueError,
                       match=r"CPUs 16,99 are not available; available CPUs: 0-15"):
        affinity.plan(2, [{0, 16}, {99}], topology=two_socket)


@pytest.mark.parametrize("policy, workers", [
    ("compact", 20), ("spread", 17), (range(4), 5), ([{0, 1}, {2}], 4),
    ([0, 0, 1], 3),
])
def test_plan_more_workers_than_cpus_warns_once(two_socket, policy, workers):
    plan, caught = record_warnings(affinity.plan, workers, policy,
                                   topology=two_socket)
    assert len(plan) == workers
    assert len(caught) == 1
    assert "shared round-robin" in str(caught[0].message)
    assert caught[0].filename == __file__
    if policy == "compact":
        assert plan == single(*range(16), 0, 1, 2, 3)


def test_plan_no_warning_when_cpus_suffice(two_socket):
    for policy in ("compact", "spread", [{0, 1}], [3, 4]):
        _, caught = record_warnings(affinity.plan, 2, policy, topology=two_socket)
        assert caught == []


@pytest.mark.parametrize("workers, policy, error, text", [
    (0, "compact", ValueError, "at least 1"),
    (-3, "compact", ValueError, "-3"),
    (1.5, "compact", TypeError, "1.5"),
    (2, "tight", ValueError, "'tight'"),
    (2, 3.5, TypeError, "3.5"),
    (2, None, TypeError, "None"),
    (2, b"compact", TypeError, "bytes"),
    (2, [0, "1"], TypeError, "'1'"),
    (2, [0, 1.0], TypeError, "1.0"),
    (2, [], ValueError, "empty"),
    (2, [set()], ValueError, "empty"),
])
def test_plan_bad_arguments(two_socket, workers, policy, error, text):
    with pytest.raises(error) as info:
        affinity.plan(workers, policy, topology=two_socket)
    assert text in str(info.value)


# --- unsupported platforms --------------------------------------------------

@pytest.fixture
def unsupported(monkeypatch):
    """Simulate a psutil without Process.cpu_affinity (e.g. macOS)."""
    monkeypatch.delattr(psutil.Process, "cpu_affinity")
    assert not affinity.supports_pinning()


@pytest.mark.parametrize("policy", ["compact", "spread"])
@pytest.mark.parametrize("workers", [2, 500])
def test_unsupported_policy_warns_once_and_plans_nothing(unsupported, policy,
                                                         workers):
    plan, caught = record_warnings(affinity.plan, workers, policy)
    assert plan == [None] * workers
    assert len(caught) == 1
    assert "not" in str(caught[0].message) or "cannot" in str(caught[0].message)


def test_unsupported_none_policy_is_silent(unsupported):
    plan, caught = record_warnings(affinity.plan, 2, "none")
    assert plan == [None, None]
    assert caught == []


@pytest.mark.parametrize("policy", [[0], [{0}]])
def test_unsupported_explicit_list_raises(unsupported, policy):
    with pytest.raises(NotImplementedError):
        affinity.plan(2, policy)


def test_unsupported_pin_current_thread_raises(unsupported):
    with pytest.raises(NotImplementedError):
        affinity.pin_current_thread({0})


def test_unsupported_probe_executor_usage(monkeypatch):
    """The executor's calling pattern, with the support probe patched out."""
    monkeypatch.setattr(pinning, "supports_pinning", lambda: False)
    before = affinity.current_thread_affinity()
    cpus_per_worker, caught = record_warnings(affinity.plan, 4, "compact")
    assert len(caught) == 1
    for cpus in cpus_per_worker:
        if cpus is not None:
            affinity.pin_current_thread(cpus)
    assert cpus_per_worker == [None] * 4
    assert affinity.current_thread_affinity() == before
    with pytest.raises(NotImplementedError):
        affinity.plan(4, [min(before)])


# --- pinning real threads ---------------------------------------------------

def proc_cpus_allowed(native_id):
    with open(f"/proc/self/task/{native_id}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return _parse_cpu_list(line.split(":", 1)[1])
    raise AssertionError(f"no Cpus_allowed_list for task {native_id}")


def run_pinned_threads(cpu_sets):
    """Pin one thread per set, all at once; check inside and out.

    Returns, per thread: (result of pin_current_thread, affinity seen from
    inside, affinity seen through /proc while all threads were pinned).
    """
    count = len(cpu_sets)
    pinned = threading.Barrier(count + 1, timeout=60)
    checked = threading.Barrier(count + 1, timeout=60)
    results = [None] * count
    native_ids = [None] * count
    errors = []

    def worker(index):
        try:
            native_ids[index] = threading.get_native_id()
            returned = affinity.pin_current_thread(cpu_sets[index])
            inside = frozenset(os.sched_getaffinity(0))
            results[index] = (returned, inside,
                              affinity.current_thread_affinity())
            pinned.wait()
            checked.wait()
        except BaseException as exc:
            errors.append(exc)
            pinned.abort()
            checked.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        pinned.wait()
        outside = [proc_cpus_allowed(tid) for tid in native_ids]
        checked.wait()
    finally:
        for thread in threads:
            thread.join(timeout=60)
    if errors:
        raise errors[0]
    return [(returned, inside, via_api, seen)
            for (returned, inside, via_api), seen in zip(results, outside)]


@linux_only
@pytest.mark.skipif(not affinity.supports_pinning(), reason="cannot pin threads")
def test_pin_several_threads_at_once():
    available = affinity.available_cpus()
    main_before = affinity.current_thread_affinity()
    main_proc_before = proc_cpus_allowed(threading.get_native_id())
    cpu_sets = [frozenset({cpu}) for cpu in sorted(available)]
    cpu_sets += [frozenset(available), frozenset({max(available)})]

    for expected, (returned, inside, via_api, outside) in zip(
            cpu_sets, run_pinned_threads(cpu_sets)):
        assert returned == inside == via_api == outside == expected

    assert affinity.current_thread_affinity() == main_before
    assert proc_cpus_allowed(threading.get_native_id()) == main_proc_before
    assert affinity.available_cpus() == available


@linux_only
@pytest.mark.skipif(not affinity.supports_pinning(), reason="cannot pin threads")
@pytest.mark.parametrize("policy", ["compact", "spread"])
def test_executor_usage_pins_workers(policy):
    available = affinity.available_cpus()
    main_before = affinity.current_thread_affinity()
    cpus_per_worker = affinity.plan(len(available), policy)
    assert frozenset().union(*cpus_per_worker) == available
    for expected, (returned, inside, _, outside) in zip(
            cpus_per_worker, run_pinned_threads(cpus_per_worker)):
        assert returned == inside == outside == expected
    assert affinity.current_thread_affinity() == main_before


def test_pin_current_thread_rejects_bad_cpus():
    available = affinity.available_cpus()
    bad = max(available) + 1000
    before = affinity.current_thread_affinity()
    if affinity.supports_pinning():
        with pytest.raises(ValueError) as info:
            affinity.pin_current_thread([min(available), bad])
        assert str(bad) in str(info.value)
        assert _format_cpu_list(available) in str(info.value)
    with pytest.raises(ValueError, match="empty"):
        affinity.pin_current_thread([])
    with pytest.raises(TypeError):
        affinity.pin_current_thread("0")
    with pytest.raises(TypeError):
        affinity.pin_current_thread([0.0])
    assert affinity.current_thread_affinity() == before


# --- a process restricted to a subset of CPUs -------------------------------

RESTRICTED_CHILD = textwrap.dedent("""
    import json, os, sys
    if len(sys.argv) > 1:                       # no taskset: restrict self
        os.sched_setaffinity(0, {int(sys.argv[1])})
    import affinity
    try:
        affinity.pin_current_thread({-1})
    except ValueError as exc:
        error = str(exc)
    print(json.dumps({
        "available": sorted(affinity.available_cpus()),
        "topology": list(affinity.cpu_topology().cpus),
        "compact": [sorted(s) for s in affinity.plan(3, "compact")],
        "spread": [sorted(s) for s in affinity.plan(3, "spread")],
        "error": error,
    }))
""")


@linux_only
def test_restricted_process_uses_only_its_cpus():
    available = affinity.available_cpus()
    if len(available) < 2:
        pytest.skip("needs at least 2 CPUs")
    cpu = max(available)
    command = [sys.executable, "-W", "ignore::UserWarning", "-c", RESTRICTED_CHILD]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu)] + command
    else:
        command.append(str(cpu))
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(
                   filter(None, [repo_root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["available"] == [cpu]
    assert report["topology"] == [cpu]
    assert report["compact"] == [[cpu]] * 3
    assert report["spread"] == [[cpu]] * 3
    assert f"available CPUs: {cpu}" in report["error"]
