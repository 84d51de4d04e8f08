"""What `fedtwin stack status` says for each combination of reachable and started-by-fedtwin."""

from __future__ import annotations

import pytest

from fedtwin.adapters.stack import ServiceStatus, describe


@pytest.mark.parametrize(
    ("reachable", "ours", "pid", "expected"),
    [
        (True, True, 42, "up       started by fedtwin (pid 42)"),
        (False, True, 42, "DOWN     started by fedtwin (pid 42) but not answering"),
        (True, False, None, "up       external (reused, not managed)"),
        (False, False, None, "stopped"),
    ],
)
def test_describe(reachable: bool, ours: bool, pid: int | None, expected: str) -> None:
    assert describe(ServiceStatus("redis", "redis://127.0.0.1:1/0", reachable, ours, pid)) == expected


def test_only_this_machines_addresses_count_as_local() -> None:
    from fedtwin.adapters.stack import is_local_address

    assert is_local_address("127.0.0.1") and is_local_address("localhost")
    assert not is_local_address("192.0.2.1")  # TEST-NET-1: never this machine's address
    assert not is_local_address("no-such-host.invalid")
