"""Shared fixtures for the tests of the low-level parts (atomics, Mpmc, local queues).

Nothing here is autouse: a test gets these only by asking for them.
"""

from __future__ import annotations

import threading
import time

import pytest

from executor.atomics import BACKENDS

#: Wall-clock limit of one concurrency test. Generous: it only turns a hang
#: (a lost item, a livelock) into a failure; tests never assert on speed.
DEADLINE_S = 60.0
#: How long threads that missed the deadline get to notice it and stop.
GRACE_S = 5.0


class ThreadGroup:
    """Runs callables in threads that start together and must finish by a deadline.

    Loops inside the threads should test :meth:`running` so that they give up
    when the deadline passes or another thread of the group has failed.
    """

    def __init__(self, timeout: float = DEADLINE_S) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.failed = threading.Event()
        self.errors: list[BaseException] = []

    def running(self) -> bool:
        """True while no thread has failed and the deadline has not passed."""
        return not self.failed.is_set() and time.monotonic() < self.deadline

    def run(self, *targets) -> None:
        """Run each target in its own thread, join them all, re-raise the first error."""
        barrier = threading.Barrier(len(targets))

        def body(fn):
            try:
                barrier.wait(self.timeout)
                fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                self.errors.append(exc)
                self.failed.set()

        threads = [threading.Thread(target=body, args=(fn,), daemon=True,
                                    name=f"test-{getattr(fn, '__name__', 'fn')}-{i}")
                   for i, fn in enumerate(targets)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, self.deadline - time.monotonic()))
        late = [t.name for t in threads if t.is_alive()]
        if late:
            self.failed.set()  # ask the stragglers to stop, give them a moment
            for t in threads:
                t.join(GRACE_S)
        if self.errors:
            raise self.errors[0]
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, f"threads stuck (not even stopping) after {self.timeout} s: {alive}"
        assert not late, f"threads did not finish within {self.timeout} s: {late}"
        assert time.monotonic() < self.deadline, f"did not finish within {self.timeout} s"


@pytest.fixture
def threads() -> ThreadGroup:
    """A fresh :class:`ThreadGroup` with the default deadline."""
    return ThreadGroup()


@pytest.fixture(params=sorted(BACKENDS))
def atomics_backend(request) -> str:
    """Name of each importable atomics backend in turn ("cereggii", "python")."""
    return request.param
