"""One router per resource; `api.app` mounts them all."""

from typing import Annotated

from fastapi import Query

ListLimit = Annotated[int, Query(ge=1, le=1000, description="at most this many rows (1-1000)")]
ListOffset = Annotated[int, Query(ge=0, description="skip this many rows (in id order)")]
