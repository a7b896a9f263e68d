"""Atomic integers built on one primitive: compare-and-swap.

Every read-modify-write operation of :class:`AtomicInt` (``fetch_add``,
``fetch_sub``, ``fetch_or``, ``fetch_and``, ``swap``) is written once, in
:func:`_cas_ops`, as a retry loop over ``compare_and_swap``::

    while True:
        old = self.load()
        if self.compare_and_swap(old, f(old)):
            return old

The loop is correct for any backend whose ``load``/``store``/``compare_and_swap``
are linearizable: a CAS succeeds only if nobody changed the value since our
``load``, so ``f`` is applied to exactly the value it replaces; a failed CAS
means another thread made progress, so the loop is lock-free whenever the
primitive is.

Two backends provide the primitive behind the same API:

``"cereggii"``
    The hardware CAS of the ``cereggii`` package (``AtomicInt64``, a C type,
    installed by the ``atomics`` extra). ``AtomicInt`` *subclasses* it and binds
    ``load``/``store``/``compare_and_swap`` straight to its C methods, so a hot
    path pays one C call per operation and no Python frame. Values are 64-bit
    signed integers.

``"python"``
    A portable emulation: the value lives in a plain attribute and every
    *write* (``store`` and the CAS) happens under a per-object
    ``threading.Lock``. A read is a single attribute load, which is atomic on
    free-threaded CPython (objects are read with atomic pointer loads and ints
    are immutable), so it returns some value that was stored, never a torn one.
    ``store`` takes the lock too: a lock-free store could land between a CAS's
    comparison and its write and be lost, which would not be linearizable.

The default is the faster backend that is importable: ``cereggii`` when it is
installed (measured by ``scripts/atomics_bench.py``: 1.7x to 5.7x faster per
operation on 3.13t), else ``python``. ``WSEXEC_ATOMICS=python`` (or
``cereggii``) in the environment forces a choice at import time.
:data:`BACKEND` names the active one and :func:`atomic_int_class` returns either
class for tests and benchmarks.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

__all__ = ["AtomicInt", "BACKEND", "BACKENDS", "atomic_int_class"]


def _cas_ops(load: Callable, cas: Callable) -> tuple:
    """The read-modify-write operations, each a CAS retry loop over ``load`` and
    ``cas``: a backend's *unbound* ``load(self)`` and ``compare_and_swap(self,
    expected, new)``.

    Calling the unbound functions, instead of binding ``self.load`` and
    ``self.compare_and_swap`` first, saves two attribute lookups and two
    bound-method objects per call (``scripts/atomics_bench.py`` measures
    ``fetch_add``). A backend's class body takes them as
    ``fetch_add, fetch_sub, fetch_or, fetch_and, swap, fetch_update = _cas_ops(...)``.
    """

    def fetch_add(self, delta: int) -> int:
        """Add ``delta``; return the previous value."""
        while True:
            old = load(self)
            if cas(self, old, old + delta):
                return old

    def fetch_sub(self, delta: int) -> int:
        """Subtract ``delta``; return the previous value."""
        while True:
            old = load(self)
            if cas(self, old, old - delta):
                return old

    def fetch_or(self, bits: int) -> int:
        """Set ``bits``; return the previous value."""
        while True:
            old = load(self)
            if cas(self, old, old | bits):
                return old

    def fetch_and(self, mask: int) -> int:
        """Keep only the bits of ``mask``; return the previous value."""
        while True:
            old = load(self)
            if cas(self, old, old & mask):
                return old

    def swap(self, new: int) -> int:
        """Store ``new``; return the previous value."""
        while True:
            old = load(self)
            if cas(self, old, new):
                return old

    def fetch_update(self, fn: Callable[[int], int]) -> int:
        """Atomically replace the value ``v`` with ``fn(v)``; return ``v``.

        ``fn`` may be called several times (once per lost race): keep it pure.
        """
        while True:
            old = load(self)
            if cas(self, old, fn(old)):
                return old

    return fetch_add, fetch_sub, fetch_or, fetch_and, swap, fetch_update


def _repr(self) -> str:
    return f"{type(self).__name__}({self.load()})"


class PyAtomicInt:
    """Pure-Python ``AtomicInt``: writes under a per-object lock (see module doc)."""

    __slots__ = ("_value", "_lock")

    def __init__(self, value: int = 0) -> None:
        if not isinstance(value, int):
            raise TypeError(f"AtomicInt needs an int, got {type(value).__name__}")
        self._value = value
        self._lock = threading.Lock()

    def load(self) -> int:
        """Return the current value (a single atomic attribute read)."""
        return self._value

    def store(self, value: int) -> None:
        """Set the value (under the lock, so it orders with CAS)."""
        if type(value) is not int and not isinstance(value, int):
            raise TypeError(f"AtomicInt needs an int, got {type(value).__name__}")
        with self._lock:
            self._value = value

    def compare_and_swap(self, expected: int, new: int) -> bool:
        """If the value equals ``expected``, set it to ``new``; say whether it did."""
        if type(new) is not int and not isinstance(new, int):
            raise TypeError(f"AtomicInt needs an int, got {type(new).__name__}")
        with self._lock:
            if self._value == expected:
                self._value = new
                return True
            return False

    fetch_add, fetch_sub, fetch_or, fetch_and, swap, fetch_update = \
        _cas_ops(load, compare_and_swap)
    __repr__ = _repr


def _make_cereggii_class() -> type | None:
    try:
        import cereggii
    except ImportError:
        return None

    class CereggiiAtomicInt(cereggii.AtomicInt64):
        """``AtomicInt`` on cereggii's hardware CAS (``AtomicInt64``, 64-bit)."""

        __slots__ = ()

        # Bind the API straight to the C methods: no Python frame per call.
        load = cereggii.AtomicInt64.get
        store = cereggii.AtomicInt64.set
        compare_and_swap = cereggii.AtomicInt64.compare_and_set

        fetch_add, fetch_sub, fetch_or, fetch_and, swap, fetch_update = \
            _cas_ops(load, compare_and_swap)

        # cereggii's own __init__ (C) rejects non-ints with TypeError and
        # values outside 64 bits with OverflowError.

        __repr__ = _repr

    return CereggiiAtomicInt


_CereggiiAtomicInt = _make_cereggii_class()

#: Every backend importable here, by name.
BACKENDS: dict[str, type] = {"python": PyAtomicInt}
if _CereggiiAtomicInt is not None:
    BACKENDS["cereggii"] = _CereggiiAtomicInt


def _choose_backend() -> str:
    forced = os.environ.get("WSEXEC_ATOMICS", "").strip().lower()
    if forced:
        if forced not in ("python", "cereggii"):
            raise ValueError(f"WSEXEC_ATOMICS must be 'python' or 'cereggii', not {forced!r}")
        if forced not in BACKENDS:
            raise ImportError("WSEXEC_ATOMICS=cereggii but cereggii is not installed "
                              "(pip install 'wsexec[atomics]')")
        return forced
    return "cereggii" if "cereggii" in BACKENDS else "python"


#: Name of the active backend: ``"cereggii"`` or ``"python"``.
BACKEND: str = _choose_backend()

#: The atomic integer class of the active backend.
AtomicInt: type = BACKENDS[BACKEND]


def atomic_int_class(backend: str | None = None) -> type:
    """Return the ``AtomicInt`` class of ``backend`` (default: the active one)."""
    if backend is None:
        return AtomicInt
    try:
        return BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown or unavailable atomics backend {backend!r}; "
                         f"available: {sorted(BACKENDS)}") from None
