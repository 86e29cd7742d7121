# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""People in the loop: who did something (the audit actor of every path), and what a person asks of an incident.

- :func:`person` names a person from Slack or PagerDuty (``slack:U0123ABC (alice)``, ``pagerduty:PLH1HKV (Jane Doe)``);
  :func:`audit_actor` names the actor of a playbook run from its environment: the AWX job and user, the webhook
  launcher's run, the Event-Driven Ansible rule, or the OS user of the command line.
- :class:`Command` is one request of a person (acknowledge, resolve with a resolution, a timeline note, approve or
  reject a pending action, status), from the webhook launcher's inbound receivers (Slack, PagerDuty) or from a module;
  :func:`apply` carries it out through :class:`IncidentService`, as the acting person, so that every change is
  validated, locked, written atomically and audited as the modules' changes are.

Names and texts from Slack and PagerDuty are data: control characters are dropped, lengths capped, and they are only
ever stored and printed (escaped in Slack mrkdwn), never templated.
"""

from __future__ import annotations

import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import approvals
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import NotFoundError, ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.slack import escape

VERBS = ('acknowledge', 'resolve', 'note', 'approve', 'reject', 'status')
CHANGES = ('acknowledge', 'resolve', 'note', 'approve', 'reject')
SOURCES = ('slack', 'pagerduty', 'cli', 'module')
MAX_NAME = 80
MAX_ID = 64
MAX_TEXT = 4000
_CONTROL = re.compile(r'[\x00-\x1f\x7f\u2028\u2029]+')
_ID_RE = re.compile(r'^[A-Za-z0-9._@:-]{1,64}$')


def clean_text(value, limit=MAX_TEXT):
    """A person's text as data: control characters become spaces, surrounding blanks go, at most ``limit`` characters."""
    if value is None:
        return ''
    text = _CONTROL.sub(' ', str(value)).strip()
    return text[:limit]


def person(source, user_id, name=None):
    """``<source>:<id> (<name>)``; the id must look like an id (letters, digits, ``._@:-``), the name is cleaned."""
    if source not in SOURCES:
        raise ValidationError('actor source: expected one of %s, got %r' % (', '.join(SOURCES), source))
    user_id = '' if user_id is None else str(user_id)
    if not _ID_RE.fullmatch(user_id):
        raise ValidationError('%s user id: expected letters, digits or ._@:- (at most %d), got %r' % (source, MAX_ID, user_id[:80]))
    name = ' '.join(clean_text(name, MAX_NAME).split())
    return '%s:%s (%s)' % (source, user_id, name) if name and name != user_id else '%s:%s' % (source, user_id)


def is_person(actor):
    """Whether an actor string names a person (Slack, PagerDuty, the CLI, an AWX user) rather than automation."""
    if not isinstance(actor, str) or ':' not in actor:
        return False
    source, rest = actor.split(':', 1)
    if source == 'awx':
        return not rest.startswith(('schedule ', 'job '))
    return source in ('slack', 'pagerduty', 'cli')


def _first(variables, *names):
    for name in names:
        value = variables.get(name)
        if value not in (None, ''):
            return clean_text(value, MAX_NAME)
    return ''


def audit_actor(variables, os_user=None):
    """The actor of a playbook run, from its variables (``awx_*``/``tower_*`` job variables, ``ansible_eda``,
    ``incident_launched_by`` and ``response_run_id`` from the webhook launcher) and the OS user of the controller.

    - AWX / Automation Controller: ``awx:<user> (job 123, template respond)``; a scheduled job
      ``awx:schedule <name> (job 124, template escalate)``; a job without a user (a callback) ``awx:job 125 (...)``.
    - the webhook launcher: ``launcher:incident-launcher (run launcher-0a1b2c)``.
    - Event-Driven Ansible: ``eda:<rulebook ruleset>/<rule>``.
    - the command line: ``cli:<user>``; nothing known: ``ansible``.
    """
    variables = variables or {}
    job = _first(variables, 'awx_job_id', 'tower_job_id')
    if job:
        template = _first(variables, 'awx_job_template_name', 'tower_job_template_name')
        context = 'job %s%s' % (job, ', template %s' % template if template else '')
        user = _first(variables, 'awx_user_name', 'tower_user_name')
        schedule = _first(variables, 'awx_schedule_name', 'tower_schedule_name')
        workflow = _first(variables, 'awx_workflow_job_name', 'tower_workflow_job_name')
        if workflow:
            context += ', workflow %s' % workflow
        if user:
            return 'awx:%s (%s)' % (user, context)
        if schedule:
            return 'awx:schedule %s (%s)' % (schedule, context)
        return 'awx:job %s%s' % (job, ' (%s)' % context.split(', ', 1)[1] if ', ' in context else '')
    launcher = _first(variables, 'incident_launched_by')
    if launcher:
        run = _first(variables, 'response_run_id')
        return 'launcher:%s%s' % (launcher, ' (run %s)' % run if run else '')
    eda = variables.get('ansible_eda')
    if isinstance(eda, dict) and (eda.get('ruleset') or eda.get('rule')):
        return 'eda:%s/%s' % (clean_text(eda.get('ruleset') or '-', MAX_NAME), clean_text(eda.get('rule') or '-', MAX_NAME))
    user = clean_text(os_user, MAX_NAME)
    return 'cli:%s' % user if user else 'ansible'


class Command:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    """What a person asks: ``verb`` on ``incident_id`` as ``actor``; ``text`` (resolution, note, reason), ``action`` and
    ``phase`` (approve, reject), ``event`` (``{'source', 'id'}`` of the inbound request: the same event is applied once)."""

    def __init__(self, verb, incident_id, actor, source, action=None, phase=None, text=None, event=None):
        if verb not in VERBS:
            raise ValidationError('unknown command %r; use one of %s' % (verb, ', '.join(VERBS)))
        self.verb = verb
        self.incident_id = rec.validate_id(incident_id, 'incident')
        self.actor = actor
        self.source = source
        self.action = approvals.validate_action(action) if action is not None else None
        self.phase = approvals.validate_phase(phase)
        self.text = clean_text(text) or None
        self.event = event
        if verb in ('approve', 'reject') and not self.action:
            raise ValidationError('%s: name the action (for example: %s %s scale_down)' % (verb, verb, incident_id))
        if verb in ('resolve', 'note') and not self.text:
            raise ValidationError('%s: say %s' % (verb, 'what fixed it (the resolution)' if verb == 'resolve' else 'what to note'))

    def describe(self):
        what = self.verb + (' ' + self.action if self.action else '')
        return '%s %s by %s' % (what, self.incident_id, self.actor)


class Reply:  # pylint: disable=too-few-public-methods
    """The answer to a command: ``result`` (applied, unchanged, refused, not_found), the text for the person (Slack
    mrkdwn, values escaped) and the record after it."""

    def __init__(self, result, text, record=None):
        self.result = result
        self.text = text
        self.record = record

    @property
    def changed(self):
        return self.result == 'applied'


def _seen(record, event):
    """Whether the inbound event was already applied to the record (a replay that passed every other check)."""
    if not event or not event.get('id'):
        return False
    for entry in record['timeline']:
        inbound = (entry.get('details') or {}).get('inbound')
        if isinstance(inbound, dict) and inbound.get('id') == event['id'] and inbound.get('source') == event.get('source'):
            return True
    return False


def status_text(record):
    """What ``status`` answers: the incident's state, who acknowledged, its actions and the approvals waiting."""
    lines = ['*%s* %s%s: %s (%s %s), %s' % (record['id'], '[DRILL] ' if record.get('drill') else '', escape(record['title']),
                                            record['type'], record['priority'], record['severity'], record['status'])]
    if record.get('acknowledged_at'):
        lines.append('Acknowledged by %s at %s' % (escape(record.get('acknowledged_by') or 'someone'), record['acknowledged_at']))
    else:
        lines.append('Not acknowledged (response due %s)' % record['response_due_at'])
    if record.get('resolved_at'):
        lines.append('Resolved at %s: %s' % (record['resolved_at'], escape(record.get('resolution') or '')))
    elif record.get('escalation_level'):
        lines.append('Escalation level %d' % record['escalation_level'])
    actions = record.get('actions') or []
    if actions:
        lines.append('Actions: ' + ', '.join('%s %s' % (escape(action['name']), action['result'].replace('_', ' ')) for action in actions[-12:]))
    decided = [entry for entry in approvals.entries(record) if entry['status'] != 'pending']
    if decided:
        lines.append('Approvals: ' + '; '.join(escape(approvals.summary(entry)) for entry in decided[-12:]))
    for entry in approvals.pending(record):
        lines.append('Waiting for approval: %s (%s): approve with `/incident approve %s %s`, reject with `/incident reject %s %s <reason>`'
                     % (escape(entry['action']), entry['phase'] or 'any phase', record['id'], escape(entry['action']), record['id'],
                        escape(entry['action'])))
    return '\n'.join(lines)


def apply(store, catalog, command):
    """Carry out ``command`` through the incident service as the person; returns a :class:`Reply`.

    Bad input, an unknown incident or a refused decision are a ``refused`` / ``not_found`` reply, not an exception; a
    store that cannot be written (a lock held too long) raises (the caller answers "try again").
    """
    service = IncidentService(store, catalog, actor=command.actor)
    incident_id = command.incident_id
    try:
        record = store.read(incident_id)
    except NotFoundError:
        return Reply('not_found', 'There is no incident %s.' % incident_id)
    if command.verb == 'status':
        return Reply('unchanged', status_text(record), record)
    if _seen(record, command.event):
        return Reply('unchanged', 'Already done: this request was applied to %s before.' % incident_id, record)
    try:
        return _change(service, record, command)
    except ValidationError as exc:
        return Reply('refused', 'Not done: %s' % escape(exc.message), record)


def _change(service, record, command):
    verb, incident_id, actor = command.verb, command.incident_id, escape(command.actor)
    if verb == 'acknowledge':
        if record.get('acknowledged_at'):
            text = '%s was already acknowledged by %s at %s.' % (incident_id, escape(record['acknowledged_by'] or 'someone'), record['acknowledged_at'])
            return Reply('unchanged', text, record)
        outcome = service.acknowledge(incident_id, 'via %s' % command.source)
        return Reply('applied', '%s acknowledged by %s.' % (incident_id, actor), outcome.after)
    if verb == 'resolve':
        if record['status'] == 'resolved':
            text = '%s was already resolved at %s: %s' % (incident_id, record['resolved_at'], escape(record.get('resolution') or ''))
            return Reply('unchanged', text, record)
        outcome = service.resolve(incident_id, resolution=command.text)
        return Reply('applied', '%s resolved by %s: %s' % (incident_id, actor, escape(command.text)), outcome.after)
    if verb == 'note':
        def add_note(after, now):
            details = {'inbound': command.event} if command.event else {}
            rec.add_timeline(after, now, 'investigation', 'note', command.text, command.actor, details)
        outcome = service.edit(incident_id, 'note', add_note)
        return Reply('applied', 'Note added to %s by %s.' % (incident_id, actor), outcome.after)
    decision = 'approved' if verb == 'approve' else 'rejected'
    holder = {}

    def decide(after, now):
        holder['entry'], holder['changed'] = approvals.decide(after, command.action, command.phase, decision, command.actor, now,
                                                              reason=command.text, via=command.source, event=command.event)
    outcome = service.edit(incident_id, 'approval', decide)
    entry = holder['entry']
    if not holder['changed']:
        text = '%s of %s was already %s by %s.' % (escape(command.action), incident_id, decision, escape(entry['decided_by']))
        return Reply('unchanged', text, outcome.after)
    waits = entry['requested_at'] and not entry.get('timed_out_at')
    tail = ('the waiting response goes on' if decision == 'approved' else 'the action does not run; the incident stays with a person') \
        if waits else ('the next response run applies it' if decision == 'approved' else 'the action will not run')
    return Reply('applied', '%s %s for %s by %s: %s.' % (escape(command.action), decision, incident_id, actor, tail), outcome.after)
