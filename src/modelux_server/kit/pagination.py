"""Cursor pagination over prefixed, time-sortable ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.errors import ValidationFailed

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class PageRequest:
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValidationFailed(
                f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit", param="limit"
            )
        # a cursor is an id we handed out; PostgreSQL cannot compare one holding NUL
        if self.cursor is not None and "\x00" in self.cursor:
            raise ValidationFailed("cursor is not one we handed out", code="invalid_cursor", param="cursor")

    @classmethod
    def of(cls, cursor: str | None, limit: str | int | None) -> PageRequest:
        """The page a caller asked for, from query parameters or tool arguments alike.

        An empty cursor means the first page, a missing limit the default one.
        """
        if isinstance(limit, str):
            try:
                limit = int(limit)
            except ValueError:
                raise ValidationFailed(
                    "limit must be a whole number", code="invalid_limit", param="limit"
                ) from None
        return cls(cursor=cursor or None, limit=DEFAULT_LIMIT if limit is None else limit)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


async def paginate(session: AsyncSession, stmt: Select[Any], id_column: Any, page: PageRequest) -> Page[Any]:
    """Rows after `page.cursor` in id order; one extra row tells if more exist."""
    if page.cursor:
        stmt = stmt.where(id_column > page.cursor)
    rows = list((await session.execute(stmt.order_by(id_column).limit(page.limit + 1))).scalars())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=rows, next_cursor=str(rows[-1].id) if more and rows else None)
