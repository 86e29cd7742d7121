# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Alertmanager contract: webhook payloads (version 4) and their alerts, one set of rules for every entry point.

The webhook launcher (extensions/launcher), the Event-Driven Ansible source (extensions/eda) and the
incident record (record.normalise_alert, hence the ``incident`` module and the response playbooks) all
validate and normalise with this module, so an alert one of them accepts the others accept too.

A payload (what Alertmanager POSTs to a webhook receiver):

- a JSON object whose ``version`` is ``"4"`` and whose ``alerts`` is a list of 1 to ``max_alerts`` alerts;
- ``status`` (``firing`` or ``resolved``), ``receiver``, ``externalURL``, ``groupKey`` (strings),
  ``groupLabels``, ``commonLabels`` (label maps), ``commonAnnotations`` (a string map) and
  ``truncatedAlerts`` (an integer >= 0) are optional: checked when present, defaulted when not.
  Alertmanager always sends them; hand-written payloads (drills, tests) may not.

An alert:

- ``labels``: a map of Prometheus label names (``[a-zA-Z_][a-zA-Z0-9_]*``) to strings; ``annotations``: a map
  of non-empty names to strings; at most ``max_labels`` entries each, values at most ``max_string`` characters;
- ``status``: ``firing`` (the default) or ``resolved``;
- ``fingerprint``: 1-64 hexadecimal characters (lower-cased), or derived from the labels when absent;
- ``startsAt``, ``endsAt``: RFC 3339 timestamps when present (Alertmanager's zero time included);
- ``generatorURL``: a string of at most 4096 characters when present.

Label and annotation values are data: their type and length are checked, and they are kept as they are,
never used as a template, a shell word or a file name. Only the fingerprint, checked to be hexadecimal,
ever reaches a file name.

Nothing here parses JSON recursively in Python: the depth, width and string caps are checked by walking
the document with an explicit stack, and a body nested too deeply for the JSON decoder is refused as
``too_deep``.
"""

from __future__ import annotations

import hashlib
import json
import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.timeutil import parse_ts

VERSION = '4'
STATUSES = ('firing', 'resolved')
ALERT_FIELDS = ('status', 'labels', 'annotations', 'startsAt', 'endsAt', 'generatorURL', 'fingerprint')
FINGERPRINT_RE = re.compile(r'^[0-9a-fA-F]{1,64}$')
LABEL_NAME_RE = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')
MAX_URL = 4096
MAX_TIMESTAMP = 64
MAX_RECEIVER = 1024


class Limits:
    """Caps on a payload: body size (bytes), JSON depth and width, alerts per payload, labels per alert, string length.

    The defaults are what the incident record accepts; an entry point may lower them, never raise
    ``max_labels`` or ``max_string`` above them (the record would refuse what the entry point accepted).
    """

    def __init__(self, max_body_bytes=1048576, max_depth=8, max_items=1000, max_alerts=1000, max_labels=128, max_string=16384):
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_alerts = max_alerts
        self.max_labels = max_labels
        self.max_string = max_string


DEFAULT_LIMITS = Limits()


class PayloadError(ValidationError):
    """A refused payload or alert: a short machine ``reason`` (metrics, logs) and the HTTP status an intake answers.

    Reasons: ``too_large`` (413), ``bad_json`` (400), ``too_deep``, ``too_wide``, ``too_long``, ``version``,
    ``schema`` (422).
    """

    def __init__(self, message, reason='schema', status=422):
        super().__init__(message, reason=reason, status=status)
        self.reason = reason
        self.status = status


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def _reject_constant(name):
    raise ValueError('%s is not valid JSON' % name)


def parse(body, limits=DEFAULT_LIMITS):
    """Bytes -> JSON document within the caps; PayloadError otherwise (never RecursionError)."""
    if len(body) > limits.max_body_bytes:
        raise PayloadError('the body is %d bytes; the limit is %d' % (len(body), limits.max_body_bytes), 'too_large', 413)
    try:
        text = body.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise PayloadError('the body is not UTF-8 (%s)' % exc.reason, 'bad_json', 400) from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise PayloadError('the JSON nests deeper than %d levels' % limits.max_depth, 'too_deep') from None
    except ValueError as exc:
        raise PayloadError('the body is not valid JSON: %s' % str(exc)[:200], 'bad_json', 400) from None
    check_shape(document, limits)
    return document


def check_shape(document, limits=DEFAULT_LIMITS):
    """Depth, width and string length caps, walked iteratively (no recursion on attacker data)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limits.max_depth:
                raise PayloadError('the JSON nests deeper than %d levels' % limits.max_depth, 'too_deep')
            if len(value) > limits.max_items:
                raise PayloadError('an object or list has %d entries; the limit is %d' % (len(value), limits.max_items), 'too_wide')
            if isinstance(value, dict):
                for key in value:
                    if isinstance(key, str) and len(key) > limits.max_string:
                        raise PayloadError('a key is longer than %d characters' % limits.max_string, 'too_long')
                stack.extend((child, depth + 1) for child in value.values())
            else:
                stack.extend((child, depth + 1) for child in value)
        elif isinstance(value, str) and len(value) > limits.max_string:
            raise PayloadError('a string is longer than %d characters' % limits.max_string, 'too_long')


def _string(value, field, limit):
    if not isinstance(value, str):
        raise PayloadError('%s: expected a string, got %s' % (field, type(value).__name__))
    if len(value) > limit:
        raise PayloadError('%s: longer than %d characters' % (field, limit))
    return value


def _optional_string(value, field, limit):
    return None if value is None or value == '' else _string(value, field, limit)


def string_map(value, field, limits=DEFAULT_LIMITS, label_names=False):
    """A copy of a map of strings (labels when ``label_names``); None is an empty map."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError('%s: expected a mapping of strings, got %s' % (field, type(value).__name__))
    if len(value) > limits.max_labels:
        raise PayloadError('%s: %d entries, more than the %d accepted' % (field, len(value), limits.max_labels))
    result = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise PayloadError('%s: names must be non-empty strings, got %s' % (field, _short(key)))
        if label_names and not LABEL_NAME_RE.match(key):
            raise PayloadError('%s: %s is not a Prometheus label name' % (field, _short(key)))
        if len(key) > limits.max_string:
            raise PayloadError('%s: a name is longer than %d characters' % (field, limits.max_string))
        if not isinstance(item, str):
            raise PayloadError('%s.%s: expected a string, got %s' % (field, key, type(item).__name__))
        if len(item) > limits.max_string:
            raise PayloadError('%s.%s: a value of %d characters is longer than %d' % (field, key, len(item), limits.max_string))
        result[key] = item
    return result


def validate_fingerprint(value, field='fingerprint'):
    """A fingerprint, lower-cased; PayloadError unless it is 1-64 hexadecimal characters."""
    if not isinstance(value, str) or not FINGERPRINT_RE.match(value):
        raise PayloadError('%s: %s is not an alert fingerprint; expected 1-64 hexadecimal characters' % (field, _short(value)))
    return value.lower()


def label_fingerprint(labels):
    """A stable fingerprint for an alert that arrives without one: SHA-256 of its sorted labels, 16 hex chars."""
    canonical = json.dumps(labels, sort_keys=True, separators=(',', ':'), ensure_ascii=True)
    return hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:16]


def _timestamp(value, field):
    value = _optional_string(value, field, MAX_TIMESTAMP)
    if value is not None:
        try:
            parse_ts(value, field)
        except ValidationError as exc:
            raise PayloadError(exc.message) from None
    return value


def normalise_alert(alert, limits=DEFAULT_LIMITS, field='alerts[0]'):
    """One alert -> ``{status, labels, annotations, startsAt, endsAt, generatorURL, fingerprint}``; PayloadError naming the field.

    Absent optional fields become None (status ``firing``; the fingerprint derived from the labels);
    fields other than these seven are dropped.
    """
    if not isinstance(alert, dict):
        raise PayloadError('%s: expected an Alertmanager alert (a mapping), got %s' % (field, type(alert).__name__))
    status = alert.get('status', 'firing')
    if status not in STATUSES:
        raise PayloadError('%s.status: expected firing or resolved, got %s' % (field, _short(status)))
    labels = string_map(alert.get('labels'), field + '.labels', limits, label_names=True)
    annotations = string_map(alert.get('annotations'), field + '.annotations', limits)
    fingerprint = alert.get('fingerprint')
    if fingerprint is None or fingerprint == '':
        fingerprint = label_fingerprint(labels)
    return {
        'status': status,
        'labels': labels,
        'annotations': annotations,
        'startsAt': _timestamp(alert.get('startsAt'), field + '.startsAt'),
        'endsAt': _timestamp(alert.get('endsAt'), field + '.endsAt'),
        'generatorURL': _optional_string(alert.get('generatorURL'), field + '.generatorURL', MAX_URL),
        'fingerprint': validate_fingerprint(fingerprint, field + '.fingerprint'),
    }


def normalise_alerts(alerts, limits=DEFAULT_LIMITS, field='alerts'):
    """A list of alerts (at most ``max_alerts``), each normalised."""
    if not isinstance(alerts, list):
        raise PayloadError('%s: expected a list of Alertmanager alerts, got %s' % (field, type(alerts).__name__))
    if len(alerts) > limits.max_alerts:
        raise PayloadError('%s: %d alerts, more than the %d accepted in one payload' % (field, len(alerts), limits.max_alerts))
    return [normalise_alert(alert, limits, '%s[%d]' % (field, index)) for index, alert in enumerate(alerts)]


def validate_payload(document, limits=DEFAULT_LIMITS):
    """A parsed webhook body -> ``(envelope, alerts)``, both normalised; PayloadError naming the first field at fault.

    ``envelope`` holds every top-level field but the alerts, with defaults for the optional ones.
    """
    if not isinstance(document, dict):
        raise PayloadError('expected an Alertmanager webhook payload (a JSON object), got %s' % type(document).__name__)
    if 'version' not in document:
        raise PayloadError('version: missing; expected "4" (Alertmanager webhook payload)', 'version')
    if document['version'] != VERSION:
        raise PayloadError('version: expected "4" (Alertmanager webhook payload), got %s' % _short(document['version']), 'version')
    alerts = document.get('alerts')
    if not isinstance(alerts, list) or not alerts:
        raise PayloadError('alerts: expected a non-empty list of alerts')
    status = document.get('status', 'firing')
    if status not in STATUSES:
        raise PayloadError('status: expected firing or resolved, got %s' % _short(status))
    truncated = document.get('truncatedAlerts', 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError('truncatedAlerts: expected an integer >= 0, got %s' % _short(truncated))
    envelope = {
        'version': VERSION,
        'status': status,
        'receiver': _optional_string(document.get('receiver'), 'receiver', MAX_RECEIVER) or '',
        'externalURL': _optional_string(document.get('externalURL'), 'externalURL', MAX_URL) or '',
        'groupKey': _optional_string(document.get('groupKey'), 'groupKey', limits.max_string) or '',
        'truncatedAlerts': truncated,
        'groupLabels': string_map(document.get('groupLabels'), 'groupLabels', limits, label_names=True),
        'commonLabels': string_map(document.get('commonLabels'), 'commonLabels', limits, label_names=True),
        'commonAnnotations': string_map(document.get('commonAnnotations'), 'commonAnnotations', limits),
    }
    return envelope, normalise_alerts(alerts, limits)


def read_payload(body, limits=DEFAULT_LIMITS):
    """Bytes of a webhook request -> ``(envelope, alerts)``: :func:`parse` then :func:`validate_payload`."""
    return validate_payload(parse(body, limits), limits)


def one_alert_payload(envelope, alert):
    """The webhook payload Alertmanager would send for this alert alone (version 4)."""
    return {
        'version': VERSION,
        'groupKey': envelope.get('groupKey', ''),
        'truncatedAlerts': 0,
        'status': alert['status'],
        'receiver': envelope.get('receiver', ''),
        'groupLabels': dict(envelope.get('groupLabels') or {}),
        'commonLabels': dict(alert['labels']),
        'commonAnnotations': dict(alert['annotations']),
        'externalURL': envelope.get('externalURL', ''),
        'alerts': [alert],
    }


def dedup_key(alert):
    """Alertmanager resends the same firing (or resolution) with the same fingerprint, status and startsAt."""
    return '%s|%s|%s' % (alert['fingerprint'], alert['status'], alert['startsAt'])
