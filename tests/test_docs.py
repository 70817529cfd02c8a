"""The README documents every setting, so docs and ``conf.Settings`` cannot drift apart."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from tapestry_media.conf import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_has_a_row_in_the_readme() -> None:
    missing = [f.name for f in fields(Settings) if f"| `{f.name}` |" not in README]
    assert missing == []


def test_the_two_commands_are_near_the_top() -> None:
    head = README[:2500]
    assert "make demo" in head
    assert "make test" in head
