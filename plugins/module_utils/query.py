# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters over incident summaries (the store's index entries)."""

from __future__ import annotations

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil


def is_overdue(summary, now):
    """Unresolved, and either unacknowledged past response_due_at, or past escalation_due_at."""
    if summary['status'] == 'resolved':
        return False
    stamp = timeutil.format_ts(now)
    if not summary.get('acknowledged_at') and summary['response_due_at'] <= stamp:
        return True
    due = summary.get('escalation_due_at')
    return bool(due) and due <= stamp


def build_filter(catalog, statuses=None, types=None, severities=None, drill=None, since=None, until=None,
                 overdue=None, fingerprint=None, now=None):
    """A predicate over summaries; every argument is validated first (unknown names fail clearly)."""
    for status in statuses or ():
        if status not in rec.STATUSES:
            raise ValidationError("status: unknown status %r; use: %s" % (status, ', '.join(rec.STATUSES)))
    for name in types or ():
        catalog.require_type(name)
    for name in severities or ():
        catalog.require_severity(name)
    # Timestamps are stored normalised (UTC, second precision, Z) so string comparison orders them.
    since_ts = timeutil.format_ts(timeutil.parse_ts(since, 'since').replace(microsecond=0)) if since else None
    until_ts = timeutil.format_ts(timeutil.parse_ts(until, 'until').replace(microsecond=0)) if until else None
    if fingerprint is not None:
        fingerprint = rec.validate_fingerprint(fingerprint)
    now = now or timeutil.utcnow()
    return Filter(set(statuses or ()), set(types or ()), set(severities or ()), drill, since_ts, until_ts, overdue,
                  fingerprint, now)


class Filter:  # pylint: disable=too-many-instance-attributes
    """A validated filter: callable on a summary, and translatable to SQL for the index."""

    def __init__(self, statuses, types, severities, drill, since, until, overdue, fingerprint, now):
        self.statuses = statuses
        self.types = types
        self.severities = severities
        self.drill = drill
        self.since = since
        self.until = until
        self.overdue = overdue
        self.fingerprint = fingerprint
        self.now = now

    def __call__(self, summary):
        if self.statuses and summary['status'] not in self.statuses:
            return False
        if self.types and summary['type'] not in self.types:
            return False
        if self.severities and summary['severity'] not in self.severities:
            return False
        if self.drill is not None and summary['drill'] != self.drill:
            return False
        if self.since and summary['created_at'] < self.since:
            return False
        if self.until and summary['created_at'] > self.until:
            return False
        if self.fingerprint and self.fingerprint not in summary.get('fingerprints', ()):
            return False
        if self.overdue is not None and is_overdue(summary, self.now) != self.overdue:
            return False
        return True

    def sql(self):
        """``(where, params)`` narrowing the index rows; the Python check above still applies to each row."""
        clauses = []
        params = []
        for column, values in (('status', self.statuses), ('type', self.types), ('severity', self.severities)):
            if values:
                clauses.append('%s IN (%s)' % (column, ', '.join('?' * len(values))))
                params.extend(sorted(values))
        if self.drill is not None:
            clauses.append('drill = ?')
            params.append(int(self.drill))
        if self.since:
            clauses.append('created_at >= ?')
            params.append(self.since)
        if self.until:
            clauses.append('created_at <= ?')
            params.append(self.until)
        if self.fingerprint:
            clauses.append('id IN (SELECT id FROM fingerprints WHERE fingerprint = ?)')
            params.append(self.fingerprint)
        return ' AND '.join(clauses), params
