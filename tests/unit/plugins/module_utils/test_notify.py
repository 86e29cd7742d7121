# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import notify


def scripted(*answers):
    calls = []
    answers = list(answers)

    def post(url, payload, headers, timeout):
        calls.append((url, payload, headers, timeout))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    return post, calls


def test_retry_after_is_honoured_and_capped():
    sleeps = []
    post, calls = scripted(notify.HttpResult(429, b'', {'Retry-After': '7'}), notify.HttpResult(200, b'ok', {}))
    sender = notify.Sender(retries=3, backoff=1, max_backoff=30, sleep=sleeps.append, post=post)
    delivery = notify.slack_webhook(sender, 'http://127.0.0.1:1/x', {'text': 'hi'})
    assert (delivery.status, delivery.attempts, sleeps) == ('sent', 2, [7.0])
    assert notify.retry_after({'retry-after': '500'}, 1, 30) == 30
    assert notify.retry_after({}, 4, 30) == 4
    assert notify.retry_after({'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT'}, 4, 30) == 0


def test_exponential_backoff_then_failure_is_recorded_not_raised():
    sleeps = []
    post, calls = scripted(*[notify.HttpResult(503, b'down', {})] * 3, OSError('connection refused'))
    sender = notify.Sender(retries=3, backoff=0.5, max_backoff=1.5, sleep=sleeps.append, post=post)
    delivery = notify.webhook(sender, 'http://127.0.0.1:1/hook', {})
    assert (delivery.status, delivery.attempts) == ('failed', 4)
    assert sleeps == [0.5, 1.0, 1.5]
    assert 'connection refused' in delivery.detail['error']


def test_client_errors_are_not_retried():
    post, calls = scripted(notify.HttpResult(400, b'invalid_payload', {}))
    delivery = notify.slack_webhook(notify.Sender(sleep=lambda s: None, post=post), 'http://x', {'text': 't'})
    assert (delivery.status, delivery.attempts, len(calls)) == ('failed', 1, 1)


def test_slack_api_errors_in_200_answers():
    post, _calls = scripted(notify.HttpResult(200, b'{"ok": false, "error": "invalid_auth"}', {}))
    delivery = notify.slack_api(notify.Sender(sleep=lambda s: None, post=post), 'http://x/api', 'xoxb-1', {'channel': '#c', 'text': 't'})
    assert delivery.status == 'failed' and delivery.detail['error'] == 'Slack API error: invalid_auth'
    post, calls = scripted(notify.HttpResult(200, b'{"ok": true, "ts": "1.2"}', {}))
    delivery = notify.slack_api(notify.Sender(post=post), 'http://x/api/', 'xoxb-1', {'channel': '#c', 'text': 't'})
    assert delivery.detail['ts'] == '1.2' and calls[0][0] == 'http://x/api/chat.postMessage'
    assert calls[0][2] == {'Authorization': 'Bearer xoxb-1'}


def test_secrets_are_redacted_from_errors():
    secret = 'https://hooks.slack.test/services/T1/B1/abcdefSECRET'
    redact = notify.Redactor([secret, 'tok-123456', None, 'ab'])
    post, _calls = scripted(notify.HttpResult(500, ('boom at %s with tok-123456' % secret).encode(), {}))
    delivery = notify.webhook(notify.Sender(retries=0, redactor=redact, post=post), secret, {})
    assert secret not in delivery.detail['error'] and 'tok-123456' not in delivery.detail['error']
    assert notify.REDACTED in delivery.detail['error']
    assert redact('x%3Ay') == 'x%3Ay'
