# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Approvals: a response action that waits for a person's yes or no before it runs.

The inventory marks actions per incident type (``incident_approvals: {security_breach: [scale_down, ...]}``). Before
such an action the response records a pending approval in the incident (the record's optional ``approvals`` list),
posts the request (Slack buttons ``incident_approve`` / ``incident_reject``, a PagerDuty note) and waits, bounded, for
a decision. A person decides from Slack, PagerDuty, the ``incident_approval`` module or the CLI; the decision, who
made it and when are recorded. A request that times out stays pending: the action does not run, the response stops
and hands the incident over, and a later approval is applied by the next response run of the incident
(:func:`awaiting_run`, read by ``runs.plan_decision``).

Pure functions over the record; the incident service writes them (``IncidentService.edit``).
"""

from __future__ import annotations

import datetime
import re
import time

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

STATUSES = rec.APPROVAL_STATUSES
DECISIONS = ('approved', 'rejected')
ACTION_RE = re.compile(r'^[a-z][a-z0-9_]{0,63}$')
# The value of the Approve / Reject buttons: the incident, the phase and the action (data, validated; never an instruction).
VALUE_RE = re.compile(r'^(INC-\d{8}-\d{4,6}):([a-z_]{1,32}):([a-z][a-z0-9_]{0,63})$')
MAX_REASON = 2000
# How long after the end of its wait a response run waiting for approval still counts as alive.
RUN_MARGIN = 600

# What a person is asked to approve, in a sentence (messages and the module's return); other actions by their name.
DESCRIPTIONS = {
    'scale_down': 'scale the exporter Deployment to 0 replicas (the pods and their logs go away; evidence is captured first)',
    'rotate_credentials': 'rotate the SLURM JWT in the credentials Secret (scontrol token); the old token stops working',
    'rotate_tls': 'replace the TLS certificate and key in the TLS Secret',
    'restore_known_good': 'roll the exporter Deployment back to the known-good revision (or manifest)',
    'delete_infected_pods': 'delete the exporter pods flagged as infected',
    'restore_namespace': 'restore the namespace from the backup manifests',
    'restore_configmap': 'replace the exporter ConfigMap with its known-good copy',
    'rollout_restart': 'restart every exporter pod (rolling)',
    'restart_deployment': 'restart the exporter Deployment',
    'restart_pod': 'delete one exporter pod so that it is recreated',
    'raise_limits': 'raise the exporter container limits',
    'cleanup_evicted_pods': 'delete evicted exporter pods',
    'reschedule_from_failed_nodes': 'delete the exporter pods on failed nodes so that they are rescheduled',
    'rollback_if_unavailable': 'roll the Deployment back when it is unavailable',
    'restore_network_policy': 'restore the exporter NetworkPolicies',
}


def describe(action):
    return DESCRIPTIONS.get(action, 'run the response action %s' % action)


def validate_action(value, field='action'):
    if not isinstance(value, str) or not ACTION_RE.fullmatch(value):
        raise ValidationError('%s: expected an action name (a-z, 0-9, _), got %r' % (field, value))
    return value


def validate_phase(value, field='phase', required=False):
    if value is None and not required:
        return None
    if value not in rec.PHASES:
        raise ValidationError('%s: expected one of %s, got %r' % (field, ', '.join(rec.PHASES), value))
    return value


def button_value(incident_id, phase, action):
    """What the Approve / Reject buttons carry: ``INC-YYYYMMDD-NNNN:<phase>:<action>``."""
    return '%s:%s:%s' % (incident_id, phase, action)


def parse_button_value(value):
    """``(incident_id, phase, action)`` from a button value; ValidationError for anything else."""
    match = VALUE_RE.fullmatch(value) if isinstance(value, str) else None
    if not match or match.group(2) not in rec.PHASES:
        raise ValidationError('the button value is not INC-YYYYMMDD-NNNN:<phase>:<action>: %r' % (str(value)[:100],))
    return match.group(1), match.group(2), match.group(3)


def validate_settings(settings, known_types=None):
    """``incident_approvals``: a mapping of incident type (or ``all``) to the list of actions that need approval."""
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ValidationError('incident_approvals: expected a mapping of incident type to a list of actions, got %s'
                              % type(settings).__name__)
    clean = {}
    for type_name, actions in settings.items():
        if known_types is not None and type_name != 'all' and type_name not in known_types:
            raise ValidationError('incident_approvals: unknown incident type %r (known: all, %s)' % (type_name, ', '.join(sorted(known_types))))
        if not isinstance(actions, list):
            raise ValidationError('incident_approvals.%s: expected a list of action names' % type_name)
        clean[type_name] = [validate_action(action, 'incident_approvals.%s[%d]' % (type_name, index)) for index, action in enumerate(actions)]
    return clean


def required(settings, incident_type, action):
    """Whether ``action`` needs a person's approval for incidents of ``incident_type``."""
    settings = validate_settings(settings)
    return action in settings.get(incident_type, []) or action in settings.get('all', [])


def entries(record):
    return record.get('approvals') or []


def find(record, action, phase=None):
    """The approval of ``action``: in ``phase``, or one decided ahead for any phase (phase None). Newest wins."""
    for entry in reversed(entries(record)):
        if entry['action'] == action and (phase is None or entry['phase'] in (phase, None)):
            return entry
    return None


def pending(record):
    return [entry for entry in entries(record) if entry['status'] == 'pending']


def _new_entry(action, phase):
    return {'action': action, 'phase': phase, 'status': 'pending', 'requested_at': None, 'requested_by': None,
            'expires_at': None, 'run': None, 'timed_out_at': None, 'decided_at': None, 'decided_by': None, 'reason': None,
            'via': None}


def summary(entry):
    """One line: ``scale_down (containment): approved by slack:U1 (alice) at ...``."""
    text = '%s (%s): %s' % (entry['action'], entry['phase'] or 'any phase', entry['status'])
    if entry['status'] != 'pending':
        text += ' by %s at %s' % (entry['decided_by'], entry['decided_at'])
        if entry.get('reason'):
            text += ': %s' % entry['reason']
    elif entry.get('timed_out_at'):
        text += ' (the response stopped waiting at %s)' % entry['timed_out_at']
    elif entry.get('expires_at'):
        text += ' (the response waits until %s)' % entry['expires_at']
    return text


def request(record, action, phase, now, actor, timeout=None, run=None):
    """Record that ``action`` in ``phase`` waits for approval; returns ``(entry, created)``.

    An approval already decided (approved or rejected, also ahead of the request) is returned as it is. A pending one is
    requested again by a new run (its deadline and run change, the timed-out mark is cleared).
    """
    validate_action(action)
    validate_phase(phase, required=True)
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0):
        raise ValidationError('timeout: expected a number of seconds >= 0, got %r' % (timeout,))
    entry = find(record, action, phase)
    if entry is not None and entry['status'] in DECISIONS:
        return entry, False
    expires = timeutil.format_ts(now + datetime.timedelta(seconds=timeout)) if timeout else None
    created = entry is None
    if created:
        entry = _new_entry(action, phase)
        record.setdefault('approvals', []).append(entry)
    elif entry['run'] == run and run is not None and not entry['timed_out_at']:
        return entry, False
    entry.update(requested_at=timeutil.format_ts(now), requested_by=actor, expires_at=expires, run=run, timed_out_at=None)
    extended = _extend_run(record, run, now, timeout)
    message = 'Approval requested: %s (%s) runs only when a person approves it: %s' % (action, phase, describe(action))
    if expires:
        message += '. The response waits until %s' % expires
    details = {'approval': {'action': action, 'phase': phase, 'status': 'pending', 'expires_at': expires, 'run': run}}
    if extended:
        details['run_deadline_at'] = extended
    rec.add_timeline(record, now, phase, 'update', message, actor, details)
    return entry, created


def _extend_run(record, run_id, now, timeout):
    """A run waiting for a person is not a dead run: its deadline moves past the wait (plus RUN_MARGIN), so that the
    escalation job or the launcher do not hand it over while it waits. Returns the new deadline, or None."""
    if not run_id or not timeout:
        return None
    wanted = timeutil.format_ts(now + datetime.timedelta(seconds=timeout + RUN_MARGIN))
    for run in record.get('runs') or []:
        if run['id'] == run_id and run['outcome'] == 'running' and run['deadline_at'] < wanted:
            run['deadline_at'] = wanted
            return wanted
    return None


def decide(record, action, phase, decision, actor, now, reason=None, via=None, event=None):
    """A person's decision; returns ``(entry, changed)``.

    Deciding an action nobody asked about yet records the decision ahead (the response finds it when it gets there).
    The same decision twice changes nothing; the opposite decision on a decided approval is refused (the first person's
    answer stands: a change of mind is a new request, made by the next run after a person resets it).
    """
    validate_action(action)
    validate_phase(phase)
    if decision not in DECISIONS:
        raise ValidationError('decision: expected approved or rejected, got %r' % (decision,))
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise ValidationError('reason: expected a text of at most %d characters' % MAX_REASON)
    if record['status'] == 'resolved':
        raise ValidationError('incident %s is resolved; there is nothing left to approve' % record['id'])
    entry = find(record, action, phase)
    if entry is not None and entry['status'] in DECISIONS:
        if entry['status'] == decision:
            return entry, False
        raise ValidationError('%s of incident %s was already %s by %s at %s'
                              % (action, record['id'], entry['status'], entry['decided_by'], entry['decided_at']))
    if entry is None:
        entry = _new_entry(action, phase)
        record.setdefault('approvals', []).append(entry)
    entry.update(status=decision, decided_at=timeutil.format_ts(now), decided_by=actor, reason=reason or None, via=via)
    message = '%s: %s (%s) by %s' % ('Approved' if decision == 'approved' else 'Rejected', action, entry['phase'] or 'any phase', actor)
    if reason:
        message += ': %s' % reason
    if decision == 'approved' and not entry['requested_at']:
        message += ' (ahead of the request)'
    details = {'approval': {'action': action, 'phase': entry['phase'], 'status': decision, 'via': via}}
    if event:
        details['inbound'] = event
    rec.add_timeline(record, now, entry['phase'] or 'triage', 'update', message, actor, details)
    return entry, True


def time_out(record, action, phase, now, actor, waited):
    """The response stopped waiting: the approval stays pending (a person can still answer); returns ``(entry, changed)``."""
    entry = find(record, action, phase)
    if entry is None or entry['status'] != 'pending' or entry.get('timed_out_at'):
        return entry, False
    entry['timed_out_at'] = timeutil.format_ts(now)
    rec.add_timeline(record, now, phase, 'update',
                     'No decision on %s (%s) after %d s: the action did not run. An approval given later is applied by the next '
                     'response run of this incident' % (action, phase, int(waited)), actor,
                     {'approval': {'action': action, 'phase': phase, 'status': 'pending', 'timed_out_at': entry['timed_out_at']}})
    return entry, True


def awaiting_run(record):
    """Approved actions that have not run successfully yet: a response run should pick them up."""
    done = {(action['name'], action['phase']) for action in record.get('actions') or [] if action.get('result') == 'success'}
    done_names = {name for name, _phase in done}
    found = []
    for entry in entries(record):
        if entry['status'] != 'approved':
            continue
        if entry['phase'] is None:
            # Decided ahead: it only resumes a run for an action the response already stopped at.
            blocked = [action for action in record.get('actions') or [] if action['name'] == entry['action']
                       and action.get('result') != 'success']
            if blocked and entry['action'] not in done_names:
                found.append(entry)
        elif (entry['action'], entry['phase']) not in done:
            found.append(entry)
    return found


def seconds_left(entry, timeout, now=None):
    """How long a wait for ``entry`` may last: until its ``expires_at``, at most ``timeout`` seconds."""
    if not entry or not entry.get('expires_at'):
        return float(timeout)
    left = (timeutil.parse_ts(entry['expires_at']) - (now or timeutil.utcnow())).total_seconds()
    return max(0.0, min(float(timeout), left))


def await_decision(read, action, phase, timeout, poll_interval=2.0, sleep=None, monotonic=None):
    """Poll ``read()`` (the record) until the approval of ``action`` is decided or ``timeout`` seconds passed.

    Returns ``(entry, waited_seconds)``; the entry is still pending after a time-out. Nothing is held while waiting
    (no store lock, no Lease): the decision is written by another process (the launcher, a module run by a person).
    """
    sleep = sleep or time.sleep
    monotonic = monotonic or time.monotonic
    started = monotonic()
    poll_interval = max(0.05, float(poll_interval))
    while True:
        entry = find(read(), action, phase)
        waited = monotonic() - started
        if entry is None or entry['status'] != 'pending' or waited >= timeout:
            return entry, waited
        sleep(min(poll_interval, max(0.0, timeout - waited)))
