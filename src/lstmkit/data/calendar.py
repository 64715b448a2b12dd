"""Inputs known in advance for every step, past or future: where a step sits in
the season, and (with dates) in the year.

    season  sin, cos of 2 pi * position / season
    month   sin, cos of 2 pi * (position in the year): the month of year, smoothly

The position in the season comes from the dates when the season is a year
(12 monthly, 4 quarterly, 52 weekly steps: the week of year never drifts as
step index mod 52 would; the year is cut by months on a month grid, by days
otherwise), else from the step index counted from the first row. The month pair is left out when it would repeat the season pair (an
annual season) or say nothing (yearly or coarser data).
"""
import numpy as np

from . import dates as dates_mod

KINDS = ("season", "month")


class Calendar:
    def __init__(self, n, season=None, dates=None, kinds=KINDS):
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown calendar features {sorted(unknown)}; expected some of {KINDS}")
        self.n, self.season, self.dates = n, season, dates
        per_year = dates_mod.steps_per_year(dates) if dates is not None and len(dates) > 1 else None
        self.annual = bool(season and per_year and abs(per_year / season - 1) < 0.1)
        self.by_month = dates is not None and dates_mod.month_step(dates) is not None
        self.kinds = [k for k in kinds if
                      (k == "season" and season and season > 1) or
                      (k == "month" and per_year is not None and per_year > 1.5 and not self.annual)]
        self._dates_to = dates

    @property
    def names(self):
        return [f"{k}_{f}" for k in self.kinds for f in ("sin", "cos")]

    def _dates(self, upto):
        """Dates for steps 0 .. upto-1, extending the known dates at the series' step."""
        if self._dates_to is None or len(self._dates_to) < upto:
            self._dates_to = dates_mod.extend(self.dates, upto - len(self.dates))
        return self._dates_to

    def year_position(self, steps):
        """Position in the year, [0, 1), of each step index: by months for data
        on a month grid (monthly, quarterly), by days otherwise."""
        d = self._dates(steps.max() + 1)[steps]
        return dates_mod.month_fraction(d) if self.by_month else dates_mod.year_fraction(d)

    def position(self, steps):
        """Position in the season, in [0, season), of each step index (may lie past the end)."""
        steps = np.asarray(steps)
        if self.annual:
            return self.year_position(steps) * self.season
        return np.mod(steps, self.season).astype(np.float64)

    def features(self, steps):
        """(len(steps), 2 * len(kinds)) features for these step indices."""
        steps = np.asarray(steps)
        cols = []
        for k in self.kinds:
            if k == "season":
                angle = 2 * np.pi * self.position(steps) / self.season
            else:
                angle = 2 * np.pi * self.year_position(steps)
            cols += [np.sin(angle), np.cos(angle)]
        return np.stack(cols, axis=-1) if cols else np.zeros((len(steps), 0))
