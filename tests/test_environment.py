"""The interpreter the suite runs on, and the package surface."""

import os
import sys

import pytest

import affinity
import executor


@pytest.mark.skipif(os.environ.get("WSEXEC_ALLOW_GIL") == "1",
                    reason="WSEXEC_ALLOW_GIL=1: running on purpose on a GIL build")
def test_gil_is_disabled():
    """The suite must run on free-threaded CPython; passing on a GIL build by accident is
    impossible unless WSEXEC_ALLOW_GIL=1 says it is on purpose (see README)."""
    assert hasattr(sys, "_is_gil_enabled"), "not CPython 3.13+: no sys._is_gil_enabled()"
    assert sys._is_gil_enabled() is False, "the GIL is enabled: run the tests on python3.13t"


def test_public_api_is_exported_and_documented():
    for name in executor.__all__:
        obj = getattr(executor, name)
        if callable(obj) and not isinstance(obj, int):
            assert obj.__doc__, f"executor.{name} has no docstring"
    for name in affinity.__all__:
        assert getattr(affinity, name) is not None


def test_packages_ship_py_typed():
    for pkg in (executor, affinity):
        assert os.path.exists(os.path.join(os.path.dirname(pkg.__file__), "py.typed"))
