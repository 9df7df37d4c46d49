"""The project's own paging (every non-TMF list: `/api/v1/...`): `limit` and `offset` query
parameters (`PageDep`) and the `Page` answer (items, total, limit, offset).

The inventory's large lists (devices, interfaces) also page by cursor (`CursorPageDep`,
`CursorPage`): every page carries `next_cursor`, an opaque token for the page after it (None on
the last), and `?cursor=` resumes after the last item the token names (keyset paging: a later
page costs what the first does, and an insert or delete between pages neither repeats nor skips
an item that was there throughout). Filters are not in the token: send the same ones again."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Annotated, Generic, Self, TypeVar

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from oss.bounds import Int64

T = TypeVar("T")


class PageParams:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 100,
        offset: Annotated[Int64, Query(description="items to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


PageDep = Annotated[PageParams, Depends()]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, items: Sequence[T], page: PageParams) -> Page[T]:
        return cls(
            items=list(items[page.offset : page.offset + page.limit]),
            total=len(items),
            limit=page.limit,
            offset=page.offset,
        )


CURSOR_MAX = 1024  # a cursor holds one or two names: far below this


class CursorPageParams(PageParams):
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 100,
        offset: Annotated[Int64, Query(description="items to skip (not with `cursor`)")] = 0,
        cursor: Annotated[
            str | None,
            Query(
                max_length=CURSOR_MAX,
                description="resume after the last item of a page: that page's `next_cursor`"
                " (opaque; send the same filters again)",
            ),
        ] = None,
    ) -> None:
        super().__init__(limit, offset)
        self.cursor = cursor

    def after(self, listing: str, size: int) -> tuple[str, ...] | None:
        """The sort key the cursor resumes after (`size` names), None without a cursor; a
        cursor that is not one of `listing`'s, or given with an offset, is a 422 naming it."""
        if self.cursor is None:
            return None
        if self.offset:
            raise _bad_cursor(self.cursor, "cannot be combined with offset")
        try:
            raw = base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4))
            decoded = json.loads(raw)
        except (binascii.Error, ValueError):
            raise _bad_cursor(self.cursor, "not a cursor this API issued") from None
        if (
            not isinstance(decoded, list)
            or len(decoded) != size + 1
            or decoded[0] != listing
            or not all(isinstance(part, str) for part in decoded)
        ):
            raise _bad_cursor(self.cursor, f"not a cursor of the {listing} list")
        return tuple(decoded[1:])


CursorPageDep = Annotated[CursorPageParams, Depends()]


def encode_cursor(listing: str, key: Sequence[str]) -> str:
    """The opaque token for "after `key` in `listing`" (`CursorPageParams.after` reads it)."""
    raw = json.dumps([listing, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _bad_cursor(cursor: str, reason: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", "cursor"), "msg": reason, "input": cursor}]
    )


class CursorPage(Page[T], Generic[T]):
    next_cursor: str | None = Field(description="`cursor` for the next page; null on the last page")

    @classmethod
    def window(
        cls,
        ordered: Iterator[T],
        page: CursorPageParams,
        *,
        total: int,
        listing: str,
        key: Callable[[T], tuple[str, ...]],
    ) -> Self:
        """The page of `ordered` (the list in its order, already resumed after the cursor if
        any) that `page` asks for: O(offset + limit), one item read ahead to tell whether a
        next page exists."""
        stop = min(page.offset + page.limit + 1, sys.maxsize)  # offsets go to 2**63-1
        items = list(islice(ordered, page.offset, stop))
        more = len(items) > page.limit
        del items[page.limit :]
        return cls(
            items=items,
            total=total,
            limit=page.limit,
            offset=page.offset,
            next_cursor=encode_cursor(listing, key(items[-1])) if more else None,
        )
