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

TOKEN = 'unit-token-91d3'


def alert(status='firing', fingerprint='0a1b2c3d4e5f6789', **labels):
    return {'status': status, 'fingerprint': fingerprint,
            'labels': dict({'alertname': 'SlurmExporterDown', 'incident_type': 'service_outage', 'component': 'incident-response'}, **labels),
            'annotations': {'summary': 'down'}, 'startsAt': '2026-11-24T10:00:00Z', 'endsAt': '0001-01-01T00:00:00Z'}


def payload(*alerts):
    return {'version': '4', 'status': 'firing', 'receiver': 'incident-response', 'externalURL': 'http://am:9093',
            'groupKey': '{}:{alertname="SlurmExporterDown"}', 'alerts': list(alerts)}


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize('args, message', [
    ({'token': TOKEN}, 'port is required'),
    ({'port': 8080}, 'token is required'),
    ({'port': 8080, 'token': '  '}, 'token must not be empty'),
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
    assert config == {'host': '127.0.0.1', 'port': 10341, 'path': '/webhook', 'token': TOKEN, 'max_body_bytes': 1048576}


def test_one_event_per_alert_with_meta_and_a_base64_payload():
    hostile = "{{ lookup('pipe', 'id') }}"
    body = payload(alert(), alert('resolved', 'ffff000011112222', collector=hostile))
    events = alertmanager.split_payload(body, '/webhook')
    assert [e['alert'] for e in events] == body['alerts']
    assert events[0]['meta'] == {'endpoint': '/webhook', 'receiver': 'incident-response', 'externalURL': 'http://am:9093',
                                 'groupKey': '{}:{alertname="SlurmExporterDown"}'}
    second = events[1]['response']
    assert {k: second[k] for k in ('fingerprint', 'status', 'incident_type')} == {
        'fingerprint': 'ffff000011112222', 'status': 'resolved', 'incident_type': 'service_outage'}
    decoded = json.loads(base64.b64decode(second['alert_payload_b64']))
    assert decoded == {'version': '4', 'status': 'resolved', 'alerts': [body['alerts'][1]], 'receiver': 'incident-response',
                       'externalURL': 'http://am:9093', 'groupKey': body['groupKey']}
    assert decoded['alerts'][0]['labels']['collector'] == hostile
    # nothing the playbook gets through var_root carries template markers
    assert not [value for value in events[1]['response'].values() if '{' in value or '}' in value]


def test_a_template_in_incident_type_is_not_passed_on():
    events = alertmanager.split_payload(payload(alert(incident_type='{{ 7 * 7 }}')))
    assert events[0]['response']['incident_type'] == ''


@pytest.mark.parametrize('body, reason', [
    ([], 'not a JSON object'),
    ({'version': '3', 'alerts': []}, 'unsupported payload version'),
    ({'version': '4'}, 'alerts: expected a list'),
    (payload('x'), r'alerts\[0\]: expected an object'),
    (payload(alert(), alert(status='pending')), r'alerts\[1\].status'),
    (payload(alert(fingerprint='../../etc')), r'alerts\[0\].fingerprint'),
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
        ('POST', '/webhook', auth, b'{"version": "4", "alerts": [{"status": "firing"}]}'),
        ('POST', '/webhook', auth, b'\xff\xfe not json'),
        ('POST', '/webhook', auth, b'{"alerts": [' + b' ' * 5000 + b']}'),
        ('POST', '/other', auth, good),
        ('POST', '/webhook', auth, good),
    ])
    statuses = [status for status, _text, _headers in responses]
    assert statuses == [200, 401, 401, 401, 401, 401, 400, 400, 413, 404, 202]
    assert responses[1][2]['WWW-Authenticate'] == 'Bearer'
    assert json.loads(responses[6][1]) == {'error': 'alerts[0].fingerprint: expected a hexadecimal fingerprint'}
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
