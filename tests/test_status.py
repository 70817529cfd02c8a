"""The state machine, exhaustively: every (current, reported) pair and every local move."""

from __future__ import annotations

import itertools

import pytest

from tapestry_media.status import (
    LOCAL_MOVES,
    REMOTE,
    TERMINAL,
    Status,
    can_apply_remote,
    can_move_locally,
    normalize,
)

ORDER = [Status.CREATED, Status.SUBMITTING, Status.PENDING, Status.PROCESSING]


def expected_remote(current: Status, reported: Status) -> bool:
    if current in TERMINAL or reported not in REMOTE:
        return False
    if reported in TERMINAL:
        return True
    return ORDER.index(reported) > ORDER.index(current)


@pytest.mark.parametrize(("current", "reported"), list(itertools.product(Status, Status)))
def test_remote_reports_only_move_forward(current: Status, reported: Status) -> None:
    assert can_apply_remote(current, reported) is expected_remote(current, reported)


@pytest.mark.parametrize("current", list(Status))
def test_unknown_status_never_moves(current: Status) -> None:
    assert can_apply_remote(current, None) is False


def test_late_processing_never_overwrites_succeeded() -> None:
    assert not can_apply_remote(Status.SUCCEEDED, Status.PROCESSING)
    assert not can_apply_remote(Status.SUCCEEDED, Status.FAILED)
    assert can_apply_remote(Status.PROCESSING, Status.SUCCEEDED)  # positive control


@pytest.mark.parametrize(("current", "new"), list(itertools.product(Status, Status)))
def test_local_moves_are_exactly_the_table(current: Status, new: Status) -> None:
    allowed = {
        (Status.CREATED, Status.SUBMITTING),
        (Status.CREATED, Status.SUPERSEDED),
        (Status.SUBMITTING, Status.CREATED),
        (Status.SUBMITTING, Status.PENDING),
        (Status.SUBMITTING, Status.FAILED),
        (Status.SUBMITTING, Status.SUPERSEDED),
        (Status.PENDING, Status.SUPERSEDED),
        (Status.PROCESSING, Status.SUPERSEDED),
        (Status.FAILED, Status.CREATED),
        (Status.CANCELLED, Status.CREATED),
    }
    assert can_move_locally(current, new) is ((current, new) in allowed)


def test_only_submit_moves_between_created_and_submitting() -> None:
    into_submitting = {s for s, targets in LOCAL_MOVES.items() if Status.SUBMITTING in targets}
    assert into_submitting == {Status.CREATED}
    assert not can_apply_remote(Status.CREATED, Status.SUBMITTING)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pending", Status.PENDING),
        ("waiting", Status.PENDING),
        ("queued", Status.PENDING),
        ("validating", Status.PENDING),
        ("processing", Status.PROCESSING),
        ("finishing", Status.PROCESSING),
        ("running", Status.PROCESSING),
        ("succeeded", Status.SUCCEEDED),
        ("completed", Status.SUCCEEDED),
        ("ready", Status.SUCCEEDED),
        ("failed", Status.FAILED),
        ("error", Status.FAILED),
        ("cancelled", Status.CANCELLED),
        ("canceled", Status.CANCELLED),
        (" Succeeded ", Status.SUCCEEDED),
        ("exploded", None),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_normalize(raw: object, expected: Status | None) -> None:
    assert normalize(raw) == expected
