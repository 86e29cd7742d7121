# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The alertmanager event source: argument validation, payload splitting, and its HTTP contract on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import json
import socket

import pytest

aiohttp = pytest.importorskip('aiohttp', reason='aiohttp comes with ansible-rulebook (requirements-test.txt)')

from ansible_collections.slurm_exporter.incident_response.extensions.eda.plugins.event_source import alertmanager  # noqa: E402  pylint: disable=wrong-import-position
from tests.alerts import alert as build_alert, payload  # noqa: E402  pylint: disable=wrong-import-position

TOKEN = 'unit-token-91d3'


def alert(status='firing', fingerprint='0a1b2c3d4e5f6789', **labels):
    return build_alert(fingerprint, status, starts='2026-11-24T10:00:00Z', **dict({'component': 'incident-response'}, **labels))


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize('args, message', [
    ({'token': TOKEN}, 'port is required'),
    ({'port': 8080}, 'token is required'),
    ({'port': 8080, 'token': '  '}, 'token must not be empty'),
    ({'port': 8080, 'token': ' padded '}, 'token must not start or end with whitespace'),
    ({'port': 8080, 'token': TOKEN, 'max_alerts': 0}, 'max_alerts must be between 1 and 1000'),
    ({'port': 0, 'token': TOKEN}, 'between 1 and 65535'),
    ({'port': 'http', 'token': TOKEN}, 'port must be a int'),
    ({'port': True, 'token': TOKEN}, 'port must be a int'),
    ({'port': 8080, 'token': TOKEN, 'path': 'webhook'}, 'path must start with /'),
    ({'port': 8080, 'token': TOKEN, 'path': '/healthz'}, 'not be /healthz'),
    ({'port': 8080, 'token': TOKEN, 'max_body_bytes': 10}, 'at least 1024'),
    ({'port': 8080, 'token': TOKEN, 'hots': 'x'}, 'unknown argument(s) hots'),
])
def test_bad_arguments_are_refused_before_binding(args, message):
    with pytest.raises(ValueError, match='^alertmanager: .*' + message.replace('(', r'\(').replace(')', r'\)')):
        alertmanager.validate_args(args)


def test_defaults_are_loopback_and_webhook_path():
    config = alertmanager.validate_args({'port': '10341', 'token': TOKEN})
    assert config == {'host': '127.0.0.1', 'port': 10341, 'path': '/webhook', 'token': TOKEN, 'max_body_bytes': 1048576, 'max_alerts': 1000}


def test_one_event_per_alert_with_meta_and_a_base64_payload():
    hostile = "{{ lookup('pipe', 'id') }}"
    body = payload(alert(), alert('resolved', 'ffff000011112222', collector=hostile))
    events = alertmanager.split_payload(body, '/webhook')
    assert [e['alert'] for e in events] == body['alerts']
    assert events[0]['meta'] == {'endpoint': '/webhook', 'receiver': 'incident-response', 'externalURL': 'http://alertmanager:9093',
                                 'groupKey': '{}:{alertname="SlurmExporterDown"}'}
    second = events[1]['response']
    assert {k: second[k] for k in ('fingerprint', 'status', 'incident_type')} == {
        'fingerprint': 'ffff000011112222', 'status': 'resolved', 'incident_type': 'service_outage'}
    decoded = json.loads(base64.b64decode(second['alert_payload_b64']))
    # the same one-alert payload the launcher writes for the playbook (the Alertmanager contract's one_alert_payload)
    assert decoded == {'version': '4', 'status': 'resolved', 'alerts': [body['alerts'][1]], 'receiver': 'incident-response',
                       'externalURL': 'http://alertmanager:9093', 'groupKey': body['groupKey'], 'truncatedAlerts': 0, 'groupLabels': {},
                       'commonLabels': body['alerts'][1]['labels'], 'commonAnnotations': body['alerts'][1]['annotations']}
    assert decoded['alerts'][0]['labels']['collector'] == hostile
    # nothing the playbook gets through var_root carries template markers
    assert not [value for value in events[1]['response'].values() if '{' in value or '}' in value]


def test_a_template_in_incident_type_is_not_passed_on():
    events = alertmanager.split_payload(payload(alert(incident_type='{{ 7 * 7 }}')))
    assert events[0]['response']['incident_type'] == ''


@pytest.mark.parametrize('body, reason', [
    ([], r'payload \(a JSON object\)'),
    ({'version': '3', 'alerts': []}, 'version: expected "4"'),
    ({'version': '4'}, 'alerts: expected a non-empty list'),
    (payload('x'), r'alerts\[0\]: expected an Alertmanager alert'),
    (payload(alert(), alert(status='pending')), r'alerts\[1\].status'),
    (payload(alert(fingerprint='../../etc')), r'alerts\[0\].fingerprint'),
    (payload(dict(alert(), startsAt='yesterday')), r'alerts\[0\].startsAt'),
    (payload(*[alert(fingerprint='%04x' % number) for number in range(1001)]), 'has 1001 entries; the limit is 1000'),
    (payload(dict(alert(), labels={'a': 1})), r'alerts\[0\].labels'),
    (payload(dict(alert(), annotations=['x'])), r'alerts\[0\].annotations'),
    (dict(payload(alert()), receiver=5), 'receiver: expected a string'),
])
def test_malformed_payloads_are_rejected_whole(body, reason):
    with pytest.raises(alertmanager.PayloadError, match=reason):
        alertmanager.split_payload(body)


async def _exchange(requests, config=None):
    """Run the source in process on a free port, send ``requests``, return (responses, queued events)."""
    queue = asyncio.Queue()
    args = dict({'port': free_port(), 'token': TOKEN, 'max_body_bytes': 4096}, **(config or {}))
    task = asyncio.create_task(alertmanager.main(queue, args))
    base = 'http://127.0.0.1:%d' % args['port']
    responses = []
    async with aiohttp.ClientSession() as session:
        for _attempt in range(100):
            try:
                async with session.get(base + '/healthz') as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        for method, path, headers, data in requests:
            async with session.request(method, base + path, headers=headers, data=data) as response:
                responses.append((response.status, await response.text(), dict(response.headers)))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    events = []
    while not queue.empty():
        events.append(queue.get_nowait())
    return responses, events


def exchange(requests, config=None):
    return asyncio.run(_exchange(requests, config))


def test_http_contract():
    good = json.dumps(payload(alert(), alert('resolved', 'abcdef0123456789'))).encode()
    auth = {'Authorization': 'Bearer ' + TOKEN}
    responses, events = exchange([
        ('GET', '/healthz', {}, None),
        ('POST', '/webhook', {}, good),
        ('POST', '/webhook', {'Authorization': 'Bearer wrong'}, good),
        ('POST', '/webhook', {'Authorization': 'Basic ' + base64.b64encode(b'a:' + TOKEN.encode()).decode()}, good),
        ('POST', '/webhook', {'Authorization': 'Bearer'}, good),
        ('GET', '/webhook', {}, None),
        ('POST', '/webhook', auth, b'{"version": "4", "alerts": [{"status": "pending"}]}'),
        ('POST', '/webhook', auth, b'\xff\xfe not json'),
        ('POST', '/webhook', auth, b'{"alerts": [' + b' ' * 5000 + b']}'),
        ('POST', '/other', auth, good),
        ('POST', '/webhook', auth, good),
    ])
    statuses = [status for status, _text, _headers in responses]
    assert statuses == [200, 401, 401, 401, 401, 401, 400, 400, 413, 404, 202]
    assert responses[1][2]['WWW-Authenticate'] == 'Bearer'
    assert json.loads(responses[6][1])['error'] == 'alerts[0].status: expected firing or resolved, got \'pending\''
    assert json.loads(responses[10][1]) == {'accepted': 2}
    # only the last request queued anything, one event per alert, in order
    assert [(e['response']['fingerprint'], e['response']['status']) for e in events] == [
        ('0a1b2c3d4e5f6789', 'firing'), ('abcdef0123456789', 'resolved')]


def test_custom_path():
    body = json.dumps(payload(alert())).encode()
    responses, events = exchange([('POST', '/webhook', {'Authorization': 'Bearer ' + TOKEN}, body),
                                  ('POST', '/alerts', {'Authorization': 'Bearer ' + TOKEN}, body)], {'path': '/alerts'})
    assert [r[0] for r in responses] == [404, 202]
    assert len(events) == 1 and events[0]['meta']['endpoint'] == '/alerts'


def test_parity_with_the_launcher_on_what_used_to_slip_through():
    """A bad startsAt used to be queued (the run failed later and the alert was lost), ~1000-deep JSON was a 500
    (RecursionError), and 2,000 alerts became 2,000 events: each is refused whole with 400 now."""
    auth = {'Authorization': 'Bearer ' + TOKEN}
    bad_start = json.dumps(payload(dict(alert(), startsAt='last tuesday'))).encode()
    deep = b'{"version": "4", "alerts": [' + b'[' * 1000 + b']' * 1000 + b']}'
    many = json.dumps(payload(*[alert(fingerprint='%04x' % number) for number in range(2000)])).encode()
    responses, events = exchange([('POST', '/webhook', auth, bad_start), ('POST', '/webhook', auth, deep),
                                  ('POST', '/webhook', auth, many), ('HEAD', '/healthz', {}, None)],
                                 {'max_body_bytes': 1048576})
    assert [status for status, _text, _headers in responses] == [400, 400, 400, 200]
    assert [json.loads(text)['reason'] for _status, text, _headers in responses[:3]] == ['schema', 'too_deep', 'too_wide']
    assert 'startsAt' in json.loads(responses[0][1])['error'] and '2000 entries' in json.loads(responses[2][1])['error']
    # a lower cap of this source's own
    responses, events = exchange([('POST', '/webhook', auth, json.dumps(payload(*[alert(fingerprint='%04x' % number)
                                                                                  for number in range(3)])).encode())],
                                 {'max_alerts': 2})
    assert responses[0][0] == 400 and 'more than the 2 accepted' in json.loads(responses[0][1])['error'] and events == []
    assert events == []
