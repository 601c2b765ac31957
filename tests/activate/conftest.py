"""Fixtures of the conversion sync tests: a running receiver that imitates the platforms."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.activate.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Yield a receiver serving on a free ``127.0.0.1`` port; it stops after the test."""
    with Receiver().running() as served:
        yield served
