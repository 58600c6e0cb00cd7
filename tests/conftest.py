"""Shared pytest configuration: the ``gpu`` marker, and Triton's CPU interpreter.

``TRITON_INTERPRET`` is read when triton is first imported, and several test modules import
it (the gallery, the Triton tests): set it here, before any of them, unless a GPU is present.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Under pytest-xdist (``-n 2``: one worker per core) each worker keeps to one torch thread:
# two workers of two threads each on two cores ran some steps many times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="tests/test_random_specs.py: thousands of random programs")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")


# The suite compiles C kernels at -O0 (same source, same numbers to rounding), which builds a
# large layer in seconds, not minutes. It is set in the environment, so that the suite's
# subprocesses build at -O0 too; tests/test_cbackend.py::test_o3_build_matches_einsum builds at
# -O3 as users do (it asks for the ``o3_build`` fixture).
os.environ.setdefault("FUSIONDSL_CFLAGS", "-O0")


@pytest.fixture
def o3_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build C kernels with the flags users get (``-O3``) in one test."""
    monkeypatch.setenv("FUSIONDSL_CFLAGS", "-O3")


@pytest.fixture
def float64_default():
    """float64 as torch's default dtype for one test (``pytest.mark.usefixtures``)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
