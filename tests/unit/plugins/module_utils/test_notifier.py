# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import notify
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.notifier import Notifier, NotifySettings

NOW = datetime.datetime(2026, 1, 31, 10, 5, tzinfo=datetime.timezone.utc)
KEY = 'R0UT1NGKEYCR1T1CAL00000000000001'
RECORD = {'id': 'INC-20260131-0007', 'type': 'security_breach', 'category': 'security', 'severity': 'critical', 'priority': 'P1',
          'status': 'investigating', 'drill': False, 'title': 'Token used', 'created_at': '2026-01-31T10:00:00Z', 'acknowledged_at': None,
          'resolved_at': None, 'response_due_at': '2026-01-31T10:15:00Z', 'escalation_level': 0}
MESSAGES = {'text': 'P1 text\nmore', 'slack': {'text': 'fallback', 'blocks': []}, 'pagerduty': {'summary': 'P1 text'},
            'email': {'subject': 'S', 'body': 'B', 'html': '<p>B</p>'},
            'links': [{'kind': 'runbook', 'text': 'Runbook', 'url': 'https://rb.example.org/x'}]}


def params(**channels):
    return dict({'slack': None, 'pagerduty': None, 'webhook': None, 'email': None, 'outbox': None, 'links': None}, **channels)


def test_settings_are_validated_before_anything_is_sent_and_secrets_collected():
    with pytest.raises(ValidationError, match='slack: give webhook_url or token'):
        NotifySettings.from_params(params(slack={'channel': '#x'})).validate()
    with pytest.raises(ValidationError, match='pagerduty: give routing_key'):
        NotifySettings.from_params(params(slack={'token': 'xoxb-123456'}, pagerduty={'url': 'http://x'})).validate()
    with pytest.raises(ValidationError, match='links.grafana_url'):
        NotifySettings.from_params(params(links={'grafana_url': 'ftp://g'}))
    settings = NotifySettings.from_params(params(slack={'token': 'xoxb-123456', 'webhook_url': None},
                                                 pagerduty={'routing_keys': {'critical': KEY}},
                                                 webhook={'url': 'http://h/?t=hooksecret', 'headers': {'X-Token': 'hdrsecret'}},
                                                 email={'host': 'h', 'password': 'smtpsecret', 'sender': 's', 'to': ['t']}))
    assert settings.channels == ['slack', 'pagerduty', 'webhook', 'email']
    assert {'xoxb-123456', KEY, 'http://h/?t=hooksecret', 'hdrsecret', 'smtpsecret'} <= set(settings.secrets())
    assert NotifySettings.from_params(params()).channels == ['outbox']
    assert NotifySettings.from_params(params(outbox=True, webhook={'url': 'http://h'})).channels == ['webhook', 'outbox']


def test_send_over_every_channel_and_the_outbox_records_what_went_where(tmp_path):
    calls = []

    def post(url, payload, headers, timeout):
        calls.append((url, payload))
        if url.endswith('/enqueue'):
            return notify.HttpResult(202, b'{"status": "success", "dedup_key": "INC-20260131-0007"}', {})
        return notify.HttpResult(200, b'ok', {})

    settings = NotifySettings.from_params(params(slack={'webhook_url': 'http://127.0.0.1:1/services/T/B/x'},
                                                 pagerduty={'routing_key': KEY, 'url': 'http://127.0.0.1:1/v2/enqueue'},
                                                 webhook={'url': 'http://127.0.0.1:1/hook'}, outbox=True))
    notifier = Notifier(settings, notify.Sender(post=post, sleep=lambda s: None), str(tmp_path), clock=lambda: NOW)
    outcome = notifier.send(RECORD, {'channel': '#security-incidents'}, 'initial', MESSAGES)
    assert [(d.channel, d.status) for d in outcome.deliveries] == [('slack', 'sent'), ('pagerduty', 'sent'), ('webhook', 'sent'), ('outbox', 'sent')]
    assert outcome.failed == [] and outcome.extensions == {}
    assert calls[0][1] == MESSAGES['slack']
    assert calls[1][1]['links'] == [{'href': 'https://rb.example.org/x', 'text': 'Runbook'}]
    assert calls[2][1] == {'event': 'initial', 'incident': RECORD, 'text': 'P1 text\nmore', 'links': MESSAGES['links'],
                           'sent_at': '2026-01-31T10:05:00Z'}
    with open(tmp_path / 'outbox' / 'notifications.jsonl', encoding='utf-8') as handle:
        entry = json.loads(handle.readline())
    assert entry['links'] == MESSAGES['links'] and entry['email']['html'] == '<p>B</p>'
    assert [item['channel'] for item in entry['sent_to']] == ['slack', 'pagerduty', 'webhook']
    assert outcome.notifications('initial')[1] == {'channel': 'pagerduty', 'template': 'initial', 'status': 'sent', 'attempts': 1,
                                                   'details': {'http_status': 202, 'dedup_key': 'INC-20260131-0007'}}
    assert [d.as_dict()['status'] for d in notifier.planned()] == ['skipped'] * 4
