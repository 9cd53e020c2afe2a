"""Fixtures of the active-learning tests: one torch thread, backends reset after each test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run on one thread: on two shared cores, two threads made e3nn models ~15x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sevennet32():
    """Real SevenNet-0 in float32 (fine-tuning steps are ~3x cheaper than in float64)."""
    from fntk.models import load_backend

    return load_backend("sevennet-0", device="cpu", dtype=torch.float32)


@pytest.fixture
def sevennet(sevennet32):
    """SevenNet-0, back at its pretrained weights after the test."""
    yield sevennet32
    sevennet32.restore_pretrained()


@pytest.fixture
def mace(mace64):
    """The small MACE model of the shared conftest, back at its initial weights after the test."""
    yield mace64
    mace64.restore_pretrained()
