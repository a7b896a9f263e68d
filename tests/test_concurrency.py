"""Concurrency tests of the whole executor: many workers, tens of thousands of tasks
with random yields, tasks awaiting tasks, spawns from inside tasks and from several
outside threads at once, cross-thread wake-ups. Every task body must run exactly
once to completion, every handle must resolve, and the registry must end empty.
Every wait has a deadline, so a lost wake-up fails the test instead of hanging it."""

from __future__ import annotations

import contextlib
import random
import threading
import time

import pytest

import executor
from executor import Event, Executor, yield_now

DEADLINE = 90  # seconds for a whole scenario


@contextlib.contextmanager
def running(*args, **kwargs):
    """An Executor that, if the test fails, cancels what is left instead of waiting
    for tasks that may be stuck (a plain ``with`` would wait for them forever)."""
    ex = Executor(*args, **kwargs)
    try:
        yield ex
    except BaseException:
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)


def _wait_all(handles, deadline):
    out = []
    for h in handles:
        left = deadline - time.monotonic()
        assert left > 0, "deadline passed: some task is stuck"
        out.append(h.result(timeout=left))
    return out


@pytest.mark.parametrize("workers", [4, 1])
@pytest.mark.parametrize("stealing", [True, False], ids=["stealing", "global-only"])
def test_many_tasks_random_yields_joins_and_spawns_from_many_threads(stealing, workers):
    """4 workers (and 1, which keeps no local queue); 4 outside threads spawn 5,000
    tasks each at once; a third of the tasks spawn a child from inside and await
    it; all yield a random number of times."""
    n_threads, per_thread = 4, 5000
    started = [0] * (n_threads * per_thread)
    finished = [0] * (n_threads * per_thread)
    child_runs = [0] * (n_threads * per_thread)
    deadline = time.monotonic() + DEADLINE

    async def child(i, k):
        for _ in range(k):
            await yield_now()
        child_runs[i] += 1
        return i

    async def body(i, k):
        started[i] += 1
        for _ in range(k):
            await yield_now()
        if i % 3 == 0:
            assert await executor.spawn(child(i, k % 4)) == i
        finished[i] += 1
        return i * 2

    with running(workers, work_stealing=stealing) as ex:
        handles: list = [None] * n_threads
        barrier = threading.Barrier(n_threads)

        def producer(t):
            rnd = random.Random(t)
            barrier.wait()
            base = t * per_thread
            handles[t] = [ex.spawn(body(base + j, rnd.randrange(0, 8)))
                          for j in range(per_thread)]

        threads = [threading.Thread(target=producer, args=(t,)) for t in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=DEADLINE)
        all_handles = [h for hs in handles for h in hs]
        results = _wait_all(all_handles, deadline)
        assert results == [2 * i for i in range(n_threads * per_thread)]
        assert started == [1] * len(started), "a task body started twice or never"
        assert finished == [1] * len(finished), "a task body did not run exactly once"
        assert child_runs == [1 if i % 3 == 0 else 0 for i in range(len(child_runs))]
        # Finished tasks leave the registry.
        assert ex.stats()["live_tasks"] == 0
        polls = sum(w["polls"] for w in ex.stats()["workers"])
        assert polls >= len(all_handles)


@pytest.mark.parametrize("stealing", [True, False], ids=["stealing", "global-only"])
def test_cross_thread_wakeups_events_set_by_tasks_and_threads(stealing):
    """Chains of tasks parked on events that other tasks (on any worker) or outside
    threads set at random moments: no wake-up may be lost."""
    n = 3000
    events = [Event() for _ in range(n)]
    woke = [0] * n
    deadline = time.monotonic() + DEADLINE

    async def waiter(i):
        await events[i].wait()
        woke[i] += 1
        # Odd i wake the next (even) one from inside a task, on any worker.
        if i + 1 < n and i % 2 == 1:
            for _ in range(i % 3):
                await yield_now()
            events[i + 1].set()
        return i

    with running(3, work_stealing=stealing) as ex:
        handles = [ex.spawn(waiter(i)) for i in range(n)]

        def setter(offset):
            rnd = random.Random(offset)
            for i in range(offset, n, 4):
                if i % 2 == 1 or i == 0:  # the odd ones (and 0) from outside
                    if rnd.random() < 0.1:
                        time.sleep(0)
                    events[i].set()

        threads = [threading.Thread(target=setter, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=DEADLINE)
        assert _wait_all(handles, deadline) == list(range(n))
        assert woke == [1] * n
        assert ex.stats()["live_tasks"] == 0


@pytest.mark.parametrize("stealing", [True, False], ids=["stealing", "global-only"])
def test_ping_pong_pairs(stealing):
    """Pairs of tasks hand a ball back and forth through events, 200 round trips each."""
    rounds, pairs = 200, 40
    deadline = time.monotonic() + DEADLINE

    async def player(mine, theirs, serve):
        for r in range(rounds):
            if serve:
                theirs[r].set()
                await mine[r].wait()
            else:
                await mine[r].wait()
                theirs[r].set()
        return rounds

    with running(2, work_stealing=stealing) as ex:
        handles = []
        for _ in range(pairs):
            a = [Event() for _ in range(rounds)]
            b = [Event() for _ in range(rounds)]
            handles.append(ex.spawn(player(a, b, True)))
            handles.append(ex.spawn(player(b, a, False)))
        assert _wait_all(handles, deadline) == [rounds] * (2 * pairs)


@pytest.mark.parametrize("stealing", [True, False], ids=["stealing", "global-only"])
def test_many_joiners_race_with_completion(stealing):
    """Tasks that finish at random moments while other tasks and outside threads
    join them: every joiner is released exactly once."""
    n = 2000
    deadline = time.monotonic() + DEADLINE

    async def target(i):
        for _ in range(i % 5):
            await yield_now()
        return i

    async def joiner(h):
        return await h

    with running(3, work_stealing=stealing) as ex:
        targets = [ex.spawn(target(i)) for i in range(n)]
        joiners = [ex.spawn(joiner(h)) for h in targets for _ in range(2)]
        outside: list = []

        def outside_join(k):
            outside.append(sum(h.result(timeout=DEADLINE) for h in targets[k::4]))

        threads = [threading.Thread(target=outside_join, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        assert _wait_all(joiners, deadline) == [i for i in range(n) for _ in range(2)]
        for t in threads:
            t.join(timeout=DEADLINE)
        assert sum(outside) == sum(range(n))


def test_cancel_storm_while_running():
    """Cancel half of many yielding tasks from an outside thread while they run:
    each ends either cancelled or with its result, never stuck or run twice."""
    n = 4000
    runs = [0] * n
    deadline = time.monotonic() + DEADLINE

    async def body(i):
        runs[i] += 1
        for _ in range(20):
            await yield_now()
        return i

    with running(2) as ex:
        hs = [ex.spawn(body(i)) for i in range(n)]
        for h in hs[::2]:
            h.cancel()
        for i, h in enumerate(hs):
            try:
                assert h.result(timeout=max(0.001, deadline - time.monotonic())) == i
            except executor.task.CancelledError:
                assert i % 2 == 0
        assert all(r <= 1 for r in runs)
        assert all(runs[i] == 1 for i in range(1, n, 2))
        assert ex.stats()["live_tasks"] == 0


def test_the_concurrency_suite_passes_on_the_pure_python_atomics_backend():
    """The executor runs on whichever AtomicInt backend is active; run this file's
    scenarios again in a subprocess forced onto the pure-Python emulation."""
    import os
    import subprocess
    import sys

    if os.environ.get("WSEXEC_ATOMICS") == "python":
        pytest.skip("already running on the python backend")
    env = dict(os.environ, WSEXEC_ATOMICS="python")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
         "-k", "not pure_python_atomics"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "passed" in proc.stdout
