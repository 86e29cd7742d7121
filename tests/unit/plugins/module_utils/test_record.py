# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import copy
import datetime

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import (
    RecordError, TransitionError, ValidationError)

NOW = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)


def fresh(type_name='service_outage'):
    return rec.new_record(load_catalog(), 'INC-20260131-0001', type_name, NOW)


def test_new_record_is_valid_and_due_times_come_from_catalog():
    record = fresh('vulnerability_exploit')
    rec.validate_record(record)
    assert record['priority'] == 'P1'
    assert record['response_due_at'] == '2026-01-31T12:30:00Z'  # type response time 30 min
    assert record['escalation_due_at'] == '2026-01-31T12:30:00Z'  # critical escalates after 30 min
    assert record['timeline'][0]['kind'] == 'opened'


@pytest.mark.parametrize('source, target, allowed', [
    ('investigating', 'identified', True), ('investigating', 'monitoring', True), ('identified', 'monitoring', True),
    ('monitoring', 'resolved', True), ('monitoring', 'investigating', True), ('identified', 'investigating', True),
    ('monitoring', 'identified', False), ('resolved', 'investigating', True), ('resolved', 'monitoring', False),
])
def test_transitions(source, target, allowed):
    record = fresh()
    record['status'] = source
    if allowed:
        assert rec.set_status(record, target, NOW, 'test') is True
        assert record['status'] == target
    else:
        with pytest.raises(TransitionError, match='cannot move from %s to %s' % (source, target)):
            rec.set_status(record, target, NOW, 'test')
        assert record['status'] == source


def test_same_status_is_a_no_op_and_timestamps_set_once():
    record = fresh()
    assert rec.set_status(record, 'investigating', NOW, 'test') is False
    rec.set_status(record, 'monitoring', NOW, 'test')
    assert record['mitigated_at'] == '2026-01-31T12:00:00Z'
    later = NOW + datetime.timedelta(hours=1)
    rec.set_status(record, 'resolved', later, 'test')
    assert record['mitigated_at'] == '2026-01-31T12:00:00Z'
    assert record['resolved_at'] == '2026-01-31T13:00:00Z'


@pytest.mark.parametrize('value', ['../../etc/passwd', 'INC-20260131-0001/../x', 'INC-2026013-0001', '', None, 'inc-20260131-0001'])
def test_ids_with_path_characters_are_refused(value):
    with pytest.raises(ValidationError, match='not an incident id'):
        rec.validate_id(value)


@pytest.mark.parametrize('value', ['../etc', 'abc/def', 'xyz', '0' * 65, ''])
def test_bad_fingerprints_are_refused(value):
    with pytest.raises(ValidationError, match='fingerprint'):
        rec.normalise_alert({'fingerprint': value, 'labels': {'alertname': 'x'}} if value else {'fingerprint': 5}, NOW)


def test_alert_labels_are_data_and_fingerprint_is_stable():
    alert = {'labels': {'alertname': 'X', 'evil': "{{ lookup('pipe', 'id') }}"}, 'annotations': {'a': '$(rm -rf /)'}}
    first = rec.normalise_alert(alert, NOW)
    second = rec.normalise_alert(copy.deepcopy(alert), NOW)
    assert first['fingerprint'] == second['fingerprint']
    assert first['labels']['evil'] == "{{ lookup('pipe', 'id') }}"
    assert first['annotations']['a'] == '$(rm -rf /)'


@pytest.mark.parametrize('alert, message', [
    ({'labels': ['x']}, 'alerts[0].labels: expected a mapping'),
    ({'labels': {'a': 5}}, 'alerts[0].labels.a: expected a string'),
    ({'labels': {'a': 'x' * 20000}}, 'longer than'),
    ({'labels': {str(n): 'v' for n in range(200)}}, 'more than the 128'),
    ({'labels': {}, 'status': 'exploded'}, 'alerts[0].status'),
    ({'labels': {}, 'startsAt': 'noon'}, 'alerts[0].startsAt'),
    ('not-an-alert', 'expected an Alertmanager alert'),
])
def test_hostile_alerts_are_refused(alert, message):
    with pytest.raises(ValidationError, match=message.replace('[', r'\[').replace(']', r'\]')):
        rec.normalise_alert(alert, NOW)


def test_merge_alert_attaches_and_updates():
    record = fresh()
    entry = rec.normalise_alert({'fingerprint': 'aa', 'labels': {'alertname': 'X'}}, NOW)
    assert rec.merge_alert(record, entry, NOW, 't') is True
    assert rec.merge_alert(record, copy.deepcopy(entry), NOW, 't') is False
    resolved = dict(entry, status='resolved', endsAt='2026-01-31T12:05:00Z')
    assert rec.merge_alert(record, resolved, NOW, 't') is True
    assert len(record['alerts']) == 1 and record['alerts'][0]['status'] == 'resolved'


@pytest.mark.parametrize('mutate, message', [
    (lambda r: r.pop('status'), 'missing field(s): status'),
    (lambda r: r.update(status='done'), 'status: expected one of'),
    (lambda r: r.update(schema_version=99), 'schema_version'),
    (lambda r: r.update(created_at='yesterday'), 'created_at: expected an RFC 3339'),
    (lambda r: r['timeline'][0].update(phase='panic'), 'timeline[0].phase'),
    (lambda r: r.update(drill='no'), 'drill: expected a boolean'),
    (lambda r: r.update(surprise=1), 'unknown field(s): surprise'),
    (lambda r: r['evidence'].append({'path': 'x', 'sha256': 'short', 'time': '2026-01-31T12:00:00Z'}), 'evidence[0].sha256'),
])
def test_validation_names_the_field(mutate, message):
    record = fresh()
    mutate(record)
    with pytest.raises(RecordError) as info:
        rec.validate_record(record)
    assert message in str(info.value)


def test_actions_are_idempotent_by_name_and_phase():
    record = fresh()
    assert rec.upsert_action(record, {'name': 'isolate', 'phase': 'containment', 'changed': True}, NOW, 't')
    assert not rec.upsert_action(record, {'name': 'isolate', 'phase': 'containment', 'changed': True}, NOW, 't')
    assert rec.upsert_action(record, {'name': 'isolate', 'phase': 'containment', 'result': 'failed'}, NOW, 't')
    assert len(record['actions']) == 1 and record['actions'][0]['result'] == 'failed'
