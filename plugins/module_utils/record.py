# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The incident record: schema, validation, lifecycle rules and pure edits.

A record is a JSON-compatible dict. Nothing here touches the disk; the store
validates with :func:`validate_record` before every write.
"""

from __future__ import annotations

import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import (
    RecordError, TransitionError, ValidationError)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import alertmanager
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

SCHEMA_VERSION = 1
ID_RE = re.compile(r'^INC-(\d{8})-(\d{4,6})$')
FINGERPRINT_RE = alertmanager.FINGERPRINT_RE
TS_RE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$')

STATUSES = ('investigating', 'identified', 'monitoring', 'resolved')
# Allowed status changes. Staying in the same status is a no-op, never an error.
TRANSITIONS = {
    'investigating': ('identified', 'monitoring', 'resolved'),
    'identified': ('monitoring', 'resolved', 'investigating'),
    'monitoring': ('resolved', 'investigating'),
    # A resolved incident is reopened (by a person, or when its alert fires again within the correlation cool-down).
    'resolved': ('investigating',),
}
PHASES = ('detection', 'triage', 'containment', 'investigation', 'eradication', 'recovery',
          'communication', 'escalation', 'lessons_learned')
TIMELINE_KINDS = ('opened', 'alert', 'status', 'action', 'evidence', 'notification', 'note', 'escalation',
                  'acknowledgement', 'root_cause', 'resolution', 'follow_up', 'update')
# success: done (or already as wanted); failed: tried and failed; skipped: not needed; pending: in progress;
# suppressed: the flapping guard held it back (the same kind of change on the workload too recently);
# blocked: a guardrail refused it (evidence not captured, minimum of available replicas, a cumulative bound);
# needs_person: automation cannot do it honestly (e.g. no SLURM controller to rotate the JWT key): the details say how.
ACTION_RESULTS = ('success', 'failed', 'skipped', 'pending', 'suppressed', 'blocked', 'needs_person')
NOTIFICATION_STATUSES = ('sent', 'failed', 'skipped', 'pending', 'suppressed')
FOLLOW_UP_STATUSES = ('open', 'in_progress', 'done', 'wont_do')
ALERT_STATUSES = ('firing', 'resolved')
# approvals (module_utils/approvals.py): pending until a person approves or rejects the action.
APPROVAL_STATUSES = ('pending', 'approved', 'rejected')

MAX_TEXT = 65536


def validate_id(value, field='id'):
    """An incident id, INC-YYYYMMDD-NNNN; anything else (path characters included) is refused."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ValidationError("%s: %s is not an incident id; expected INC-YYYYMMDD-NNNN (e.g. INC-20260131-0001)" % (field, _short(value)))
    return value


def validate_fingerprint(value, field='fingerprint'):
    """An alert fingerprint (1-64 hexadecimal characters), lower-cased: the Alertmanager contract's rule."""
    return alertmanager.validate_fingerprint(value, field)


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


label_fingerprint = alertmanager.label_fingerprint


def normalise_alert(alert, now, field='alerts[0]'):
    """Validate one Alertmanager (webhook v4) alert with the Alertmanager contract and return the record's alert entry."""
    clean = alertmanager.normalise_alert(alert, field=field)
    entry = {
        'fingerprint': clean['fingerprint'],
        'status': clean['status'],
        'labels': clean['labels'],
        'annotations': clean['annotations'],
        'startsAt': None,
        'endsAt': None,
        'generatorURL': clean['generatorURL'],
        'received_at': timeutil.format_ts(now),
    }
    for key in ('startsAt', 'endsAt'):
        if clean[key] is not None:
            parsed = timeutil.parse_ts(clean[key], '%s.%s' % (field, key))
            # Alertmanager's zero time (0001-01-01T00:00:00Z) means "not set".
            entry[key] = None if parsed.year <= 1 else timeutil.format_ts(parsed)
    return entry


def normalise_alerts(alerts, now, field='alerts'):
    """A list of alerts (at most the contract's alerts per payload), each as the record's alert entry."""
    clean = alertmanager.normalise_alerts(alerts, field=field)
    return [normalise_alert(alert, now, '%s[%d]' % (field, index)) for index, alert in enumerate(clean)]


def new_record(catalog, incident_id, type_name, now, severity=None, drill=False, title=None, summary=None,
               impact=None, actor='automation'):
    """A fresh record in status investigating, with due times from the catalog."""
    profile = catalog.profile(type_name, severity)
    info = catalog.types[type_name]
    record = {
        'schema_version': SCHEMA_VERSION,
        'id': incident_id,
        'revision': 0,
        'type': type_name,
        'category': profile['category'],
        'severity': profile['severity'],
        'priority': profile['priority'],
        'status': 'investigating',
        'drill': bool(drill),
        'title': title or '%s%s' % ('[DRILL] ' if drill else '', info['description']),
        'summary': summary or info['description'],
        'impact': impact or '',
        'created_at': timeutil.format_ts(now),
        'updated_at': timeutil.format_ts(now),
        'acknowledged_at': None,
        'acknowledged_by': None,
        'mitigated_at': None,
        'resolved_at': None,
        'response_due_at': timeutil.format_ts(catalog.response_due(type_name, now)),
        'escalation_due_at': timeutil.format_ts(catalog.escalation_due(profile['severity'], now)),
        'escalation_level': 0,
        'alerts': [],
        'timeline': [],
        'actions': [],
        'evidence': [],
        'notifications': [],
        'root_cause': None,
        'resolution': None,
        'follow_ups': [],
        'reports': [],
    }
    add_timeline(record, now, 'detection', 'opened',
                 'Incident opened: %s (%s, %s)' % (type_name, profile['severity'], profile['priority']), actor)
    return record


def add_timeline(record, now, phase, kind, message, actor, details=None):
    entry = {
        'time': timeutil.format_ts(now),
        'phase': phase,
        'kind': kind,
        'message': message,
        'actor': actor,
        'details': details or {},
    }
    _check_timeline_entry(entry, 'timeline[%d]' % len(record['timeline']))
    record['timeline'].append(entry)
    return entry


def merge_alert(record, entry, now, actor):
    """Attach or refresh an alert; returns True when the record changed."""
    for existing in record['alerts']:
        if existing['fingerprint'] == entry['fingerprint']:
            changed = False
            keys = ('status', 'endsAt', 'labels', 'annotations', 'generatorURL')
            if (entry['status'] == 'resolved' and entry.get('startsAt') and existing.get('startsAt')
                    and entry['startsAt'] < existing['startsAt']):
                # The late resolution of an earlier firing: the alert has fired again since, and is not resolved.
                return False
            if entry['status'] == 'firing' and entry.get('startsAt'):
                # The alert fired again (a new startsAt): the entry describes its latest firing.
                keys += ('startsAt',)
            for key in keys:
                if entry.get(key) is not None and existing.get(key) != entry[key]:
                    existing[key] = entry[key]
                    changed = True
            if changed:
                add_timeline(record, now, 'detection', 'alert',
                             'Alert %s is %s' % (entry['labels'].get('alertname', entry['fingerprint']), entry['status']),
                             actor, {'fingerprint': entry['fingerprint'], 'status': entry['status']})
            return changed
    record['alerts'].append(entry)
    add_timeline(record, now, 'detection', 'alert',
                 'Alert %s attached (%s)' % (entry['labels'].get('alertname', entry['fingerprint']), entry['status']),
                 actor, {'fingerprint': entry['fingerprint'], 'status': entry['status']})
    return True


def set_status(record, target, now, actor, reason=None):
    """Move the record to ``target`` along the lifecycle; returns True when it changed."""
    if target not in STATUSES:
        raise ValidationError("status: unknown status %s; use one of: %s" % (_short(target), ', '.join(STATUSES)))
    current = record['status']
    if target == current:
        return False
    if target not in TRANSITIONS[current]:
        allowed = ', '.join(TRANSITIONS[current]) or 'none (resolved incidents are closed)'
        raise TransitionError("incident %s: cannot move from %s to %s; allowed from %s: %s"
                              % (record['id'], current, target, current, allowed))
    record['status'] = target
    stamp = timeutil.format_ts(now)
    if target in ('monitoring', 'resolved') and not record['mitigated_at']:
        record['mitigated_at'] = stamp
    if target == 'resolved':
        record['resolved_at'] = stamp
    message = 'Status %s -> %s' % (current, target)
    if reason:
        message += ': %s' % reason
    add_timeline(record, now, 'recovery' if target in ('monitoring', 'resolved') else 'investigation', 'status',
                 message, actor, {'from': current, 'to': target})
    return True


def upsert_action(record, action, now, actor):
    """Record an action's outcome; the same name+phase updates the earlier entry (idempotent re-runs)."""
    entry = {
        'name': action['name'],
        'phase': action.get('phase') or 'containment',
        'result': action.get('result') or 'success',
        'changed': bool(action.get('changed', False)),
        'time': timeutil.format_ts(now),
        'details': action.get('details') or {},
    }
    for index, existing in enumerate(record['actions']):
        if existing['name'] == entry['name'] and existing['phase'] == entry['phase']:
            if all(existing[key] == entry[key] for key in ('result', 'changed', 'details')):
                return False
            record['actions'][index] = entry
            break
    else:
        record['actions'].append(entry)
    add_timeline(record, now, entry['phase'], 'action', 'Action %s: %s' % (entry['name'], entry['result']), actor,
                 {'name': entry['name'], 'result': entry['result'], 'changed': entry['changed']})
    return True


def add_evidence(record, evidence, now, actor):
    entry = {
        'path': evidence['path'],
        'sha256': evidence['sha256'].lower(),
        'time': timeutil.format_ts(now),
        'details': evidence.get('details') or {},
    }
    for existing in record['evidence']:
        if existing['path'] == entry['path'] and existing['sha256'] == entry['sha256']:
            return False
    record['evidence'].append(entry)
    add_timeline(record, now, 'investigation', 'evidence', 'Evidence bundle %s registered' % entry['path'], actor,
                 {'path': entry['path'], 'sha256': entry['sha256']})
    return True


def add_notification(record, notification, now, actor):
    entry = {
        'channel': notification['channel'],
        'template': notification.get('template') or '',
        'status': notification.get('status') or 'sent',
        'attempts': int(notification.get('attempts') or 1),
        'time': timeutil.format_ts(now),
        'details': notification.get('details') or {},
    }
    record['notifications'].append(entry)
    add_timeline(record, now, 'communication', 'notification',
                 'Notification %s via %s: %s' % (entry['template'] or '-', entry['channel'], entry['status']), actor,
                 {'channel': entry['channel'], 'status': entry['status'], 'attempts': entry['attempts']})
    return True


def add_report(record, report, now, actor):
    """Register a written report; the same kind and path replaces the earlier entry."""
    entry = dict(report, time=timeutil.format_ts(now))
    reports = record.setdefault('reports', [])
    for index, existing in enumerate(reports):
        if existing['kind'] == entry['kind'] and existing['path'] == entry['path']:
            if {k: v for k, v in existing.items() if k != 'time'} == {k: v for k, v in entry.items() if k != 'time'}:
                return False
            reports[index] = entry
            break
    else:
        reports.append(entry)
    add_timeline(record, now, 'lessons_learned', 'update', 'Report written: %s' % entry['path'], actor, {'kind': entry['kind']})
    return True


def add_follow_up(record, item, now, actor):
    entry = {
        'title': item['title'],
        'owner': item.get('owner') or '',
        'due': item.get('due') or None,
        'status': item.get('status') or 'open',
    }
    for index, existing in enumerate(record['follow_ups']):
        if existing['title'] == entry['title']:
            if existing == entry:
                return False
            record['follow_ups'][index] = entry
            break
    else:
        record['follow_ups'].append(entry)
    add_timeline(record, now, 'lessons_learned', 'follow_up', 'Follow-up: %s (%s)' % (entry['title'], entry['status']), actor)
    return True


# -- schema ---------------------------------------------------------------------
def _fail(path, message):
    raise RecordError('%s: %s' % (path, message))


def _expect(path, value, kinds, nullable=False):
    if value is None and nullable:
        return
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        _fail(path, 'expected %s, got a boolean' % _kind_names(kinds))
    if not isinstance(value, kinds):
        _fail(path, 'expected %s, got %s' % (_kind_names(kinds), 'null' if value is None else type(value).__name__))


def _kind_names(kinds):
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {str: 'a string', int: 'an integer', bool: 'a boolean', dict: 'a mapping', list: 'a list'}
    return ' or '.join(names.get(kind, kind.__name__) for kind in kinds)


def _expect_ts(path, value, nullable=True):
    _expect(path, value, str, nullable)
    if value is not None and not TS_RE.match(value):
        _fail(path, 'expected an RFC 3339 UTC timestamp, got %s' % _short(value))


def _expect_choice(path, value, choices):
    if value not in choices:
        _fail(path, 'expected one of %s, got %s' % (', '.join(choices), _short(value)))


def _check_timeline_entry(entry, path):
    _expect(path, entry, dict)
    _expect_ts(path + '.time', entry.get('time'), nullable=False)
    _expect_choice(path + '.phase', entry.get('phase'), PHASES)
    _expect_choice(path + '.kind', entry.get('kind'), TIMELINE_KINDS)
    _expect(path + '.message', entry.get('message'), str)
    if len(entry['message']) > MAX_TEXT:
        _fail(path + '.message', 'longer than %d characters' % MAX_TEXT)
    _expect(path + '.actor', entry.get('actor'), str)
    _expect(path + '.details', entry.get('details'), dict)


_TOP = {
    'schema_version': int, 'id': str, 'revision': int, 'type': str, 'category': str, 'severity': str,
    'priority': str, 'status': str, 'drill': bool, 'title': str, 'summary': str, 'impact': str,
    'created_at': 'ts!', 'updated_at': 'ts!', 'acknowledged_at': 'ts', 'acknowledged_by': (str, None),
    'mitigated_at': 'ts', 'resolved_at': 'ts', 'response_due_at': 'ts!', 'escalation_due_at': 'ts',
    'escalation_level': int, 'alerts': list, 'timeline': list, 'actions': list, 'evidence': list,
    'notifications': list, 'root_cause': (str, None), 'resolution': (str, None), 'follow_ups': list,
}


# Fields added within schema version 1: optional, absent in records written before them.
# workload: namespace/deployment the response acts on (correlation key); runs: response runs (module_utils/runs.py);
# approvals: actions that wait for a person's decision (module_utils/approvals.py).
_OPTIONAL = {'reports': list, 'workload': str, 'runs': list, 'approvals': list}
RUN_OUTCOMES = ('running', 'completed', 'failed', 'lost')


def _check_approval(item, path):
    _expect(path, item, dict)
    _expect(path + '.action', item.get('action'), str)
    if item.get('phase') is not None:
        _expect_choice(path + '.phase', item.get('phase'), PHASES)
    _expect_choice(path + '.status', item.get('status'), APPROVAL_STATUSES)
    for key in ('requested_at', 'expires_at', 'timed_out_at', 'decided_at'):
        _expect_ts('%s.%s' % (path, key), item.get(key))
    for key in ('requested_by', 'run', 'decided_by', 'reason', 'via'):
        _expect('%s.%s' % (path, key), item.get(key), str, nullable=True)
    if item['status'] != 'pending' and not (item.get('decided_at') and item.get('decided_by')):
        _fail(path, 'a %s approval names who decided and when (decided_by, decided_at)' % item['status'])


def validate_record(record):
    """Raise RecordError naming the first field that does not match schema version 1."""
    _expect('record', record, dict)
    missing = [key for key in _TOP if key not in record]
    if missing:
        _fail('record', 'missing field(s): %s' % ', '.join(missing))
    extra = [key for key in record if key not in _TOP and key not in _OPTIONAL and not key.startswith('x_')]
    if extra:
        _fail('record', 'unknown field(s): %s (extensions must start with x_)' % ', '.join(sorted(extra)))
    for key, kind in _OPTIONAL.items():
        if key in record:
            _expect(key, record[key], kind)
    if record['schema_version'] != SCHEMA_VERSION:
        _fail('schema_version', 'this collection reads schema version %d, the record has %r' % (SCHEMA_VERSION, record['schema_version']))
    for key, spec in _TOP.items():
        value = record[key]
        if spec in ('ts', 'ts!'):
            _expect_ts(key, value, nullable=spec == 'ts')
        elif isinstance(spec, tuple):
            _expect(key, value, str, nullable=True)
        else:
            _expect(key, value, spec)
    if not ID_RE.match(record['id']):
        _fail('id', 'expected INC-YYYYMMDD-NNNN, got %s' % _short(record['id']))
    _expect_choice('status', record['status'], STATUSES)
    if record['revision'] < 0 or record['escalation_level'] < 0:
        _fail('revision', 'revision and escalation_level cannot be negative')
    for index, alert in enumerate(record['alerts']):
        path = 'alerts[%d]' % index
        _expect(path, alert, dict)
        if not isinstance(alert.get('fingerprint'), str) or not FINGERPRINT_RE.match(alert['fingerprint']):
            _fail(path + '.fingerprint', 'expected 1-64 hexadecimal characters')
        _expect_choice(path + '.status', alert.get('status'), ALERT_STATUSES)
        _expect(path + '.labels', alert.get('labels'), dict)
        _expect(path + '.annotations', alert.get('annotations'), dict)
        for key in ('startsAt', 'endsAt', 'received_at'):
            _expect_ts('%s.%s' % (path, key), alert.get(key))
    for index, entry in enumerate(record['timeline']):
        _check_timeline_entry(entry, 'timeline[%d]' % index)
    for index, action in enumerate(record['actions']):
        path = 'actions[%d]' % index
        _expect(path, action, dict)
        _expect(path + '.name', action.get('name'), str)
        _expect_choice(path + '.phase', action.get('phase'), PHASES)
        _expect_choice(path + '.result', action.get('result'), ACTION_RESULTS)
        _expect(path + '.changed', action.get('changed'), bool)
        _expect_ts(path + '.time', action.get('time'), nullable=False)
        _expect(path + '.details', action.get('details'), dict)
    for index, item in enumerate(record['evidence']):
        path = 'evidence[%d]' % index
        _expect(path, item, dict)
        _expect(path + '.path', item.get('path'), str)
        if not isinstance(item.get('sha256'), str) or not re.match(r'^[0-9a-f]{64}$', item['sha256']):
            _fail(path + '.sha256', 'expected 64 lower-case hexadecimal characters')
        _expect_ts(path + '.time', item.get('time'), nullable=False)
    for index, item in enumerate(record['notifications']):
        path = 'notifications[%d]' % index
        _expect(path, item, dict)
        _expect(path + '.channel', item.get('channel'), str)
        _expect(path + '.template', item.get('template'), str)
        _expect_choice(path + '.status', item.get('status'), NOTIFICATION_STATUSES)
        _expect(path + '.attempts', item.get('attempts'), int)
        _expect_ts(path + '.time', item.get('time'), nullable=False)
    for index, run in enumerate(record.get('runs', [])):
        path = 'runs[%d]' % index
        _expect(path, run, dict)
        _expect(path + '.id', run.get('id'), str)
        _expect_choice(path + '.outcome', run.get('outcome'), RUN_OUTCOMES)
        _expect_ts(path + '.started_at', run.get('started_at'), nullable=False)
        _expect_ts(path + '.deadline_at', run.get('deadline_at'), nullable=False)
        _expect_ts(path + '.ended_at', run.get('ended_at'))
    for index, item in enumerate(record.get('approvals', [])):
        _check_approval(item, 'approvals[%d]' % index)
    for index, item in enumerate(record.get('reports', [])):
        path = 'reports[%d]' % index
        _expect(path, item, dict)
        _expect(path + '.kind', item.get('kind'), str)
        _expect(path + '.path', item.get('path'), str)
        _expect_ts(path + '.time', item.get('time'), nullable=False)
    for index, item in enumerate(record['follow_ups']):
        path = 'follow_ups[%d]' % index
        _expect(path, item, dict)
        _expect(path + '.title', item.get('title'), str)
        _expect(path + '.owner', item.get('owner'), str)
        _expect_choice(path + '.status', item.get('status'), FOLLOW_UP_STATUSES)
    return record
