"""The elements of an HTML page as the e2e tests read them: each start tag's attributes, the
text inside it and where its descendants end."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

VOID = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
     "wbr")
)  # fmt: skip
"""Elements without an end tag (nothing is inside them)."""


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "index": len(self.elements)}
        self.elements.append(element)
        if tag in VOID:
            element["end"] = len(self.elements)
        else:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            element = self._open.pop()
            element["end"] = len(self.elements)
            if element["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element["text"] += data

    def close(self) -> None:
        super().close()
        for element in self._open:
            element["end"] = len(self.elements)


def elements(html: str) -> list[dict[str, Any]]:
    """Every element of ``html`` in document order: ``{"tag", "attrs", "text", "index",
    "end"}`` (``text`` all the text inside it; its descendants are ``[index + 1, end)``)."""
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def inside(found: list[dict[str, Any]], element: dict[str, Any]) -> list[dict[str, Any]]:
    """The descendants of ``element``, one of ``found`` (:func:`elements`)."""
    return found[element["index"] + 1 : element["end"]]


def by_attr(html: str, attr: str) -> dict[str, dict[str, Any]]:
    """The elements of ``html`` that carry ``attr``, by its value (the first of each)."""
    out: dict[str, dict[str, Any]] = {}
    for element in elements(html):
        value = element["attrs"].get(attr)
        if value is not None and value not in out:
            out[value] = element
    return out


def with_class(html: str, name: str) -> list[dict[str, Any]]:
    """The elements of ``html`` whose ``class`` list has ``name``, in document order."""
    return [e for e in elements(html) if name in (e["attrs"].get("class") or "").split()]
