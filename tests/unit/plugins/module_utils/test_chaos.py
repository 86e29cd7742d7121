# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The chaos verdict: an incident that arrived in time, one that did not, and the ones that do not count."""
from __future__ import annotations

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import chaos
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

START = '2026-11-24T10:00:00Z'


def record(incident_id, created, actions=(), type_name='service_outage', drill=False):
    return {'id': incident_id, 'type': type_name, 'drill': drill, 'created_at': created,
            'actions': [{'name': name, 'result': result, 'time': time} for name, result, time in actions]}


def test_detected_and_responded_in_time():
    found = [record('INC-20261124-0002', '2026-11-24T10:01:30Z', [('restart_deployment', 'success', '2026-11-24T10:03:00Z')])]
    verdict = chaos.verdict(found, START, 'service_outage', '5m', '15m')
    assert verdict['passed'] and verdict['detected'] and verdict['responded']
    assert (verdict['detected_in_seconds'], verdict['responded_in_seconds'], verdict['incident_id']) == (90, 180, 'INC-20261124-0002')
    assert (verdict['detect_sla_seconds'], verdict['respond_sla_seconds'], verdict['reasons']) == (300, 900, [])


def test_detected_too_late():
    found = [record('INC-20261124-0002', '2026-11-24T10:05:01Z', [('restart_deployment', 'success', '2026-11-24T10:06:00Z')])]
    verdict = chaos.verdict(found, START, 'service_outage', '5m', '15m')
    assert not verdict['passed'] and not verdict['detected'] and verdict['responded']
    assert verdict['reasons'] == ['INC-20261124-0002 opened 301s after the experiment started; the target is 300s']


def test_detected_but_no_successful_action():
    found = [record('INC-20261124-0002', '2026-11-24T10:01:00Z', [('restart_deployment', 'failure', '2026-11-24T10:02:00Z')])]
    verdict = chaos.verdict(found, START, 'service_outage', '5m', '15m')
    assert verdict['detected'] and not verdict['responded'] and not verdict['passed']
    assert verdict['responded_in_seconds'] is None
    assert verdict['reasons'] == ['INC-20261124-0002 has no successful response action']


def test_response_too_late():
    found = [record('INC-20261124-0002', '2026-11-24T10:01:00Z', [('rollback', 'success', '2026-11-24T10:16:00Z')])]
    verdict = chaos.verdict(found, START, 'service_outage', '5m', '15m')
    assert verdict['detected'] and not verdict['responded'] and verdict['responded_in_seconds'] == 960


def test_what_does_not_count():
    found = [
        record('INC-20261124-0001', '2026-11-24T09:59:59Z', [('restart_deployment', 'success', '2026-11-24T10:00:30Z')]),  # before
        record('INC-20261124-0003', '2026-11-24T10:00:10Z', [('isolate_pods', 'success', '2026-11-24T10:00:20Z')], 'security_breach'),
        record('INC-20261124-0004', '2026-11-24T10:00:10Z', [('restart_deployment', 'success', '2026-11-24T10:00:20Z')], drill=True),
    ]
    verdict = chaos.verdict(found, START, 'service_outage', '5m', '15m')
    assert not verdict['passed'] and verdict['incident_id'] is None
    assert verdict['reasons'] == ['no service_outage incident was opened after the experiment started at 2026-11-24T10:00:00Z']


def test_the_first_matching_incident_is_judged():
    found = [record('INC-20261124-0005', '2026-11-24T10:04:00Z', [('a', 'success', '2026-11-24T10:04:10Z')]),
             record('INC-20261124-0004', '2026-11-24T10:00:00Z', [('a', 'success', '2026-11-24T10:00:05Z')])]
    assert chaos.verdict(found, START, 'service_outage', 60, 60)['incident_id'] == 'INC-20261124-0004'


@pytest.mark.parametrize('incidents, started, detect, message', [
    ('nope', START, '5m', 'incidents'),
    ([], 'yesterday', '5m', 'started_at'),
    ([], START, 'soon', 'detect_within'),
])
def test_bad_input(incidents, started, detect, message):
    with pytest.raises(ValidationError, match=message):
        chaos.verdict(incidents, started, 'service_outage', detect, '15m')
