# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Webhook payload validation: version 4 schema, size, depth and width caps, label values kept as data."""

from __future__ import annotations

import json

import pytest

from incident_launcher.payload import Limits, PayloadError, dedup_key, one_alert_payload, parse, validate


def check(document, limits=None):
    limits = limits or Limits()
    return validate(parse(json.dumps(document).encode(), limits), limits)


def refused(body, limits=None):
    limits = limits or Limits()
    with pytest.raises(PayloadError) as info:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        validate(parse(body, limits), limits)
    return info.value


def test_a_valid_payload_passes_and_fingerprints_are_lower_cased(make_payload, make_alert):
    _payload, alerts = check(make_payload(make_alert('ABCDEF0123'), make_alert('00ff', status='resolved')))
    assert [item['fingerprint'] for item in alerts] == ['abcdef0123', '00ff']
    assert alerts[1]['status'] == 'resolved'


def test_label_values_are_kept_literally(make_payload, make_alert):
    hostile = {'x': "{{ lookup('pipe', 'touch /tmp/x') }}", 'y': '$(touch /tmp/y)', 'z': '../../etc/passwd', 'namespace': 'kube-system'}
    _payload, alerts = check(make_payload(make_alert(**hostile)))
    for key, value in hostile.items():
        assert alerts[0]['labels'][key] == value


@pytest.mark.parametrize('body, status, reason', [
    (b'{"version": "4", ', 400, 'bad_json'),
    (b'\xff\xfe not utf-8', 400, 'bad_json'),
    (b'{"version": NaN}', 400, 'bad_json'),
    (b'[' * 200000 + b']' * 200000, 422, 'too_deep'),
])
def test_bad_bodies(body, status, reason):
    error = refused(body, Limits(max_body_bytes=10 ** 7))
    assert (error.status, error.reason) == (status, reason)


def test_size_cap():
    error = refused(b' ' * 2048, Limits(max_body_bytes=1024))
    assert (error.status, error.reason) == (413, 'too_large')


def test_depth_and_width_caps(make_payload, make_alert):
    deep = make_payload(make_alert())
    deep['commonAnnotations'] = {'a': {'b': {'c': {'d': {'e': {'f': {'g': {}}}}}}}}
    assert refused(deep).reason == 'too_deep'
    wide = make_payload(*[make_alert('%04x' % number) for number in range(20)])
    assert refused(wide, Limits(max_items=10)).reason == 'too_wide'
    long_value = make_payload(make_alert(big='x' * 70000))
    assert refused(long_value).reason == 'too_long'


@pytest.mark.parametrize('mutate, reason, words', [
    (lambda doc: doc.update(version='3'), 'version', 'version'),
    (lambda doc: doc.update(version=4), 'version', 'version'),
    (lambda doc: doc.pop('receiver'), 'schema', 'receiver'),
    (lambda doc: doc.update(status='exploded'), 'schema', 'status'),
    (lambda doc: doc.update(alerts=[]), 'schema', 'alerts'),
    (lambda doc: doc.update(alerts={'a': 1}), 'schema', 'alerts'),
    (lambda doc: doc['alerts'][0].update(fingerprint='../../etc/passwd'), 'schema', 'fingerprint'),
    (lambda doc: doc['alerts'][0].update(fingerprint=''), 'schema', 'fingerprint'),
    (lambda doc: doc['alerts'][0]['labels'].update({'../x': 'y'}), 'schema', 'label name'),
    (lambda doc: doc['alerts'][0]['labels'].update(n=1), 'schema', 'expected a string'),
    (lambda doc: doc['alerts'][0].update(startsAt='yesterday'), 'schema', 'startsAt'),
    (lambda doc: doc['alerts'][0].pop('endsAt'), 'schema', 'endsAt'),
    (lambda doc: doc['commonLabels'].update(a=['list']), 'schema', 'commonLabels'),
])
def test_schema_errors_name_the_field(make_payload, mutate, reason, words):
    document = make_payload()
    mutate(document)
    error = refused(document)
    assert error.status == 422 and error.reason == reason
    assert words in error.message


def test_a_list_is_not_a_payload():
    error = refused([1, 2])
    assert error.status == 422 and 'JSON object' in error.message


def test_one_alert_payload_and_dedup_key(make_payload, make_alert):
    payload, alerts = check(make_payload(make_alert('aa', pod='p1'), make_alert('bb', pod='p2')))
    single = one_alert_payload(payload, alerts[1])
    assert single['version'] == '4' and single['alerts'] == [alerts[1]]
    assert single['commonLabels'] == alerts[1]['labels'] and single['receiver'] == 'incident-response'
    resend = dict(alerts[1])
    assert dedup_key(resend) == dedup_key(alerts[1])
    assert dedup_key(dict(resend, status='resolved')) != dedup_key(alerts[1])
    assert dedup_key(dict(resend, startsAt='2026-11-25T00:00:00Z')) != dedup_key(alerts[1])
