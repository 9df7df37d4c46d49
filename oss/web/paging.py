"""The project's own paging (every non-TMF list: `/api/v1/...`): `limit` and `offset` query
parameters (`PageDep`) and the `Page` answer (items, total, limit, offset)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

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
