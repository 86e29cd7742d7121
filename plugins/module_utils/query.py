# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
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
    statuses = set(statuses or ())
    types = set(types or ())
    severities = set(severities or ())

    def predicate(summary):
        if statuses and summary['status'] not in statuses:
            return False
        if types and summary['type'] not in types:
            return False
        if severities and summary['severity'] not in severities:
            return False
        if drill is not None and summary['drill'] != drill:
            return False
        if since_ts and summary['created_at'] < since_ts:
            return False
        if until_ts and summary['created_at'] > until_ts:
            return False
        if fingerprint and fingerprint not in summary.get('fingerprints', ()):
            return False
        if overdue is not None and is_overdue(summary, now) != overdue:
            return False
        return True

    return predicate
