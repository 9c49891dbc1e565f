"""One translator turns operating-system errors into ours (``errors.from_os_error``)."""

from __future__ import annotations

import errno
import os

import pytest

from pacsbridge.errors import PeerRefused, StorageFull, from_os_error


def _raised(make) -> BaseException:  # noqa: ANN001
    try:
        make()
    except BaseException as error:  # noqa: BLE001 - the test keeps what was raised
        return error
    raise AssertionError("nothing raised")


def _rewrapped_write_error() -> None:
    """As pydicom does: the write error is re-raised as another type; errno only in the chain."""
    try:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/media/ROSSI MARIO/IM0001")
    except OSError as error:
        raise ValueError("write failed") from error


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_becomes_storage_full_without_the_path(code: int) -> None:
    error = OSError(code, os.strerror(code), "/media/ROSSI MARIO/IM0001")
    found = from_os_error(error)
    assert isinstance(found, StorageFull) and found.retriable
    assert "ROSSI" not in found.detail and found.detail == "OSError"


def test_a_full_disk_found_deep_in_the_chain_becomes_storage_full() -> None:
    found = from_os_error(_raised(_rewrapped_write_error))
    assert isinstance(found, StorageFull)
    assert "ROSSI" not in str(found.as_dict())


def test_other_os_errors_are_not_ours_to_name() -> None:
    assert from_os_error(PermissionError(errno.EACCES, "denied", "/x")) is None
    assert from_os_error(ValueError("no errno at all")) is None


def test_our_errors_pass_unchanged() -> None:
    ours = PeerRefused("association rejected", peer="PACS")
    assert from_os_error(ours) is ours
