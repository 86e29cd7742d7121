# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation of Alertmanager webhook payloads (version "4"), with size, depth and width caps.

Label and annotation values are data: they are checked for type and length, kept as they
are, and never used as a template, a shell word or a file name. Only the fingerprint (hex,
checked) ever reaches a file name.
"""

from __future__ import annotations

import json
import re

from incident_launcher.collection import module_utils

TOP_REQUIRED = ('version', 'status', 'receiver', 'groupLabels', 'commonLabels', 'commonAnnotations', 'externalURL', 'alerts')
TOP_OPTIONAL = ('groupKey', 'truncatedAlerts')
ALERT_REQUIRED = ('status', 'labels', 'annotations', 'startsAt', 'endsAt', 'generatorURL', 'fingerprint')
STATUSES = ('firing', 'resolved')
FINGERPRINT_RE = re.compile(r'^[0-9a-fA-F]{1,64}$')
LABEL_NAME_RE = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')
MAX_URL = 4096


class PayloadError(Exception):
    """A refused payload: HTTP status, a short machine reason (metrics, rejection log) and a message."""

    def __init__(self, status, reason, message):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class Limits:
    """Caps applied before and after parsing."""

    def __init__(self, max_body_bytes=1048576, max_depth=8, max_items=1000, max_alerts=1000, max_labels=128,
                 max_string=16384):
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_alerts = max_alerts
        self.max_labels = max_labels
        self.max_string = max_string


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def _reject_constant(name):
    raise ValueError('%s is not valid JSON' % name)


def parse(body, limits):
    """Bytes -> JSON document; PayloadError 400 for bad JSON, 422 for nesting or width beyond the caps."""
    if len(body) > limits.max_body_bytes:
        raise PayloadError(413, 'too_large', 'the body is %d bytes; the limit is %d' % (len(body), limits.max_body_bytes))
    try:
        text = body.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise PayloadError(400, 'bad_json', 'the body is not UTF-8 (%s)' % exc.reason) from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise PayloadError(422, 'too_deep', 'the JSON nests deeper than %d levels' % limits.max_depth) from None
    except ValueError as exc:
        raise PayloadError(400, 'bad_json', 'the body is not valid JSON: %s' % str(exc)[:200]) from None
    check_shape(document, limits)
    return document


def check_shape(document, limits):
    """Depth, width and string length caps, walked iteratively (no recursion on attacker data)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limits.max_depth:
                raise PayloadError(422, 'too_deep', 'the JSON nests deeper than %d levels' % limits.max_depth)
            if len(value) > limits.max_items:
                raise PayloadError(422, 'too_wide', 'an object or list has %d entries; the limit is %d' % (len(value), limits.max_items))
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
            if isinstance(value, dict):
                for key in value:
                    if len(key) > limits.max_string:
                        raise PayloadError(422, 'too_long', 'a key is longer than %d characters' % limits.max_string)
        elif isinstance(value, str) and len(value) > limits.max_string:
            raise PayloadError(422, 'too_long', 'a string is longer than %d characters' % limits.max_string)


def _schema(message):
    return PayloadError(422, 'schema', message)


def _string_map(value, field, limits, label_names=False):
    if not isinstance(value, dict):
        raise _schema('%s: expected a mapping of strings, got %s' % (field, type(value).__name__))
    if len(value) > limits.max_labels:
        raise _schema('%s: %d entries; the limit is %d' % (field, len(value), limits.max_labels))
    for key, item in value.items():
        if label_names and not LABEL_NAME_RE.match(key):
            raise _schema('%s: %s is not a Prometheus label name' % (field, _short(key)))
        if not isinstance(item, str):
            raise _schema('%s.%s: expected a string, got %s' % (field, key, type(item).__name__))
    return value


def _string(value, field, limit=None):
    if not isinstance(value, str):
        raise _schema('%s: expected a string, got %s' % (field, type(value).__name__))
    if limit is not None and len(value) > limit:
        raise _schema('%s: longer than %d characters' % (field, limit))
    return value


def _timestamp(value, field):
    _string(value, field, 64)
    try:
        module_utils('timeutil').parse_ts(value, field)
    except module_utils('errors').ValidationError as exc:
        raise _schema(exc.message) from None
    return value


def validate(document, limits):
    """A parsed body -> ``(payload, alerts)``; PayloadError 422 naming the first field at fault."""
    if not isinstance(document, dict):
        raise _schema('expected an Alertmanager webhook payload (a JSON object), got %s' % type(document).__name__)
    missing = [key for key in TOP_REQUIRED if key not in document]
    if missing:
        raise _schema('missing field(s): %s' % ', '.join(missing))
    if document['version'] != '4':
        raise PayloadError(422, 'version', 'version: expected "4" (Alertmanager webhook payload), got %s' % _short(document['version']))
    if document['status'] not in STATUSES:
        raise _schema('status: expected firing or resolved, got %s' % _short(document['status']))
    _string(document['receiver'], 'receiver', 1024)
    _string(document['externalURL'], 'externalURL', MAX_URL)
    if 'groupKey' in document:
        _string(document['groupKey'], 'groupKey')
    if 'truncatedAlerts' in document and (not isinstance(document['truncatedAlerts'], int) or isinstance(document['truncatedAlerts'], bool)):
        raise _schema('truncatedAlerts: expected an integer')
    for key in ('groupLabels', 'commonLabels'):
        _string_map(document[key], key, limits, label_names=True)
    _string_map(document['commonAnnotations'], 'commonAnnotations', limits)
    alerts = document['alerts']
    if not isinstance(alerts, list) or not alerts:
        raise _schema('alerts: expected a non-empty list of alerts')
    if len(alerts) > limits.max_alerts:
        raise _schema('alerts: %d alerts; the limit is %d' % (len(alerts), limits.max_alerts))
    checked = []
    record = module_utils('record')
    errors = module_utils('errors')
    for index, alert in enumerate(alerts):
        field = 'alerts[%d]' % index
        if not isinstance(alert, dict):
            raise _schema('%s: expected an alert (an object), got %s' % (field, type(alert).__name__))
        missing = [key for key in ALERT_REQUIRED if key not in alert]
        if missing:
            raise _schema('%s: missing field(s): %s' % (field, ', '.join(missing)))
        if alert['status'] not in STATUSES:
            raise _schema('%s.status: expected firing or resolved, got %s' % (field, _short(alert['status'])))
        _string_map(alert['labels'], field + '.labels', limits, label_names=True)
        _string_map(alert['annotations'], field + '.annotations', limits)
        _timestamp(alert['startsAt'], field + '.startsAt')
        _timestamp(alert['endsAt'], field + '.endsAt')
        _string(alert['generatorURL'], field + '.generatorURL', MAX_URL)
        fingerprint = alert['fingerprint']
        if not isinstance(fingerprint, str) or not FINGERPRINT_RE.match(fingerprint):
            raise _schema('%s.fingerprint: %s is not an alert fingerprint (1-64 hexadecimal characters)' % (field, _short(fingerprint)))
        clean = {key: alert[key] for key in ALERT_REQUIRED}
        clean['fingerprint'] = fingerprint.lower()
        try:
            # The incident record's own rules (label counts and lengths): what it would refuse later is refused now.
            record.normalise_alert(clean, module_utils('timeutil').utcnow(), field)
        except errors.ValidationError as exc:
            raise _schema(exc.message) from None
        checked.append(clean)
    return document, checked


def one_alert_payload(payload, alert):
    """The webhook payload Alertmanager would send for this alert alone (version 4)."""
    return {
        'version': '4',
        'groupKey': payload.get('groupKey', ''),
        'truncatedAlerts': 0,
        'status': alert['status'],
        'receiver': payload['receiver'],
        'groupLabels': dict(payload['groupLabels']),
        'commonLabels': dict(alert['labels']),
        'commonAnnotations': dict(alert['annotations']),
        'externalURL': payload['externalURL'],
        'alerts': [alert],
    }


def dedup_key(alert):
    """Alertmanager resends the same firing (or resolution) with the same fingerprint, status and startsAt."""
    return '%s|%s|%s' % (alert['fingerprint'], alert['status'], alert['startsAt'])
