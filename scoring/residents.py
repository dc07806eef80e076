"""The residents' satisfaction component (rubric v3: `weights.residents`, `residents.min_ratings`),
from the feedback residents sent through the QR stickers of the pilot and its devices (store.feedback).

Over the feedback submitted in the pilot's scoring window [start, end), whatever device or the pilot
itself it names:

    ratings    n = number of ratings; mean = sum(rating) / n
    component  (mean - 1) / 4: 1 star -> 0, 3 -> 0.5, 5 -> 1; a rating counts as soon as it is sent,
               whatever becomes of its comment in moderation
    evaluated  n >= residents.min_ratings; below, no component: its weight goes to the others (the
               score renormalises over the components a pilot has, scoring.fleet)

A record's evidence carries the count, mean, distribution (ratings per star), categories and
comments by moderation status (`evidence.residents`), so the component can be recomputed from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from scoring.rubric import ResidentsRules
from store.feedback import tally


@dataclass(frozen=True)
class ResidentsFeedback:
    ratings: int
    mean: float | None
    distribution: dict[int, int]
    categories: dict[str, int]
    comments: dict[str, int]
    min_ratings: int

    @property
    def evaluated(self) -> bool:
        return self.ratings >= self.min_ratings

    @property
    def component(self) -> float | None:
        """(mean - 1) / 4 when evaluated, else None."""
        return None if not self.evaluated or self.mean is None else (self.mean - 1) / 4

    def evidence(self) -> dict[str, Any]:
        return {"ratings": self.ratings, "mean": self.mean,
                "distribution": {str(stars): n for stars, n in sorted(self.distribution.items())},
                "categories": dict(sorted(self.categories.items())), "comments": dict(sorted(self.comments.items())),
                "min_ratings": self.min_ratings, "evaluated": self.evaluated, "component": self.component,
                "formula": "(mean rating - 1) / 4 over the window's ratings; not evaluated below min_ratings"}


def residents_feedback(conn: psycopg.Connection, pilot_id: str, start: datetime, end: datetime,
                       rules: ResidentsRules) -> ResidentsFeedback:
    found = tally(conn, pilot_id, start, end)
    return ResidentsFeedback(found.count, found.mean, found.ratings, found.categories, found.comments, rules.min_ratings)
