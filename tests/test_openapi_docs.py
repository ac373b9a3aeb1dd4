"""docs/API.md cannot drift from the API: every operation of the OpenAPI document (generated from the
routes, web/openapi.py) has a row in one of its route tables, every row names a real operation, and
each object its "Objects" section describes names every property of that object's schema."""

from __future__ import annotations

import re
from pathlib import Path

from web.openapi import build

API_MD = Path(__file__).resolve().parent.parent / "docs" / "API.md"
#: `GET /v1/beads/<ref>` in the first cell of a table row (a cell may name several, comma-separated)
ROUTE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/v1/[^\s`|,]*)")
#: Routes that are not in the OpenAPI document (a websocket), documented in API.md all the same.
NOT_IN_DOCUMENT = {("GET", "/v1/ws")}


def _shape(path: str) -> str:
    """`/v1/beads/<ref>` and `/v1/beads/{ref}` alike: parameters unnamed."""
    return re.sub(r"<[^>]*>|\{[^}]*\}", "{}", path)


def documented_in_markdown() -> set[tuple[str, str]]:
    rows = [line.split("|")[1] for line in API_MD.read_text().splitlines() if line.startswith("| `")]
    return {(method, _shape(path)) for cell in rows for method, path in ROUTE.findall(cell)}


def test_every_operation_has_a_row_in_api_md_and_every_row_is_an_operation(app):
    spec = build(app)
    operations = {(method.upper(), _shape(path)) for path, ops in spec["paths"].items() for method in ops}
    rows = documented_in_markdown() - NOT_IN_DOCUMENT
    assert sorted(operations - rows) == [], "operations without a row in docs/API.md"
    assert sorted(rows - operations) == [], "rows of docs/API.md naming no operation"


def objects_in_markdown() -> dict[str, str]:
    """`**Bead** ...` paragraphs of the "Objects" section: name -> text."""
    section = API_MD.read_text().split("## Objects", 1)[1].split("\n## ", 1)[0]
    paragraphs = re.finditer(r"^\*\*(\w+)\*\*(.*?)(?=^\*\*|\Z)", section, re.MULTILINE | re.DOTALL)
    return {m.group(1): m.group(2) for m in paragraphs}


def test_each_object_of_api_md_names_every_property_of_its_schema(app):
    schemas = build(app)["components"]["schemas"]
    described = objects_in_markdown()
    assert {"Workspace", "Claim", "GitState", "Bead"} <= set(described)
    missing = {name: sorted(p for p in schemas[name]["properties"] if not re.search(rf"\b{p}\b", text))
               for name, text in described.items()}
    assert {name: props for name, props in missing.items() if props} == {}
