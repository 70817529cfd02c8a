"""The README documents every setting and docs/api.md the public API, so neither can drift
from the code."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

from django.dispatch import Signal

import tapestry_media
from tapestry_media import signals
from tapestry_media.backends import base
from tapestry_media.backends.base import BaseBackend
from tapestry_media.conf import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_has_a_row_in_the_readme() -> None:
    missing = [f.name for f in fields(Settings) if f"| `{f.name}` |" not in README]
    assert missing == []


def test_the_two_commands_are_near_the_top() -> None:
    head = README[:2500]
    assert "make demo" in head
    assert "make test" in head


# --- docs/api.md: the public API in one place, checked against the code ---------------------

API = (ROOT / "docs" / "api.md").read_text()
PACKAGE = ROOT / "tapestry_media"


def table_rows(text: str, heading: str) -> dict[str, list[str]]:
    """The first table under ``## heading``: first cell's code name -> every cell."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([^`]+)`", cells[0])
        if match:
            rows[match[1]] = cells
    return rows


def test_the_readme_links_the_api_page() -> None:
    assert "(docs/api.md)" in README


def test_every_exported_name_is_documented() -> None:
    documented = table_rows(API, "The package: `tapestry_media`")
    assert sorted(documented) == sorted(f"tapestry_media.{n}" for n in tapestry_media.__all__)


def sent_kwargs() -> dict[str, set[str]]:
    """For each signal, the keyword arguments of every place the package sends it."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in {"send_after_commit", "send_now"}:
                signal = node.args[0]
            elif isinstance(func, ast.Attribute) and func.attr in {"send", "send_robust"}:
                signal = func.value
            else:
                continue
            name = signal.id if isinstance(signal, ast.Name) else getattr(signal, "attr", "")
            if isinstance(getattr(signals, name, None), Signal):
                kwargs = {k.arg for k in node.keywords if k.arg and k.arg != "sender"}
                found.setdefault(name, set()).update(kwargs)
    return found


def test_every_signal_is_documented_with_the_kwargs_it_is_sent_with() -> None:
    declared = {n for n, v in vars(signals).items() if isinstance(v, Signal)}
    rows = table_rows(API, "Signals")
    assert sorted(rows) == sorted(declared)
    sent = sent_kwargs()
    assert set(sent) == declared  # positive control: the scan finds every signal being sent
    for name, cells in rows.items():
        documented = set(re.findall(r"`(\w+)`", cells[2]))
        assert documented == sent[name], name


def test_the_backend_contract_covers_every_public_member() -> None:
    members = {
        n
        for n in vars(BaseBackend)
        if not n.startswith("_") or n == "__init__"
        if n not in {"config"}
    }
    documented = {re.sub(r"\(.*", "", k) for k in table_rows(API, "A custom backend")}
    assert members <= documented, members - documented
    errors = {n for n, v in vars(base).items() if isinstance(v, type) and issubclass(v, Exception)}
    assert errors <= set(re.findall(r"^\| `(\w+)` \|", API, re.M)), errors


def test_every_check_id_is_documented() -> None:
    ids = set(re.findall(r"tapestry_media\.[EWI]\d{3}", (PACKAGE / "checks.py").read_text()))
    assert {"tapestry_media.E007", "tapestry_media.W004", "tapestry_media.I001"} <= ids
    documented = set(table_rows(API, "System checks"))
    assert ids == documented, ids ^ documented
