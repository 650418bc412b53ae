"""Durations ("1h30m") and cron schedules, evaluated without a clock: callers pass the time. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_DURATION = re.compile(r"([0-9]+)(s|m|h|d)")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (low, high) of minute, hour, day of month, month, day of week (7 is Sunday too).
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def parse_duration(text: str) -> int:
    """Seconds in a duration such as 30s, 5m, 6h, 1d or 1h30m; ValueError otherwise."""
    text = text.strip()
    if not text or _DURATION.sub("", text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 6h, 1h30m)")
    return sum(int(n) * _UNIT[u] for n, u in _DURATION.findall(text))


@dataclass(frozen=True)
class Cron:
    """A 5-field cron schedule in UTC with the usual day-of-month/day-of-week OR rule."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        expr = _MACROS.get(text.strip(), text)
        fields = expr.split()
        if len(fields) != 5:
            raise ValueError(f"cron schedule needs 5 fields, got {len(fields)}: {text!r}")
        sets = [_parse_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, fields[2] != "*", fields[4] != "*")

    def _day_matches(self, day: datetime) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after`` (same tzinfo), within 5 years."""
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):
            if day.month in self.months and self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ValueError("cron schedule never fires")


def _parse_field(text: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for term in text.split(","):
        base, _, step_text = term.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"cron step must be at least 1: {term!r}")
        if base == "*":
            first, last = lo, hi
        else:
            first_text, _, last_text = base.partition("-")
            first = int(first_text)
            last = int(last_text) if last_text else (hi if step_text else first)
        if not lo <= first <= last <= hi:
            raise ValueError(f"cron field {term!r} is outside {lo}-{hi}")
        values.update(range(first, last + 1, step))
    return frozenset(values)
