"""The test-suite's own guards work: ``no_network`` really refuses a connection, so tests that
use it to prove "no network call" cannot pass because nothing was checked."""

from __future__ import annotations

import pytest
import requests


def test_no_network_refuses_a_connection(no_network) -> None:
    with pytest.raises(AssertionError, match="network call"):
        requests.get("http://127.0.0.1:9/", timeout=1)


def test_without_the_guard_the_same_call_reaches_the_socket() -> None:
    with pytest.raises(requests.ConnectionError):  # nothing listens on the discard port
        requests.get("http://127.0.0.1:9/", timeout=1)
