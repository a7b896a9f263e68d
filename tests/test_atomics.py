"""Tests for executor.atomics: both backends, single-threaded and under contention.

Every test runs once per backend (the ``atomics_backend`` fixture of conftest.py
yields "cereggii" and "python"). Backend selection through ``WSEXEC_ATOMICS``
happens at import time, so it is tested in fresh interpreters.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from executor import atomics
from executor.atomics import BACKENDS, atomic_int_class

REPO = Path(__file__).resolve().parent.parent

THREADS = 8
PER_THREAD = 10_000

#: The 64 bits of a signed 64-bit word; bit 63 is the sign bit.
BITS = [1 << i for i in range(63)] + [-(1 << 63)]


@pytest.fixture
def A(atomics_backend):
    """The AtomicInt class of the backend under test."""
    return atomic_int_class(atomics_backend)


# --- single-threaded semantics ---------------------------------------------

def test_load_store_and_default(A):
    """A new atomic holds its initial value (0 by default); store replaces it."""
    assert A().load() == 0
    a = A(7)
    assert a.load() == 7
    assert a.store(-3) is None
    assert a.load() == -3


def test_compare_and_swap(A):
    """CAS writes only when the expected value matches, and says whether it wrote."""
    a = A(5)
    assert a.compare_and_swap(4, 10) is False
    assert a.load() == 5
    assert a.compare_and_swap(5, 10) is True
    assert a.load() == 10
    assert a.compare_and_swap(5, 11) is False
    assert a.load() == 10


@pytest.mark.parametrize("op, start, arg, old, new", [
    ("fetch_add", 10, 5, 10, 15),
    ("fetch_add", 10, -15, 10, -5),
    ("fetch_sub", 10, 3, 10, 7),
    ("fetch_sub", 0, 1, 0, -1),
    ("fetch_or", 0b1010, 0b0101, 0b1010, 0b1111),
    ("fetch_or", 0b1010, 0b0010, 0b1010, 0b1010),
    ("fetch_and", 0b1110, 0b0111, 0b1110, 0b0110),
    ("fetch_and", -1, 0xFF, -1, 0xFF),
    ("swap", 3, 99, 3, 99),
])
def test_read_modify_write_returns_previous(A, op, start, arg, old, new):
    """Each fetch_*/swap returns the value before the update and leaves the updated one."""
    a = A(start)
    assert getattr(a, op)(arg) == old
    assert a.load() == new


def test_fetch_update(A):
    """fetch_update applies the function to the current value and returns the old one."""
    a = A(6)
    assert a.fetch_update(lambda v: v * 7) == 6
    assert a.load() == 42
    assert a.fetch_update(lambda v: v) == 42
    assert a.load() == 42


def test_repr(A):
    """repr shows the class and the current value."""
    assert repr(A(12)) == f"{A.__name__}(12)"


@pytest.mark.parametrize("bad", [1.5, "1", None, [1]])
def test_constructor_rejects_non_int(A, bad):
    """Constructing from something that is not an int raises TypeError."""
    with pytest.raises(TypeError):
        A(bad)


@pytest.mark.parametrize("bad", [1.5, "1", None])
def test_read_modify_write_rejects_non_int_operand(A, bad):
    """fetch_add/fetch_or with a non-int operand raise TypeError and leave the value alone
    (for these operands ``old + bad`` / ``old | bad`` already fail)."""
    a = A(5)
    if not isinstance(bad, float):
        with pytest.raises(TypeError):
            a.fetch_add(bad)
    with pytest.raises(TypeError):
        a.fetch_or(bad)
    assert a.load() == 5


@pytest.mark.parametrize("backend", ["python", "cereggii"])
@pytest.mark.parametrize("write", [
    lambda a: a.store(1.5),
    lambda a: a.compare_and_swap(5, "x"),
    lambda a: a.fetch_add(1.5),
    lambda a: a.swap(None),
], ids=["store", "compare_and_swap", "fetch_add_float", "swap"])
def test_writes_reject_non_int(backend, write):
    """Writing a non-int raises TypeError and the atomic keeps its int value,
    the same on both backends (both are "the same API")."""
    if backend not in BACKENDS:
        pytest.skip(f"{backend} backend not installed")
    a = atomic_int_class(backend)(5)
    with pytest.raises(TypeError):
        write(a)
    assert a.load() == 5


def test_sign_bit_as_negative_int(A):
    """Bit 63 is handled as the signed value -(1 << 63): fetch_or sets it, fetch_and
    with its complement clears it, and all 64 bits set read back as -1."""
    top = -(1 << 63)
    a = A(0)
    assert a.fetch_or(top) == 0
    assert a.load() == top
    assert a.fetch_or(1) == top
    assert a.load() == top | 1
    assert a.fetch_and(~top) == top | 1
    assert a.load() == 1
    for bit in BITS:
        a.fetch_or(bit)
    assert a.load() == -1


def test_cereggii_rejects_values_outside_64_bits():
    """The cereggii backend is 64-bit signed: out-of-range values raise OverflowError,
    including an unsigned-style bit 63 (1 << 63), and a failed update changes nothing."""
    if "cereggii" not in BACKENDS:
        pytest.skip("cereggii not installed")
    C = atomic_int_class("cereggii")
    for bad in (1 << 63, -(1 << 63) - 1):
        with pytest.raises(OverflowError):
            C(bad)
    a = C(0)
    with pytest.raises(OverflowError):
        a.store(1 << 63)
    with pytest.raises(OverflowError):
        a.fetch_or(1 << 63)
    assert a.load() == 0
    a.store((1 << 63) - 1)
    with pytest.raises(OverflowError):
        a.fetch_add(1)
    assert a.load() == (1 << 63) - 1
    a.store(-(1 << 63))
    with pytest.raises(OverflowError):
        a.fetch_sub(1)
    assert a.load() == -(1 << 63)


# --- backend selection -------------------------------------------------------

def test_backend_registry():
    """BACKEND is one of BACKENDS, AtomicInt is its class, and the default (no
    WSEXEC_ATOMICS) is cereggii whenever cereggii is importable."""
    assert set(BACKENDS) <= {"python", "cereggii"}
    assert BACKENDS["python"] is atomics.PyAtomicInt
    assert atomics.BACKEND in BACKENDS
    assert atomics.AtomicInt is BACKENDS[atomics.BACKEND]
    assert atomic_int_class() is atomics.AtomicInt
    assert atomic_int_class("python") is atomics.PyAtomicInt
    if not os.environ.get("WSEXEC_ATOMICS"):
        expected = "cereggii" if "cereggii" in BACKENDS else "python"
        assert atomics.BACKEND == expected


def test_unknown_backend_name():
    """atomic_int_class rejects a name that is not an available backend."""
    with pytest.raises(ValueError, match="unknown or unavailable"):
        atomic_int_class("rust")


def _import_atomics(env_value):
    """Import executor.atomics in a fresh interpreter with WSEXEC_ATOMICS set to
    ``env_value`` (None: unset); return the CompletedProcess."""
    env = dict(os.environ)
    env.pop("WSEXEC_ATOMICS", None)
    if env_value is not None:
        env["WSEXEC_ATOMICS"] = env_value
    code = ("import executor.atomics as a; "
            "print(a.BACKEND, a.AtomicInt.__name__, sorted(a.BACKENDS))")
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_env_default_backend():
    """With WSEXEC_ATOMICS unset (or empty) a fresh import picks cereggii if installed."""
    for value in (None, ""):
        proc = _import_atomics(value)
        assert proc.returncode == 0, proc.stderr
        backend, cls, *_ = proc.stdout.split()
        assert backend == ("cereggii" if "cereggii" in BACKENDS else "python")
        assert cls == BACKENDS[backend].__name__


@pytest.mark.parametrize("value", ["python", " Python "])
def test_env_forces_python(value):
    """WSEXEC_ATOMICS=python (case and surrounding spaces ignored) forces the
    pure-Python backend even when cereggii is installed."""
    proc = _import_atomics(value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["python", "PyAtomicInt"]


def test_env_forces_cereggii():
    """WSEXEC_ATOMICS=cereggii selects cereggii when it is installed."""
    if "cereggii" not in BACKENDS:
        pytest.skip("cereggii not installed")
    proc = _import_atomics("cereggii")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["cereggii", "CereggiiAtomicInt"]


def test_env_bad_value_fails_import():
    """Any other WSEXEC_ATOMICS value makes the import fail with ValueError."""
    proc = _import_atomics("rust")
    assert proc.returncode != 0
    assert "ValueError" in proc.stderr
    assert "WSEXEC_ATOMICS" in proc.stderr


# --- concurrency -------------------------------------------------------------

def test_concurrent_fetch_add_is_exact_and_linearizable(A, threads):
    """THREADS threads x PER_THREAD fetch_add(1): the total is exact and the values
    returned are exactly 0..N-1, each once (every increment saw a distinct value)."""
    a = A(0)
    seen = [[] for _ in range(THREADS)]

    def adder(out):
        def run():
            fetch_add = a.fetch_add
            out.extend(fetch_add(1) for _ in range(PER_THREAD))
        return run

    threads.run(*(adder(out) for out in seen))
    total = THREADS * PER_THREAD
    assert a.load() == total
    olds = sorted(v for out in seen for v in out)
    assert olds == list(range(total))
    for out in seen:  # one thread's increments happen in its program order
        assert out == sorted(out)


def test_concurrent_fetch_sub_and_fetch_update(A, threads):
    """Concurrent fetch_sub(1) and fetch_update(v - 2) from many threads lose no update."""
    total = THREADS * PER_THREAD
    a = A(total * 3 // 2)

    def sub():
        for _ in range(PER_THREAD):
            a.fetch_sub(1)

    def update():
        for _ in range(PER_THREAD // 2):
            a.fetch_update(lambda v: v - 2)

    threads.run(*([sub] * (THREADS // 2) + [update] * (THREADS // 2)))
    assert a.load() == total * 3 // 2 - total


def test_concurrent_cas_counter(A, threads):
    """A counter incremented by hand-written load/CAS retry loops from many threads is
    exact: a CAS succeeds only against the current value."""
    a = A(0)
    failures = A(0)

    def incr():
        load, cas = a.load, a.compare_and_swap
        for _ in range(PER_THREAD):
            while True:
                v = load()
                if cas(v, v + 1):
                    break
                failures.fetch_add(1)

    threads.run(*([incr] * THREADS))
    assert a.load() == THREADS * PER_THREAD
    assert failures.load() >= 0  # contention may or may not have happened


def test_concurrent_fetch_or_and_fetch_and_of_distinct_bits(A, threads):
    """8 threads set 8 distinct bits each (all 64, sign bit included) with fetch_or:
    every bit ends up set (value -1) and no thread saw its bit already set; then
    they clear them with fetch_and: the value ends at 0."""
    a = A(0)
    groups = [BITS[i::THREADS] for i in range(THREADS)]

    def setter(bits):
        def run():
            for bit in bits:
                assert a.fetch_or(bit) & bit == 0
        return run

    threads.run(*(setter(g) for g in groups))
    assert a.load() == -1

    def clearer(bits):
        def run():
            for bit in bits:
                assert a.fetch_and(~bit) & bit == bit
        return run

    threads.run(*(clearer(g) for g in groups))
    assert a.load() == 0


def test_concurrent_fetch_or_many_rounds(A, threads):
    """Repeated rounds of concurrent fetch_or: each round ends with all bits set."""
    for _ in range(20):
        a = A(0)
        threads.run(*(lambda b=bit: a.fetch_or(b) for bit in BITS[:THREADS]))
        assert a.load() == (1 << THREADS) - 1


def test_concurrent_swap_chain(A, threads):
    """Threads swap in unique values; the values returned by all swaps plus the final
    value are exactly the initial value and every value swapped in, each once."""
    a = A(0)
    per_thread = 2_000
    olds = [[] for _ in range(THREADS)]

    def swapper(tid, out):
        def run():
            swap = a.swap
            base = tid * per_thread + 1
            out.extend(swap(base + i) for i in range(per_thread))
        return run

    threads.run(*(swapper(t, out) for t, out in enumerate(olds)))
    everything = sorted([v for out in olds for v in out] + [a.load()])
    assert everything == list(range(THREADS * per_thread + 1))
