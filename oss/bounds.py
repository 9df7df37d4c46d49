"""Bounds of what the API takes in, shared by the schemas of every resource.

Every integer a request carries ends in a signed 64-bit column (SQLite INTEGER, PostgreSQL
BIGINT) or is compared with one, so a larger one is refused as input (422 naming the field)
instead of overflowing the database driver (a 500). Free text has a length limit so that one
request cannot store megabytes in a description.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

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
