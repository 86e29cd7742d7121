# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Correlation, damping and response runs in the incident service (no Ansible, a store in a temporary directory)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import correlation, runs
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore

T0 = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)
WORKLOAD = 'slurm-exporter/slurm-exporter'
CLAIM = {'deadline': 600}


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)


def alert(fingerprint, alertname, status='firing', starts=T0, **labels):
    return {'fingerprint': fingerprint, 'status': status, 'startsAt': starts.strftime('%Y-%m-%dT%H:%M:%SZ'),
            'labels': dict({'alertname': alertname}, **labels), 'annotations': {}}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def svc(tmp_path, clock):
    return IncidentService(IncidentStore(str(tmp_path)), load_catalog(), actor='tester', clock=clock)


def open_(svc, alerts, **kwargs):
    kwargs.setdefault('workload', WORKLOAD)
    kwargs.setdefault('claim_run', CLAIM)
    return svc.open(alerts=alerts, **kwargs)


def test_per_collector_alerts_open_one_incident_and_run_the_plan_once(svc):
    """Five collectors with API errors, then a related network partition alert: one incident, one run."""
    first = open_(svc, [alert('a1', 'SlurmExporterCollectorAPIErrors', collector='jobs', incident_type='api_failure')])
    assert first.created and first.run_plan and first.run['outcome'] == 'running'
    later = [open_(svc, [alert('a%d' % n, 'SlurmExporterCollectorAPIErrors', collector='c%d' % n, incident_type='api_failure')])
             for n in range(2, 6)]
    related = open_(svc, [alert('b1', 'SlurmExporterNetworkPartition', incident_type='network_partition')])
    assert all(outcome.attached and outcome.after['id'] == first.after['id'] for outcome in later + [related])
    assert [outcome.correlated for outcome in later] == ['same_type'] * 4 and related.correlated == 'related'
    assert not any(outcome.run_plan for outcome in later + [related])
    assert 'in progress' in later[0].plan_reason
    record = related.after
    assert len(record['alerts']) == 6 and record['alerts'][-1]['related_type'] == 'network_partition'
    assert len(svc.store.list()[0]) == 1


def test_other_workloads_and_unrelated_types_are_not_correlated(svc):
    first = open_(svc, [alert('a1', 'A', incident_type='api_failure')])
    other = open_(svc, [alert('a2', 'A', incident_type='api_failure')], workload='slurm-exporter/other')
    unrelated = open_(svc, [alert('a3', 'B', incident_type='performance_degradation')])
    off = open_(svc, [alert('a4', 'A', incident_type='api_failure')], correlation={'enabled': False})
    assert len({first.after['id'], other.after['id'], unrelated.after['id'], off.after['id']}) == 4


def test_a_flapping_alert_reopens_its_incident_within_the_cooldown(svc, clock):
    ids = set()
    for cycle in range(20):
        clock.advance(1)
        starts = clock.now
        fired = open_(svc, [alert('f1', 'SlurmExporterDown', starts=starts, incident_type='service_outage')])
        ids.add(fired.after['id'])
        if fired.run_plan:
            svc.update(fired.after['id'], {'run': {'id': fired.run['id'], 'outcome': 'completed'}})
        clock.advance(1)
        resolved = open_(svc, [alert('f1', 'SlurmExporterDown', status='resolved', starts=starts, incident_type='service_outage')])
        if resolved.after['status'] != 'resolved':
            svc.resolve(resolved.after['id'], resolution='alert resolved (cycle %d)' % cycle)
    assert len(ids) == 1
    record = svc.store.read(ids.pop())
    assert sum(1 for entry in record['timeline'] if entry['message'].startswith('Status resolved -> investigating: reopened')) == 19
    # After the cool-down a new firing is a new incident.
    clock.advance(901)
    fresh = open_(svc, [alert('f1', 'SlurmExporterDown', starts=clock.now, incident_type='service_outage')])
    assert fresh.created


def test_a_failed_response_stays_open_when_its_alerts_resolve(svc):
    opened = open_(svc, [alert('c1', 'SlurmExporterDown', incident_type='service_outage')])
    svc.update(opened.after['id'], {'actions': [{'name': 'rollout_restart', 'phase': 'eradication', 'result': 'failed'}],
                                    'run': {'id': opened.run['id'], 'outcome': 'failed', 'reason': 'rollout_restart failed'}})
    record = svc.store.read(opened.after['id'])
    assert record['escalation_due_at'] == record['runs'][0]['ended_at']
    resolved = open_(svc, [alert('c1', 'SlurmExporterDown', status='resolved', incident_type='service_outage')])
    assert resolved.after['status'] == 'investigating' and not resolved.run_plan
    decision = runs.close_decision(resolved.after, True)
    assert not decision['resolve'] and 'waits for a person' in decision['reason']
    # A re-fire does not rerun the plan of a failed response either.
    again = open_(svc, [alert('c2', 'SlurmExporterDown', incident_type='service_outage')])
    assert again.after['id'] == opened.after['id'] and not again.run_plan and 'waits for a person' in again.plan_reason


def test_a_dead_run_is_lost_after_its_deadline(svc, clock):
    opened = open_(svc, [alert('d1', 'SecurityIncidentDetected', incident_type='security_breach')])
    clock.advance(601)
    lost = svc.lose_stale_runs(opened.after['id'])
    run = lost.after['runs'][0]
    assert run['outcome'] == 'lost' and lost.after['escalation_due_at'] == run['ended_at']
    assert 'Handed over to a person' in lost.after['timeline'][-1]['message']


def test_check_mode_decides_without_claiming(tmp_path, clock):
    checking = IncidentService(IncidentStore(str(tmp_path / 'store')), load_catalog(), check_mode=True, clock=clock)
    outcome = checking.open(alerts=[alert('e1', 'A', incident_type='api_failure')], workload=WORKLOAD, claim_run=CLAIM)
    assert outcome.run_plan and outcome.after['runs'][0]['outcome'] == 'running'
    assert not (tmp_path / 'store').exists()


def test_close_decisions():
    base = {'type': 'service_outage', 'status': 'investigating', 'alerts': [], 'actions': [], 'runs': []}
    assert runs.close_decision(base, True)['resolve']
    security = dict(base, type='security_breach')
    decision = runs.close_decision(security, False)
    assert decision['monitor'] and not decision['resolve'] and 'resolved by a person' in decision['reason']
    assert runs.close_decision(security, False, {'security_breach': True})['resolve']
    assert not runs.close_decision(base, True, {'service_outage': False})['resolve']
    unverified = dict(base, actions=[{'name': 'verify_health', 'result': 'skipped', 'details': {'verified': False}}])
    assert not runs.close_decision(unverified, True)['resolve']
    blocked = dict(base, actions=[{'name': 'scale_down', 'result': 'blocked', 'details': {}}])
    assert runs.close_decision(blocked, True) == {'monitor': False, 'resolve': False,
                                                  'reason': 'waits for a person: scale_down blocked'}


@pytest.mark.parametrize('value, message', [
    ({'cooldown': -1}, 'cooldown'), ({'enabled': 'yes'}, 'enabled'), ({'window': 1}, 'unknown key'),
    ({'related': {'api_failure': ['nope']}}, "unknown incident type 'nope'"), ({'related': {'api_failure': 'x'}}, 'list'),
])
def test_bad_settings_are_refused(value, message):
    with pytest.raises(ValidationError, match=message):
        correlation.settings(value, load_catalog())


def test_group_keys_follow_related_types():
    config = correlation.settings({})
    assert correlation.group_key('api_failure', WORKLOAD, config) == correlation.group_key('network_partition', WORKLOAD, config)
    assert correlation.group_key('security_breach', WORKLOAD, config) != correlation.group_key('malware_detection', WORKLOAD, config)
