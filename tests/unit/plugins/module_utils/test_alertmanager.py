# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Alertmanager contract: version 4 schema, size, depth and width caps, label values kept as data, fingerprints."""

from __future__ import annotations

import json

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.alertmanager import (
    Limits, PayloadError, dedup_key, label_fingerprint, normalise_alert, normalise_alerts, one_alert_payload, parse,
    read_payload, validate_payload)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from tests.alerts import alert, payload


def check(document, limits=None):
    return read_payload(json.dumps(document).encode(), limits or Limits())


def refused(body, limits=None):
    limits = limits or Limits()
    with pytest.raises(PayloadError) as info:
        read_payload(body if isinstance(body, bytes) else json.dumps(body).encode(), limits)
    return info.value


def test_a_valid_payload_passes_and_fingerprints_are_lower_cased():
    _envelope, alerts = check(payload(alert('ABCDEF0123'), alert('00ff', status='resolved')))
    assert [item['fingerprint'] for item in alerts] == ['abcdef0123', '00ff']
    assert alerts[1]['status'] == 'resolved'
    assert set(alerts[0]) == {'status', 'labels', 'annotations', 'startsAt', 'endsAt', 'generatorURL', 'fingerprint'}


def test_payload_errors_are_validation_errors_with_a_reason_and_a_status():
    error = refused(dict(payload(), version='3'))
    assert isinstance(error, ValidationError) and (error.reason, error.status) == ('version', 422)


def test_label_values_are_kept_literally():
    hostile = {'x': "{{ lookup('pipe', 'touch /tmp/x') }}", 'y': '$(touch /tmp/y)', 'z': '../../etc/passwd', 'namespace': 'kube-system'}
    _envelope, alerts = check(payload(alert(**hostile)))
    for key, value in hostile.items():
        assert alerts[0]['labels'][key] == value


def test_optional_fields_are_defaulted_the_same_way_everywhere():
    bare = {'labels': {'alertname': 'X', 'incident_type': 'service_outage'}}
    clean = normalise_alert(bare)
    assert clean == {'status': 'firing', 'labels': bare['labels'], 'annotations': {}, 'startsAt': None, 'endsAt': None,
                     'generatorURL': None, 'fingerprint': label_fingerprint(bare['labels'])}
    envelope, alerts = check({'version': '4', 'alerts': [bare]})
    assert alerts == [clean] and envelope['receiver'] == '' and envelope['groupLabels'] == {}
    assert normalise_alert(dict(bare, fingerprint='', endsAt='', generatorURL='')) == clean


@pytest.mark.parametrize('body, status, reason', [
    (b'{"version": "4", ', 400, 'bad_json'),
    (b'\xff\xfe not utf-8', 400, 'bad_json'),
    (b'{"version": NaN}', 400, 'bad_json'),
    (b'[' * 200000 + b']' * 200000, 422, 'too_deep'),
    (b'{"a":' * 1000 + b'1' + b'}' * 1000, 422, 'too_deep'),
])
def test_bad_bodies(body, status, reason):
    error = refused(body, Limits(max_body_bytes=10 ** 7))
    assert (error.status, error.reason) == (status, reason)


def test_size_cap():
    error = refused(b' ' * 2048, Limits(max_body_bytes=1024))
    assert (error.status, error.reason) == (413, 'too_large')


def test_depth_width_and_alert_caps():
    deep = payload(alert())
    deep['commonAnnotations'] = {'a': {'b': {'c': {'d': {'e': {'f': {'g': {}}}}}}}}
    assert refused(deep).reason == 'too_deep'
    wide = payload(*[alert('%04x' % number) for number in range(20)])
    assert refused(wide, Limits(max_items=10)).reason == 'too_wide'
    assert 'more than the 5 accepted' in refused(wide, Limits(max_alerts=5)).message
    assert refused(payload(alert(big='x' * 70000))).reason == 'too_long'
    with pytest.raises(PayloadError, match='1001 alerts, more than the 1000'):
        normalise_alerts([alert('%04x' % number) for number in range(1001)])


@pytest.mark.parametrize('mutate, reason, words', [
    (lambda doc: doc.update(version='3'), 'version', 'version'),
    (lambda doc: doc.update(version=4), 'version', 'version'),
    (lambda doc: doc.pop('version'), 'version', 'version: missing'),
    (lambda doc: doc.update(receiver=5), 'schema', 'receiver'),
    (lambda doc: doc.update(status='exploded'), 'schema', 'status'),
    (lambda doc: doc.update(truncatedAlerts=-1), 'schema', 'truncatedAlerts'),
    (lambda doc: doc.update(alerts=[]), 'schema', 'alerts'),
    (lambda doc: doc.update(alerts={'a': 1}), 'schema', 'alerts'),
    (lambda doc: doc['alerts'][0].update(fingerprint='../../etc/passwd'), 'schema', 'fingerprint'),
    (lambda doc: doc['alerts'][0].update(fingerprint=5), 'schema', 'fingerprint'),
    (lambda doc: doc['alerts'][0]['labels'].update({'../x': 'y'}), 'schema', 'label name'),
    (lambda doc: doc['alerts'][0]['labels'].update(n=1), 'schema', 'expected a string'),
    (lambda doc: doc['alerts'][0].update(startsAt='yesterday'), 'schema', 'startsAt'),
    (lambda doc: doc['alerts'][0].update(endsAt=17), 'schema', 'endsAt'),
    (lambda doc: doc['alerts'][0].update(status='pending'), 'schema', 'alerts[0].status'),
    (lambda doc: doc['commonLabels'].update(a=['list']), 'schema', 'commonLabels'),
])
def test_schema_errors_name_the_field(mutate, reason, words):
    document = payload()
    mutate(document)
    error = refused(document)
    assert error.status == 422 and error.reason == reason
    assert words in error.message


def test_a_list_is_not_a_payload():
    error = refused([1, 2])
    assert error.status == 422 and 'JSON object' in error.message


def test_parse_is_the_shape_check_then_json():
    assert parse(b'{"a": 1}') == {'a': 1}
    with pytest.raises(PayloadError):
        parse(b'{"a": "' + b'x' * 20000 + b'"}')


def test_one_alert_payload_and_dedup_key():
    envelope, alerts = validate_payload(payload(alert('aa', pod='p1'), alert('bb', pod='p2')))
    single = one_alert_payload(envelope, alerts[1])
    assert single['version'] == '4' and single['alerts'] == [alerts[1]]
    assert single['commonLabels'] == alerts[1]['labels'] and single['receiver'] == 'incident-response'
    resend = dict(alerts[1])
    assert dedup_key(resend) == dedup_key(alerts[1])
    assert dedup_key(dict(resend, status='resolved')) != dedup_key(alerts[1])
    assert dedup_key(dict(resend, startsAt='2026-11-25T00:00:00Z')) != dedup_key(alerts[1])
