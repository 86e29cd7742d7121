# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Approvals: request, decide, time out, resume; the record's approvals field validated; the wait bounded."""

from __future__ import annotations

import copy
import datetime

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import approvals, runs
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import RecordError, ValidationError

NOW = datetime.datetime(2026, 11, 24, 22, 0, tzinfo=datetime.timezone.utc)
LATER = NOW + datetime.timedelta(minutes=5)


def record():
    return rec.new_record(load_catalog(), 'INC-20261124-0001', 'security_breach', NOW, actor='launcher:incident-launcher')


def test_a_request_is_recorded_once_and_validates():
    item = record()
    entry, created = approvals.request(item, 'scale_down', 'containment', NOW, 'cli:alice', timeout=900, run='r1')
    assert created and entry['status'] == 'pending' and entry['expires_at'] == '2026-11-24T22:15:00Z'
    assert entry['requested_by'] == 'cli:alice' and entry['run'] == 'r1'
    again, created = approvals.request(item, 'scale_down', 'containment', NOW, 'cli:alice', timeout=900, run='r1')
    assert not created and again is entry and len(item['approvals']) == 1
    assert [t['message'] for t in item['timeline'] if t['kind'] == 'update'][0].startswith('Approval requested: scale_down (containment)')
    rec.validate_record(item)
    with pytest.raises(ValidationError):
        approvals.request(item, 'Scale Down', 'containment', NOW, 'x')
    with pytest.raises(ValidationError):
        approvals.request(item, 'scale_down', 'nowhere', NOW, 'x')


def test_a_waiting_run_gets_a_deadline_past_the_wait():
    item = record()
    item['runs'] = [runs.new_run(NOW, 'cli:alice', 60, 'r1')]
    approvals.request(item, 'scale_down', 'containment', NOW, 'cli:alice', timeout=900, run='r1')
    assert item['runs'][0]['deadline_at'] == '2026-11-24T22:25:00Z'   # 900 s + RUN_MARGIN
    rec.validate_record(item)


def test_decisions_are_recorded_with_the_person_and_never_flip():
    item = record()
    approvals.request(item, 'scale_down', 'containment', NOW, 'ansible', timeout=60)
    entry, changed = approvals.decide(item, 'scale_down', None, 'approved', 'slack:U1 (alice)', LATER, via='slack',
                                      event={'source': 'slack', 'id': 'e1'})
    assert changed and entry['status'] == 'approved' and entry['decided_by'] == 'slack:U1 (alice)'
    assert entry['decided_at'] == '2026-11-24T22:05:00Z' and entry['via'] == 'slack'
    assert item['timeline'][-1]['actor'] == 'slack:U1 (alice)' and item['timeline'][-1]['details']['inbound']['id'] == 'e1'
    assert approvals.decide(item, 'scale_down', 'containment', 'approved', 'slack:U2', LATER)[1] is False
    with pytest.raises(ValidationError, match='already approved by slack:U1'):
        approvals.decide(item, 'scale_down', 'containment', 'rejected', 'slack:U2', LATER)
    rec.validate_record(item)


def test_a_decision_ahead_of_the_request_is_found_by_it():
    item = record()
    entry, changed = approvals.decide(item, 'rotate_credentials', None, 'approved', 'cli:bob', NOW)
    assert changed and entry['phase'] is None and 'ahead of the request' in item['timeline'][-1]['message']
    found, created = approvals.request(item, 'rotate_credentials', 'eradication', LATER, 'ansible', timeout=60)
    assert not created and found['status'] == 'approved'


def test_a_resolved_incident_has_nothing_to_approve():
    item = record()
    item['status'] = 'resolved'
    with pytest.raises(ValidationError, match='resolved'):
        approvals.decide(item, 'scale_down', None, 'approved', 'cli:bob', NOW)


def test_a_time_out_leaves_the_request_pending_and_an_approval_resumes_the_next_run():
    item = record()
    item['runs'] = [runs.new_run(NOW, 'ansible', 3600, 'r1')]
    approvals.request(item, 'scale_down', 'containment', NOW, 'ansible', timeout=60, run='r1')
    entry, changed = approvals.time_out(item, 'scale_down', 'containment', LATER, 'ansible', 60)
    assert changed and entry['status'] == 'pending' and entry['timed_out_at'] == '2026-11-24T22:05:00Z'
    assert approvals.time_out(item, 'scale_down', 'containment', LATER, 'ansible', 60)[1] is False
    # The response stopped: the action is blocked, the run failed; nothing runs for the next payload ...
    rec.upsert_action(item, {'name': 'scale_down', 'phase': 'containment', 'result': 'blocked'}, LATER, 'ansible')
    runs.end_run(item, 'r1', 'failed', LATER, 'scale_down not approved')
    assert runs.plan_decision(item, LATER)[0] is False
    # ... until a person approves it: the next run resumes the plan at it.
    approvals.decide(item, 'scale_down', None, 'approved', 'pagerduty:P1 (Jane)', LATER)
    assert runs.plan_decision(item, LATER) == (True, 'resumed: scale_down approved by pagerduty:P1 (Jane)')
    # Once it ran, nothing is left to resume.
    rec.upsert_action(item, {'name': 'scale_down', 'phase': 'containment', 'result': 'success'}, LATER, 'ansible')
    assert approvals.awaiting_run(item) == []
    rec.validate_record(item)


def test_a_rejection_keeps_the_incident_with_a_person():
    item = record()
    approvals.request(item, 'scale_down', 'containment', NOW, 'ansible', timeout=60)
    approvals.decide(item, 'scale_down', 'containment', 'rejected', 'slack:U1', LATER, reason='pods are needed for the audit')
    rec.upsert_action(item, {'name': 'scale_down', 'phase': 'containment', 'result': 'blocked'}, LATER, 'ansible')
    assert approvals.awaiting_run(item) == []
    assert runs.plan_decision(item, LATER)[0] is False
    assert 'pods are needed for the audit' in approvals.summary(item['approvals'][0])


def test_button_values_and_settings():
    value = approvals.button_value('INC-20261124-0001', 'containment', 'scale_down')
    assert approvals.parse_button_value(value) == ('INC-20261124-0001', 'containment', 'scale_down')
    for bad in ('INC-20261124-0001', 'INC-1:containment:scale_down', 'INC-20261124-0001:nowhere:scale_down',
                'INC-20261124-0001:containment:scale_down;rm', None, 7):
        with pytest.raises(ValidationError):
            approvals.parse_button_value(bad)
    settings = {'security_breach': ['scale_down'], 'all': ['restore_namespace']}
    assert approvals.required(settings, 'security_breach', 'scale_down')
    assert approvals.required(settings, 'data_loss', 'restore_namespace')
    assert not approvals.required(settings, 'data_loss', 'scale_down')
    with pytest.raises(ValidationError, match='unknown incident type'):
        approvals.validate_settings({'security_beach': ['scale_down']}, set(load_catalog().types))
    with pytest.raises(ValidationError, match='expected a list'):
        approvals.validate_settings({'security_breach': 'scale_down'})


@pytest.mark.parametrize('field, value, words', [
    ('status', 'maybe', 'approvals[0].status'),
    ('decided_at', 'yesterday', 'approvals[0].decided_at'),
    ('phase', 'nowhere', 'approvals[0].phase'),
    ('requested_by', 5, 'approvals[0].requested_by'),
])
def test_the_record_schema_checks_approvals(field, value, words):
    item = record()
    approvals.request(item, 'scale_down', 'containment', NOW, 'ansible', timeout=60)
    rec.validate_record(copy.deepcopy(item))
    item['approvals'][0][field] = value
    with pytest.raises(RecordError, match=words.replace('[', r'\[').replace(']', r'\]')):
        rec.validate_record(item)


def test_a_decided_approval_names_who_decided():
    item = record()
    approvals.request(item, 'scale_down', 'containment', NOW, 'ansible', timeout=60)
    item['approvals'][0]['status'] = 'approved'
    with pytest.raises(RecordError, match='names who decided'):
        rec.validate_record(item)


def test_the_wait_is_bounded_and_ends_at_the_decision():
    item = record()
    approvals.request(item, 'scale_down', 'containment', NOW, 'ansible', timeout=60)
    clock = {'t': 0.0}
    reads = []

    def read():
        reads.append(clock['t'])
        if clock['t'] >= 6:
            decided = copy.deepcopy(item)
            approvals.decide(decided, 'scale_down', 'containment', 'approved', 'cli:bob', LATER)
            return decided
        return item

    def sleep(seconds):
        clock['t'] += seconds

    entry, waited = approvals.await_decision(read, 'scale_down', 'containment', 60, 2, sleep=sleep, monotonic=lambda: clock['t'])
    assert entry['status'] == 'approved' and waited == 6 and reads == [0, 2, 4, 6]
    clock['t'] = 0.0
    entry, waited = approvals.await_decision(lambda: item, 'scale_down', 'containment', 5, 2, sleep=sleep, monotonic=lambda: clock['t'])
    assert entry['status'] == 'pending' and waited == 5
    assert approvals.seconds_left(item['approvals'][0], 900, now=NOW + datetime.timedelta(seconds=50)) == 10
