"""Bounds of what the API takes in, shared by the schemas of every resource.

Every integer a request carries ends in a signed 64-bit column (SQLite INTEGER, PostgreSQL
BIGINT) or is compared with one, so a larger one is refused as input (422 naming the field)
instead of overflowing the database driver (a 500). Free text has a length limit so that one
request cannot store megabytes in a description.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

INT64_MAX = 2**63 - 1

# Ids, offsets, counts, bit rates, durations: what a 64-bit column holds, never negative.
Int64 = Annotated[int, Field(ge=0, le=INT64_MAX)]
# The same, where zero means nothing (a link's capacity).
PositiveInt64 = Annotated[int, Field(gt=0, le=INT64_MAX)]

TEXT_MAX = 1024
LABEL_MAX = 255
# Descriptions and notes.
Text = Annotated[str, Field(max_length=TEXT_MAX)]
# Short values: kinds, images, references, filters.
Label = Annotated[str, Field(max_length=LABEL_MAX)]


def int64_of(text: str) -> int | None:
    """`text` as a number a 64-bit column holds, or None when it is not one: other digits
    than ASCII (`str.isdigit()` takes '²', which `int()` refuses) or past 2^63-1."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= INT64_MAX else None


# Years a moment may have: the ends of `datetime`'s range (1, 9999) overflow once moved by a
# UTC offset or to the next billing period.
FIRST_YEAR, LAST_YEAR = 1900, 2999


def in_calendar(moment: datetime) -> bool:
    return FIRST_YEAR <= moment.year <= LAST_YEAR


def _within_years(moment: datetime) -> datetime:
    if not in_calendar(moment):
        raise ValueError(f"the year must be {FIRST_YEAR}..{LAST_YEAR}")
    return moment


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _date_time_text(value: object) -> object:
    # pydantic would also read "0.5" or "1700000000" as seconds since 1970.
    if isinstance(value, str) and not _DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-11-01T00:00:00Z")
    return value


# A moment given as text (query parameters): ISO 8601 only, as the OpenAPI format says.
Moment = Annotated[datetime, BeforeValidator(_date_time_text), AfterValidator(_within_years)]
