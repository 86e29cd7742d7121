# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fake Slack and PagerDuty refuse what the real ones refuse: a fake that accepts anything proves nothing."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.fakes.services import Services

KEY = 'R0UT1NGKEYCR1T1CAL00000000000001'


@pytest.fixture(scope='module')
def services():
    fake = Services()
    yield fake
    fake.stop()


def post(url, body, headers=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method='POST',
                                     headers=dict({'Content-Type': 'application/json'}, **(headers or {})))
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def text(kind, value):
    return {'type': kind, 'text': value}


def button(action_id='a', **extra):
    return dict({'type': 'button', 'text': text('plain_text', 'Go'), 'action_id': action_id}, **extra)


GOOD = {'text': 'fallback', 'blocks': [
    {'type': 'header', 'text': text('plain_text', 'h' * 150)},
    {'type': 'section', 'text': text('mrkdwn', 's' * 3000), 'fields': [text('mrkdwn', 'f' * 2000)] * 10},
    {'type': 'context', 'elements': [text('mrkdwn', 'c')]},
    {'type': 'divider'},
    {'type': 'actions', 'elements': [button('a', value='v' * 2000, style='primary'), button('b', url='https://example.org/' + 'u' * 2900),
                                     button('c', style='danger', confirm={'title': text('plain_text', 't'), 'text': text('plain_text', 'x'),
                                                                          'confirm': text('plain_text', 'ok'), 'deny': text('plain_text', 'no')})]},
]}


def with_block(index, block):
    payload = json.loads(json.dumps(GOOD))
    payload['blocks'][index] = block
    return payload


BAD = {
    'header of 151 characters': with_block(0, {'type': 'header', 'text': text('plain_text', 'h' * 151)}),
    'header in mrkdwn': with_block(0, {'type': 'header', 'text': text('mrkdwn', 'h')}),
    'section text of 3001': with_block(1, {'type': 'section', 'text': text('mrkdwn', 's' * 3001)}),
    'eleven fields': with_block(1, {'type': 'section', 'fields': [text('mrkdwn', 'f')] * 11}),
    'field of 2001': with_block(1, {'type': 'section', 'fields': [text('mrkdwn', 'f' * 2001)]}),
    'empty section': with_block(1, {'type': 'section'}),
    'empty text': with_block(2, {'type': 'context', 'elements': [text('mrkdwn', '')]}),
    'unknown block': with_block(3, {'type': 'banner'}),
    'button value of 2001': with_block(4, {'type': 'actions', 'elements': [button(value='v' * 2001)]}),
    'button text of 76': with_block(4, {'type': 'actions', 'elements': [dict(button(), text=text('plain_text', 'b' * 76))]}),
    'duplicate action_id': with_block(4, {'type': 'actions', 'elements': [button('x'), button('x')]}),
    'bad style': with_block(4, {'type': 'actions', 'elements': [button(style='loud')]}),
    'url of 3001': with_block(4, {'type': 'actions', 'elements': [button(url='https://e.org/' + 'u' * 2990)]}),
    'half a confirm': with_block(4, {'type': 'actions', 'elements': [button(confirm={'title': text('plain_text', 't')})]}),
    'twenty-six buttons': with_block(4, {'type': 'actions', 'elements': [button('b%d' % n) for n in range(26)]}),
    'fifty-one blocks': {'text': 'fallback', 'blocks': [{'type': 'divider'}] * 51},
    'no fallback text': {'blocks': GOOD['blocks']},
}


def test_slack_accepts_a_message_at_every_limit(services):
    assert post(services.slack_webhook_url, GOOD) == (200, 'ok')
    status, body = post(services.url + '/api/chat.postMessage', dict(GOOD, channel='#c'), {'Authorization': 'Bearer ' + services.slack_token})
    assert status == 200 and json.loads(body)['ok'] is True


@pytest.mark.parametrize('name', sorted(BAD))
def test_slack_refuses_what_breaks_block_kit(services, name):
    status, body = post(services.slack_webhook_url, BAD[name])
    assert status == 400 and body in ('invalid_blocks', 'no_text'), (name, body)
    status, body = post(services.url + '/api/chat.postMessage', dict(BAD[name], channel='#c'),
                        {'Authorization': 'Bearer ' + services.slack_token})
    answer = json.loads(body)
    assert status == 200 and answer['ok'] is False and answer['error'] in ('invalid_blocks', 'no_text'), (name, answer)
    if answer['error'] == 'invalid_blocks':
        assert all('[json-pointer:/blocks' in line for line in answer['response_metadata']['messages']), answer


def event(**extra):
    body = {'routing_key': KEY, 'event_action': 'trigger', 'dedup_key': 'INC-20260131-0007', 'client': 'c',
            'client_url': 'https://r.example.org/x',
            'payload': {'summary': 's', 'source': 'src', 'severity': 'critical', 'timestamp': '2026-01-31T10:05:00Z', 'component': 'x',
                        'custom_details': {'a': [1, {'b': 2}]}},
            'links': [{'href': 'https://r.example.org/x', 'text': 'Report'}, {'href': 'https://r.example.org/y'}]}
    for key, value in extra.items():
        if key.startswith('payload_'):
            body['payload'][key[8:]] = value
        else:
            body[key] = value
    return body


@pytest.mark.parametrize('body, error', [
    (event(links={'href': 'x'}), "'links' must be an array"),
    (event(links=[{'text': 'no href'}]), "'links[0].href' is required"),
    (event(links=[{'href': 'https://x', 'text': 3}]), "'links[0]' fields must be strings"),
    (event(images=[{'alt': 'no src'}]), "'images[0].src' is required"),
    (event(payload_custom_details='text'), "'payload.custom_details' must be an object"),
    (event(payload_timestamp='yesterday'), "'payload.timestamp' is not ISO 8601"),
    (event(payload_summary='s' * 1025), "'payload.summary' is too long"),
    (event(payload_severity='high'), "'payload.severity' is invalid"),
    (event(client_url=1), "'client_url' must be a string"),
    (event(payload_custom_details={'blob': 'x' * (600 * 1024)}), 'Event object is larger than 512 KB'),
    (event(routing_key='short'), "'routing_key' must be 32 characters"),
    (dict(event(event_action='resolve'), dedup_key=''), "'dedup_key' is required for resolve"),
])
def test_pagerduty_refuses_malformed_events(services, body, error):
    status, answer = post(services.url + '/v2/enqueue', body)
    assert status == 400 and error in json.loads(answer)['errors'], answer


def test_pagerduty_accepts_a_full_event(services):
    status, answer = post(services.url + '/v2/enqueue', event())
    assert status == 202 and json.loads(answer)['dedup_key'] == 'INC-20260131-0007'
