# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The incident record: schema, validation, lifecycle rules and pure edits.

A record is a JSON-compatible dict. Nothing here touches the disk; the store
validates with :func:`validate_record` before every write.
"""

from __future__ import annotations

import hashlib
import json
import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import (
    RecordError, TransitionError, ValidationError)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

SCHEMA_VERSION = 1
ID_RE = re.compile(r'^INC-(\d{8})-(\d{4,6})$')
FINGERPRINT_RE = re.compile(r'^[0-9a-fA-F]{1,64}$')
TS_RE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$')

STATUSES = ('investigating', 'identified', 'monitoring', 'resolved')
# Allowed status changes. Staying in the same status is a no-op, never an error.
TRANSITIONS = {
    'investigating': ('identified', 'monitoring', 'resolved'),
    'identified': ('monitoring', 'resolved', 'investigating'),
    'monitoring': ('resolved', 'investigating'),
    'resolved': (),
}
PHASES = ('detection', 'triage', 'containment', 'investigation', 'eradication', 'recovery',
          'communication', 'escalation', 'lessons_learned')
TIMELINE_KINDS = ('opened', 'alert', 'status', 'action', 'evidence', 'notification', 'note', 'escalation',
                  'acknowledgement', 'root_cause', 'resolution', 'follow_up', 'update')
ACTION_RESULTS = ('success', 'failed', 'skipped', 'pending')
NOTIFICATION_STATUSES = ('sent', 'failed', 'skipped', 'pending', 'suppressed')
FOLLOW_UP_STATUSES = ('open', 'in_progress', 'done', 'wont_do')
ALERT_STATUSES = ('firing', 'resolved')

MAX_LABELS = 128
MAX_LABEL_VALUE = 16384
MAX_TEXT = 65536


def validate_id(value, field='id'):
    """An incident id, INC-YYYYMMDD-NNNN; anything else (path characters included) is refused."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ValidationError("%s: %s is not an incident id; expected INC-YYYYMMDD-NNNN (e.g. INC-20260131-0001)" % (field, _short(value)))
    return value


def validate_fingerprint(value, field='fingerprint'):
    if not isinstance(value, str) or not FINGERPRINT_RE.match(value):
        raise ValidationError("%s: %s is not an alert fingerprint; expected 1-64 hexadecimal characters" % (field, _short(value)))
    return value.lower()


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def label_fingerprint(labels):
    """A stable fingerprint for an alert that arrives without one: SHA-256 of its sorted labels, 16 hex chars."""
    canonical = json.dumps(labels, sort_keys=True, separators=(',', ':'), ensure_ascii=True)
    return hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:16]


def _string_map(value, field):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("%s: expected a mapping of strings, got %s" % (field, type(value).__name__))
    if len(value) > MAX_LABELS:
        raise ValidationError("%s: %d entries is more than the %d accepted" % (field, len(value), MAX_LABELS))
    result = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError("%s: keys must be non-empty strings, got %s" % (field, _short(key)))
        if not isinstance(item, str):
            raise ValidationError("%s.%s: expected a string value, got %s" % (field, key, type(item).__name__))
        if len(item) > MAX_LABEL_VALUE:
            raise ValidationError("%s.%s: value of %d characters is longer than %d" % (field, key, len(item), MAX_LABEL_VALUE))
        result[key] = item
    return result


def normalise_alert(alert, now, field='alerts[0]'):
    """Validate one Alertmanager (webhook v4) alert and return the record's alert entry."""
    if not isinstance(alert, dict):
        raise ValidationError("%s: expected an Alertmanager alert (a mapping), got %s" % (field, type(alert).__name__))
    labels = _string_map(alert.get('labels'), field + '.labels')
    annotations = _string_map(alert.get('annotations'), field + '.annotations')
    status = alert.get('status', 'firing')
    if status not in ALERT_STATUSES:
        raise ValidationError("%s.status: expected firing or resolved, got %s" % (field, _short(status)))
    fingerprint = alert.get('fingerprint')
    if fingerprint in (None, ''):
        fingerprint = label_fingerprint(labels)
    fingerprint = validate_fingerprint(fingerprint, field + '.fingerprint')
    entry = {
        'fingerprint': fingerprint,
        'status': status,
        'labels': labels,
        'annotations': annotations,
        'startsAt': None,
        'endsAt': None,
        'generatorURL': None,
        'received_at': timeutil.format_ts(now),
    }
    for key in ('startsAt', 'endsAt'):
        value = alert.get(key)
        if value not in (None, ''):
            parsed = timeutil.parse_ts(value, '%s.%s' % (field, key))
            entry[key] = None if parsed.year <= 1 else timeutil.format_ts(parsed)
    url = alert.get('generatorURL')
    if url not in (None, ''):
        if not isinstance(url, str) or len(url) > 4096:
            raise ValidationError("%s.generatorURL: expected a URL string" % field)
        entry['generatorURL'] = url
    return entry


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
            for key in ('status', 'endsAt', 'labels', 'annotations', 'generatorURL'):
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
_OPTIONAL = {'reports': list}


def validate_record(record):
    """Raise RecordError naming the first field that does not match schema version 1."""
    _expect('record', record, dict)
    missing = [key for key in _TOP if key not in record]
    if missing:
        _fail('record', 'missing field(s): %s' % ', '.join(missing))
    extra = [key for key in record if key not in _TOP and key not in _OPTIONAL and not key.startswith('x_')]
    if extra:
        _fail('record', 'unknown field(s): %s (extensions must start with x_)' % ', '.join(sorted(extra)))
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
