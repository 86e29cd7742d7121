# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import notify, slack


def test_builders_stay_within_the_limits_and_never_cut_an_escape_or_a_mention():
    assert slack.header('x' * 200)['text']['text'] == 'x' * 149 + '\u2026'
    assert slack.header('  two\n lines ') == {'type': 'header', 'text': {'type': 'plain_text', 'text': 'two lines', 'emoji': True}}
    assert slack.header('') is None and slack.section('\n') is None and slack.fields([]) is None and slack.context(['', None]) is None
    assert slack.truncate_mrkdwn('a' * 2990 + '&amp;bbbbbbbbbbbb', 2995) == 'a' * 2990 + '\u2026'
    assert slack.truncate_mrkdwn('a' * 2985 + ' <!channel> tail', 2995) == 'a' * 2985 + '\u2026'
    assert slack.truncate_mrkdwn('short', 10) == 'short'
    assert len(slack.section('y' * 5000)['text']['text']) == 3000
    assert slack.fields([slack.field('F%d' % n, 'v') for n in range(14)])['fields'][-1] == {'type': 'mrkdwn', 'text': '*F9*\nv'}
    assert slack.field('Empty', '') == {'type': 'mrkdwn', 'text': '*Empty*\n-'}
    button = slack.button('b' * 100, 'incident_acknowledge', value='v' * 3000, style='loud')
    assert len(button['text']['text']) == 75 and len(button['value']) == 2000 and 'style' not in button
    assert slack.button('Long link', 'incident_link_x', url='https://example.org/' + 'p' * 3000) is None
    assert slack.actions([None]) is None and len(slack.actions([slack.button('b', 'a%d' % n) for n in range(30)])['elements']) == 25


def test_fit_keeps_the_buttons_when_there_are_too_many_blocks_and_makes_action_ids_unique():
    blocks = [{'type': 'section', 'text': {'type': 'mrkdwn', 'text': str(n)}} for n in range(70)]
    blocks.append({'type': 'actions', 'elements': [slack.button('a', 'same'), slack.button('b', 'same')]})
    blocks.append({'type': 'context', 'elements': [{'type': 'mrkdwn', 'text': 'footer'}]})
    payload = slack.fit({'blocks': blocks})
    assert len(payload['blocks']) == 50 and [block['type'] for block in payload['blocks'][-2:]] == ['actions', 'context']
    assert [element['action_id'] for element in payload['blocks'][-2]['elements']] == ['same', 'same_2']
    assert payload['text'] == '0' and slack.problems(payload) == []
    assert slack.fit(payload) == payload
    assert slack.fit({'text': '', 'blocks': []})['text'] == 'Incident notification'


def test_problems_names_what_slack_refuses():
    bad = {'blocks': [{'type': 'header', 'text': {'type': 'mrkdwn', 'text': 'h'}},
                      {'type': 'section'},
                      {'type': 'actions', 'elements': [slack.button('a', 'x'), dict(slack.button('b', 'x'), style='loud')]},
                      {'type': 'banner'}]}
    assert slack.problems(bad) == [
        'text: the fallback text is missing',
        '/blocks/0/text: expected a plain_text text object',
        '/blocks/1: a section needs text or fields',
        '/blocks/2/elements/1/style: primary or danger',
        '/blocks/3: unknown block type',
        'action_id: not unique: x']


def scripted_post(answer):
    calls = []

    def post(url, payload, headers, timeout):
        calls.append((url, payload, headers))
        return answer
    return post, calls


RECORD = {'id': 'INC-20260131-0007'}
PAYLOAD = {'text': 'fallback', 'blocks': [{'type': 'actions', 'elements': [
    slack.button('Acknowledge', slack.ACKNOWLEDGE, value='INC-20260131-0007'),
    slack.button('Resolve', slack.RESOLVE, value='INC-20260131-0007'),
    slack.button('Runbook', 'incident_link_runbook', url='https://runbooks.example.org/x')]}]}


def test_first_web_api_message_starts_the_thread_and_later_ones_go_into_it():
    post, calls = scripted_post(notify.HttpResult(200, b'{"ok": true, "ts": "1700000001.000100", "channel": "C1"}', {}))
    sender = notify.Sender(post=post, sleep=lambda s: None)
    settings = slack.SlackSettings(token='xoxb-1', api_url='http://127.0.0.1:1/api')
    delivery, thread = slack.post(sender, settings, RECORD, 'initial', PAYLOAD, '#security-incidents')
    assert delivery.status == 'sent' and thread == {'channel': '#security-incidents', 'ts': '1700000001.000100'}
    assert calls[0][1] == dict(PAYLOAD, channel='#security-incidents') and calls[0][2] == {'Authorization': 'Bearer xoxb-1'}
    threaded = dict(RECORD, x_slack_thread=thread)
    delivery, again = slack.post(sender, settings, threaded, 'resolution', PAYLOAD, '#security-incidents')
    assert again is None and calls[1][1]['thread_ts'] == '1700000001.000100' and calls[1][1]['reply_broadcast'] is True
    other = slack.SlackSettings(token='xoxb-1', api_url='http://127.0.0.1:1/api', channel='#elsewhere')
    slack.post(sender, other, threaded, 'status_update', PAYLOAD, '#security-incidents')
    assert 'thread_ts' not in calls[2][1] and calls[2][1]['channel'] == '#elsewhere'


def test_buttons_off_keeps_the_links_only():
    post, calls = scripted_post(notify.HttpResult(200, b'ok', {}))
    settings = slack.SlackSettings(webhook_url='http://127.0.0.1:1/services/x', buttons=False)
    delivery, thread = slack.post(notify.Sender(post=post), settings, RECORD, 'initial', PAYLOAD, '#c')
    assert delivery.status == 'sent' and thread is None
    assert calls[0][1]['blocks'] == [{'type': 'actions', 'elements': [PAYLOAD['blocks'][0]['elements'][2]]}]
    assert 'channel' not in calls[0][1]
    assert slack.SlackSettings().problem() == 'slack: give webhook_url or token'
