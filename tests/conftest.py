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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="tests/test_random_specs.py: thousands of random programs")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")


@pytest.fixture
def float64_default():
    """float64 as torch's default dtype for one test (``pytest.mark.usefixtures``)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
