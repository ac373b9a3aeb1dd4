"""Dependency pictures drawn on the server as SVG (no JavaScript): a layered layout of what
store/dashboard_work.py chose, for the `picture` macro of web/templates/dashboard/macros.html.

Beads sit in columns by layer (blockers and parents on the left), ordered by priority then id
within a column; edges run from the right side of one box to the left side of the other.
"""

from __future__ import annotations

from typing import Any

from store.dashboard_work import Picture, PictureNode
from web.activity_text import cut

NODE_W, NODE_H, GAP_X, GAP_Y = 190, 44, 70, 18
#: Characters of a title that fit in a box.
TITLE_CHARS = 26


def layout(picture: Picture) -> dict[str, Any]:
    """Positions for the SVG template: nodes in columns by layer, edges blocker -> dependent."""
    low = min((n.layer for n in picture.nodes), default=0)
    columns: dict[int, list[PictureNode]] = {}
    for node in sorted(picture.nodes, key=lambda n: (n.priority, n.ref)):
        columns.setdefault(node.layer - low, []).append(node)
    pos, nodes = {}, []
    for col, members in columns.items():
        for row, node in enumerate(members):
            x, y = 10 + col * (NODE_W + GAP_X), 10 + row * (NODE_H + GAP_Y)
            pos[node.pk] = (x, y)
            nodes.append({"pk": node.pk, "x": x, "y": y, "ref": node.ref,
                          "title": cut(node.title, TITLE_CHARS), "status": node.status,
                          "center": node.pk == picture.center})
    edges = [_edge(pos[a], pos[b], kind) for a, b, kind in picture.edges]
    width = 20 + len(columns) * (NODE_W + GAP_X)
    height = 20 + max((len(p) for p in columns.values()), default=0) * (NODE_H + GAP_Y)
    drawn: dict[str, Any] = {"nodes": nodes, "edges": edges, "width": width, "height": height,
                             "w": NODE_W, "h": NODE_H}
    if picture.total is not None:
        drawn["total"] = picture.total
    return drawn


def _edge(a: tuple[int, int], b: tuple[int, int], kind: str) -> dict[str, Any]:
    return {"x1": a[0] + NODE_W, "y1": a[1] + NODE_H // 2, "x2": b[0], "y2": b[1] + NODE_H // 2, "kind": kind}
