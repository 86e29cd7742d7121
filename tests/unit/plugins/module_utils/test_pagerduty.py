# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import notify, pagerduty

NOW = datetime.datetime(2026, 1, 31, 10, 5, tzinfo=datetime.timezone.utc)
RECORD = {'id': 'INC-20260131-0007', 'severity': 'critical', 'title': 'Token used'}
KEY = 'R0UT1NGKEYCR1T1CAL00000000000001'
LINKS = [{'kind': 'report', 'text': 'Report', 'url': 'https://r.example.org/INC-20260131-0007/report.html'},
         {'kind': 'runbook', 'text': 'Runbook', 'url': 'https://rb.example.org/x'}]


def test_trigger_event_with_custom_details_links_and_client_url():
    settings = pagerduty.PagerDutySettings(routing_keys={'critical': KEY},
                                           links=[{'href': 'https://rb.example.org/x', 'text': 'dup'}, {'href': 'https://wiki.example.org/ir'}])
    event = pagerduty.event(RECORD, 'initial', {'summary': 's' * 2000, 'custom_details': {'a': 1}, 'component': 'slurm-exporter'}, settings,
                            LINKS, NOW)
    assert event == {
        'routing_key': KEY, 'event_action': 'trigger', 'dedup_key': 'INC-20260131-0007', 'client': 'slurm_exporter.incident_response',
        'payload': {'summary': 's' * 1024, 'custom_details': {'a': 1}, 'component': 'slurm-exporter', 'source': 'slurm-exporter-incident-response',
                    'severity': 'critical', 'timestamp': '2026-01-31T10:05:00Z'},
        'client_url': 'https://r.example.org/INC-20260131-0007/report.html',
        'links': [{'href': 'https://r.example.org/INC-20260131-0007/report.html', 'text': 'Report'},
                  {'href': 'https://rb.example.org/x', 'text': 'Runbook'},
                  {'href': 'https://wiki.example.org/ir', 'text': 'https://wiki.example.org/ir'}]}


def test_acknowledge_and_resolve_carry_only_what_pagerduty_reads():
    settings = pagerduty.PagerDutySettings(routing_key=KEY)
    for template, action in (('acknowledged', 'acknowledge'), ('resolution', 'resolve')):
        assert pagerduty.event(RECORD, template, {'summary': 'x'}, settings, LINKS, NOW) == {
            'routing_key': KEY, 'event_action': action, 'dedup_key': 'INC-20260131-0007', 'client': 'slurm_exporter.incident_response'}
    forced = pagerduty.PagerDutySettings(routing_key=KEY, event_action='resolve')
    assert pagerduty.event(RECORD, 'initial', {}, forced)['event_action'] == 'resolve'
    assert pagerduty.event(dict(RECORD, severity='low'), 'initial', {'custom_details': 'text'}, settings, (), NOW)['payload'] == {
        'custom_details': {'details': 'text'}, 'summary': 'Token used', 'source': 'slurm-exporter-incident-response', 'severity': 'info',
        'timestamp': '2026-01-31T10:05:00Z'}


def test_a_severity_without_routing_key_is_skipped_not_failed():
    calls = []
    sender = notify.Sender(post=lambda *args: calls.append(args))
    delivery = pagerduty.send(sender, pagerduty.PagerDutySettings(routing_keys={'critical': KEY}), dict(RECORD, severity='high'),
                              'initial', {}, (), NOW)
    assert delivery.as_dict() == {'channel': 'pagerduty', 'status': 'skipped', 'attempts': 0,
                                  'detail': {'reason': 'no routing key for severity high'}}
    assert calls == []
    assert pagerduty.PagerDutySettings().problem() == 'pagerduty: give routing_key, or routing_keys per severity'
    assert pagerduty.PagerDutySettings(routing_key=KEY, links=[{'text': 'no href'}]).problem() == (
        'pagerduty.links[0]: each link needs href (and optional text)')
