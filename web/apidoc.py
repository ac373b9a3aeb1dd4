"""What each view of the JSON API reads and answers, declared on the view itself.

`@doc(...)` under a route's decorator is the one place an endpoint is described: web/openapi.py walks
the app's URL map and reads it from each view, so a route and its description cannot part. A route
of the JSON API without one is listed as "undocumented" and fails tests/test_openapi.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from marshmallow import Schema

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Doc:
    """What one endpoint reads and answers."""

    summary: str
    auth: str  # none | workspace | key | either
    answer: type[Schema] | None = None
    ok: int = 200
    many: bool = False
    body: Schema | None = None
    query: Schema | None = None
    #: error statuses beyond those implied by auth, body, query and path parameters
    errors: tuple[int, ...] = ()
    #: more answers: status -> schema (e.g. the health check's 503 is not an error body)
    more: dict[int, type[Schema]] = field(default_factory=dict)
    etag: bool = False
    #: hand-written query parameters (for lists given as repeated `?path=`)
    parameters: tuple[dict[str, Any], ...] = ()


def doc(summary: str, auth: str, answer: type[Schema] | None = None, **more: Any) -> Callable[[View], View]:
    """Describe a view: `@doc("Claim a bead", "workspace", Claimed, body=claim_schema, errors=(409,))`."""
    described = Doc(summary, auth, answer, **more)

    def mark(view: View) -> View:
        view.doc = described  # type: ignore[attr-defined]
        return view

    return mark


def doc_of(view: Callable[..., Any] | None) -> Doc | None:
    """The description of a view (through wrappers that copy the view's attributes), if any."""
    return getattr(view, "doc", None)
