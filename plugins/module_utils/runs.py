# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Response runs of an incident, and the decisions around them: run the plan or not, resolve or wait for a person.

A response run (one playbook, AWX job or launcher run executing the incident's plan) is claimed in the
record when the incident is opened or attached (``runs``: id, started_at, deadline_at, ended_at,
outcome, actor, reason), in the same locked write, so two concurrent runs of one incident cannot both
run the plan. The run ends ``completed`` or ``failed``; a run still ``running`` past its deadline
(its process was killed, or timed out) is ``lost``. A failed or lost run hands the incident over to a
person: it is never resolved by automation, and its escalation is due at once.
"""

from __future__ import annotations

import datetime
import re
import secrets

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import approvals
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

RUN_OUTCOMES = ('running', 'completed', 'failed', 'lost')
# Action results that hand the incident over to a person.
HANDOVER_RESULTS = ('failed', 'blocked', 'needs_person')
MAX_RUNS = 100
DEFAULT_DEADLINE = 3600


RUN_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')


def validate_run_id(value, field='run id'):
    if not isinstance(value, str) or not RUN_ID_RE.match(value):
        raise ValidationError('%s: expected 1-64 letters, digits, dots, dashes or underscores, got %r' % (field, value))
    return value


def new_run(now, actor, deadline_seconds=DEFAULT_DEADLINE, run_id=None):
    """A run record; ``run_id`` is the caller's (the launcher derives it from its spool entry, so a resumed entry
    continues its own run), else a random one."""
    if not isinstance(deadline_seconds, int) or isinstance(deadline_seconds, bool) or not 60 <= deadline_seconds <= 86400:
        raise ValidationError('run deadline: expected 60 to 86400 seconds, got %r' % (deadline_seconds,))
    return {'id': validate_run_id(run_id) if run_id else secrets.token_hex(6), 'started_at': timeutil.format_ts(now),
            'deadline_at': timeutil.format_ts(now + datetime.timedelta(seconds=deadline_seconds)),
            'ended_at': None, 'outcome': 'running', 'actor': actor, 'reason': None}


def live_runs(record, now):
    """Runs still running and within their deadline."""
    stamp = timeutil.format_ts(now)
    return [run for run in record.get('runs') or [] if run['outcome'] == 'running' and run['deadline_at'] > stamp]


def stale_runs(record, now):
    """Runs still marked running past their deadline: their process died or was cut off."""
    stamp = timeutil.format_ts(now)
    return [run for run in record.get('runs') or [] if run['outcome'] == 'running' and run['deadline_at'] <= stamp]


def handed_over(record):
    """Why the incident waits for a person (failed, blocked or needs_person actions; failed or lost runs), or None."""
    reasons = ['%s %s' % (action['name'], action['result'].replace('_', ' ')) for action in record.get('actions') or []
               if action.get('result') in HANDOVER_RESULTS]
    reasons += ['response run %s %s' % (run['id'], run['outcome']) for run in record.get('runs') or []
                if run['outcome'] in ('failed', 'lost')]
    return '; '.join(reasons) if reasons else None


def plan_decision(record, now, created=False, reopened=False, run_id=None):
    """``(run, reason)``: whether this payload's response should run the incident's plan now.

    ``run_id``: the caller's own run; a live run with that id is a resumption of this very run (a restarted launcher
    picking up its spool entry), not another run in progress."""
    if record is None:
        return False, 'nothing was opened'
    if record['status'] in ('monitoring', 'resolved'):
        return False, 'the incident is %s' % record['status']
    if record['alerts'] and all(alert['status'] == 'resolved' for alert in record['alerts']):
        return False, 'its alerts resolved'
    live = [run for run in live_runs(record, now) if run['id'] != run_id]
    if live:
        return False, 'response run %s (%s) is in progress until %s' % (live[0]['id'], live[0]['actor'], live[0]['deadline_at'])
    waiting = handed_over(record)
    if waiting and not reopened:
        # A person's approval given after the response stopped at that action (module_utils/approvals.py) is that
        # person taking the hand-over back: the next run resumes the plan.
        approved = approvals.awaiting_run(record)
        if approved:
            return True, 'resumed: %s approved by %s' % (approved[0]['action'], approved[0]['decided_by'])
        return False, 'the incident waits for a person: %s' % waiting
    return True, 'new incident' if created else ('reopened' if reopened else 'no response has run to completion yet')


def end_run(record, run_id, outcome, now, reason=None):
    """Mark a run ended; returns the run (None when the id is unknown)."""
    if outcome not in RUN_OUTCOMES[1:]:
        raise ValidationError('run.outcome: expected one of %s, got %r' % (', '.join(RUN_OUTCOMES[1:]), outcome))
    for run in record.get('runs') or []:
        if run['id'] == run_id:
            if run['outcome'] == 'running':
                run.update(outcome=outcome, ended_at=timeutil.format_ts(now), reason=reason)
            return run
    return None


def close_decision(record, category_auto_resolve, auto_resolve=None, resolve_on_success=True, plan_ran=True):
    """What the end of a response does: ``{'monitor', 'resolve', 'reason'}``.

    - a response that handed over (failed, blocked, needs a person) leaves the incident open: no monitoring, no resolution;
    - compliance violations always wait for a person;
    - a health check that could not verify anything keeps the incident in monitoring;
    - types whose auto-resolution is off (security, by default; ``auto_resolve`` overrides per type) stop at monitoring;
    - otherwise a completed response resolves (``resolve_on_success``), and so do resolved alerts of a monitored incident.
    """
    waiting = handed_over(record)
    if waiting:
        return {'monitor': False, 'resolve': False, 'reason': 'waits for a person: %s' % waiting}
    if record['type'] == 'compliance_violation':
        return {'monitor': False, 'resolve': False, 'reason': 'compliance findings are reviewed by a person'}
    alerts_resolved = bool(record['alerts']) and all(alert['status'] == 'resolved' for alert in record['alerts'])
    monitor = plan_ran or (alerts_resolved and record['status'] == 'monitoring')
    allowed = (auto_resolve or {}).get(record['type'])
    if allowed is None:
        allowed = category_auto_resolve
    if not allowed:
        return {'monitor': monitor, 'resolve': False,
                'reason': '%s incidents are resolved by a person (incident_auto_resolve)' % record['type']}
    if alerts_resolved and record['status'] == 'monitoring':
        # The detection rules stopped firing after the response: that is the verification.
        return {'monitor': monitor, 'resolve': True, 'reason': 'its alerts resolved after the automated response'}
    unverified = [action['name'] for action in record.get('actions') or []
                  if (action.get('details') or {}).get('verified') is False]
    if unverified:
        return {'monitor': monitor, 'resolve': False,
                'reason': 'recovery could not be verified (%s): monitoring until its alerts resolve or a person resolves it'
                          % ', '.join(unverified)}
    resolve = plan_ran and resolve_on_success
    return {'monitor': monitor, 'resolve': resolve,
            'reason': 'automated response completed' if resolve else 'monitoring; a responder resolves the incident'}
