# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Automatic escalation: which open incidents are due, to which level, and who is the next tier.

An unresolved, non-drill incident is due when

- it is past ``escalation_due_at`` (set at opening from the severity's ``escalate_after``: 30 min for P1,
  2 h for P2, the next business day for P3, the weekly review for P4; reset from the escalation time
  by every escalation), or
- it was never escalated, is not acknowledged, and is past ``response_due_at``.

A due incident goes up exactly one level per run, and the target level is explicit, so two runs that
race (cron every minute, an AWX schedule) cannot raise it twice: the second finds the level reached.
Running every minute therefore escalates each incident once per level.

Drills are never escalated: escalation pages people, and a drill must not (drills are scored
against the same targets instead).
"""

from __future__ import annotations

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import runs
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

# Who is told at each level when the inventory names nobody (incident_escalation_tiers): level N is
# tiers[N - 1], and the last tier stays for higher levels.
DEFAULT_TIERS = ('team lead', 'management', 'executive')


def validate_tiers(tiers):
    """The tier list, checked: a non-empty list of non-empty strings."""
    if tiers is None:
        return list(DEFAULT_TIERS)
    if not isinstance(tiers, (list, tuple)) or not tiers or not all(isinstance(t, str) and t.strip() for t in tiers):
        raise ValidationError('tiers: expected a non-empty list of names, got %r' % (tiers,))
    return list(tiers)


def tier_for(level, tiers):
    """The tier notified on reaching ``level`` (1-based)."""
    return tiers[min(level, len(tiers)) - 1]


def due(record, now):
    """Why ``record`` is due for escalation at ``now`` (a short reason), or None."""
    if record['status'] == 'resolved' or record.get('drill'):
        return None
    stamp = timeutil.format_ts(now)
    escalation_due_at = record.get('escalation_due_at')
    if escalation_due_at and escalation_due_at <= stamp:
        return 'open past escalation_due_at %s' % escalation_due_at
    if not record.get('acknowledged_at') and record.get('escalation_level', 0) == 0 and record['response_due_at'] <= stamp:
        return 'not acknowledged by response_due_at %s' % record['response_due_at']
    return None


def plan(records, now, tiers=None):
    """The escalations due at ``now``: one per due incident, oldest first.

    Each is ``{id, type, severity, priority, from, to, tier, reason}``.
    """
    tiers = validate_tiers(tiers)
    escalations = []
    for record in sorted(records, key=lambda item: (item['created_at'], item['id'])):
        reason = due(record, now)
        if reason is None:
            continue
        level = record.get('escalation_level', 0)
        escalations.append({'id': record['id'], 'type': record['type'], 'severity': record['severity'],
                            'priority': record.get('priority'), 'from': level, 'to': level + 1,
                            'tier': tier_for(level + 1, tiers), 'reason': reason})
    return escalations


def lose_stale_runs(service, records, now):
    """Hand over the incidents whose response runs passed their deadline (their process died): each such run is
    recorded as lost, which makes the escalation due now. Returns ``(records, lost)``, the records as they are now
    and ``[{'id', 'runs', 'drill'}]``."""
    current, lost = [], []
    for record in records:
        stale = runs.stale_runs(record, now)
        if stale:
            outcome = service.lose_stale_runs(record['id'])
            lost.append({'id': record['id'], 'runs': [run['id'] for run in stale], 'drill': bool(record.get('drill'))})
            record = outcome.after or record
        current.append(record)
    return current, lost


def run(service, store, now, tiers=None, ids=None, lost=None):
    """Escalate every due incident through ``service`` (check mode honoured by the service).

    ``ids`` limits the run to those incidents. Runs past their deadline are recorded as lost first (and their
    incidents escalated in the same run); pass a list as ``lost`` to receive them. Returns ``(escalated, skipped)``:
    the escalations applied (or planned in check mode) and the ones another run applied first.
    """
    records = []
    for summary in store.list(lambda item: item['status'] != 'resolved')[0]:
        if ids and summary['id'] not in ids:
            continue
        records.append(store.read(summary['id']))
    records, found = lose_stale_runs(service, records, now)
    if lost is not None:
        lost.extend(found)
    escalated, skipped = [], []
    for item in plan(records, now, tiers):
        outcome = service.escalate(item['id'], item['to'], '%s; next tier: %s' % (item['reason'], item['tier']))
        if outcome.changed:
            item['escalation_due_at'] = outcome.after['escalation_due_at']
            escalated.append(item)
        else:
            skipped.append(item)
    return escalated, skipped
