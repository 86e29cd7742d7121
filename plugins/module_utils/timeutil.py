# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Time helpers: UTC timestamps, durations and business-day arithmetic."""

from __future__ import annotations

import datetime
import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

UTC = datetime.timezone.utc

_DURATION_UNITS = {
    's': 1, 'sec': 1, 'secs': 1, 'second': 1, 'seconds': 1,
    'm': 60, 'min': 60, 'mins': 60, 'minute': 60, 'minutes': 60,
    'h': 3600, 'hr': 3600, 'hrs': 3600, 'hour': 3600, 'hours': 3600,
    'd': 86400, 'day': 86400, 'days': 86400,
    'w': 604800, 'week': 604800, 'weeks': 604800,
}
_DURATION_PART = re.compile(r'(\d+)\s*([a-z]+)')
_DURATION_FULL = re.compile(r'^(\s*\d+\s*[a-z]+\s*)+$')


def utcnow():
    """The current time, timezone-aware UTC, to the second."""
    return datetime.datetime.now(UTC).replace(microsecond=0)


def format_ts(value):
    """RFC 3339 UTC with a trailing Z, or None."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_ts(value, field='timestamp'):
    """Parse an RFC 3339 / ISO 8601 timestamp into an aware UTC datetime.

    Naive timestamps are taken as UTC. Alertmanager's zero time
    (0001-01-01T00:00:00Z) parses to datetime.min in UTC.
    """
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("%s: expected an RFC 3339 timestamp such as 2026-01-31T12:00:00Z, got %r" % (field, value))
    text = value.strip()
    if text.endswith(('Z', 'z')):
        text = text[:-1] + '+00:00'
    # Python 3.11 fromisoformat accepts fractional seconds of any length up to 6 digits;
    # Alertmanager sends nanoseconds, so trim the fraction to microseconds.
    text = re.sub(r'(\.\d{6})\d+', r'\1', text)
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("%s: %r is not an RFC 3339 timestamp (e.g. 2026-01-31T12:00:00Z)" % (field, value)) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_duration(value, field='duration'):
    """Seconds in a duration: an integer (seconds) or text such as 15m, 2h, '1h 30m', '15 minutes'."""
    if isinstance(value, bool):
        raise ValidationError("%s: expected a duration such as 15m or 2h, got %r" % (field, value))
    if isinstance(value, int):
        if value < 0:
            raise ValidationError("%s: a duration cannot be negative (%r)" % (field, value))
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return int(text)
        if text and _DURATION_FULL.match(text):
            total = 0
            for amount, unit in _DURATION_PART.findall(text):
                if unit not in _DURATION_UNITS:
                    break
                total += int(amount) * _DURATION_UNITS[unit]
            else:
                return total
    raise ValidationError("%s: %r is not a duration (use e.g. 30s, 15m, 2h, 1d or '15 minutes')" % (field, value))


def next_business_day(moment, start_hour=9, start_minute=0):
    """The start of the next business day (Mon-Fri) strictly after ``moment``'s day."""
    day = moment.astimezone(UTC).date() + datetime.timedelta(days=1)
    while day.weekday() >= 5:
        day += datetime.timedelta(days=1)
    return datetime.datetime(day.year, day.month, day.day, start_hour, start_minute, tzinfo=UTC)


def next_weekly_review(moment, weekday=0, start_hour=9, start_minute=0):
    """The next weekly review slot (default Monday 09:00 UTC) strictly after ``moment``."""
    moment = moment.astimezone(UTC)
    day = moment.date()
    candidate = datetime.datetime(day.year, day.month, day.day, start_hour, start_minute, tzinfo=UTC)
    candidate += datetime.timedelta(days=(weekday - day.weekday()) % 7)
    if candidate <= moment:
        candidate += datetime.timedelta(days=7)
    return candidate
