# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Guarded workload changes against the emulated API server: holds, guards, retries, check mode, compensation."""

from __future__ import annotations

import json

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import containment, workload
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes

NS = 'slurm-exporter'
FAST = {'total': 3, 'backoff_factor': 0.01}


def incident(number, category='security', actions=None):
    return {'id': 'INC-20260131-%04d' % number, 'category': category, 'actions': list(actions or [])}


CAPTURED = [{'name': 'capture_evidence', 'result': 'success', 'details': {'gaps': {'logs': []}}}]


@pytest.fixture
def clients(kube):
    made = []

    def make():
        api = Kubernetes({'kubeconfig': kube.kubeconfig}, retry=FAST)
        made.append(api)
        return api
    yield make
    for api in made:
        api.close()


def act(clients, record, action, params=None, check_mode=False, secret_data=None, **settings):
    settings.setdefault('wait_timeout', 30)
    target = workload.Workload(clients(), NS, 'slurm-exporter', record, {'app': 'slurm-exporter'}, 'slurm-exporter',
                               workload.Settings(**settings), check_mode=check_mode)
    return target.perform(action, params, secret_data)


def deployment(kube):
    return kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')


def test_overlapping_scale_downs_restore_the_count_from_before_the_first(kube, clients):
    first, second = incident(1, actions=CAPTURED), incident(2, actions=CAPTURED)
    down = act(clients, first, 'scale_down')
    assert down['result'] == 'success' and down['details']['previous_replicas'] == 3 and deployment(kube)['spec']['replicas'] == 0
    again = act(clients, second, 'scale_down')
    assert again['details']['replicas_before_first_hold'] == 3 and again['details']['held_with'] == [first['id']]
    # The first incident recovers while the second still contains: the workload stays at 0.
    restored = act(clients, first, 'scale_restore')
    assert restored['details']['held_by'] == [second['id']] and deployment(kube)['spec']['replicas'] == 0
    # A rerun of the first incident's restore changes nothing.
    assert not act(clients, first, 'scale_restore')['changed']
    last = act(clients, second, 'scale_restore')
    assert last['details']['replicas'] == 3 and deployment(kube)['spec']['replicas'] == 3
    assert workload.HOLDS_ANNOTATION not in (deployment(kube)['metadata'].get('annotations') or {})
    assert deployment(kube)['status']['availableReplicas'] == 3


def test_restore_never_falls_back_to_a_default(kube, clients):
    record = incident(1, actions=CAPTURED)
    act(clients, record, 'scale_down')
    document = deployment(kube)
    document['metadata']['annotations'][workload.HOLDS_ANNOTATION] = json.dumps({'scale': {'holders': [record['id']]}})
    kube.replace(document)
    outcome = act(clients, record, 'scale_restore')
    assert outcome['result'] == 'needs_person' and 'scale it by hand' in outcome['summary']
    assert deployment(kube)['spec']['replicas'] == 0


def test_operational_incidents_never_scale_to_zero(kube, clients):
    outcome = act(clients, incident(1, 'operational'), 'scale_down')
    assert outcome['result'] == 'blocked' and deployment(kube)['spec']['replicas'] == 3


def test_the_evidence_gate(kube, clients):
    pods = [pod['metadata']['name'] for pod in kube.list('v1', 'Pod', NS)]
    # A security incident without a successful capture: nothing destroys the pods' logs.
    blocked = act(clients, incident(1), 'scale_down')
    assert blocked['result'] == 'blocked' and blocked['details']['guard'] == 'evidence'
    # A capture that could not read some logs: blocked, naming them.
    gaps = [{'name': 'capture_evidence', 'result': 'success', 'details': {'gaps': {'logs': pods[:1]}}}]
    blocked = act(clients, incident(2, actions=gaps), 'scale_down')
    assert blocked['result'] == 'blocked' and blocked['details']['missing_logs'] == pods[:1]
    assert deployment(kube)['spec']['replicas'] == 3
    # The same for an operational restart that would replace those pods.
    blocked = act(clients, incident(3, 'operational', gaps), 'rollout_restart')
    assert blocked['result'] == 'blocked'
    # Unless the inventory accepts the loss.
    assert act(clients, incident(2, actions=gaps), 'scale_down', allow_evidence_loss=True)['result'] == 'success'


def test_the_flapping_guard_is_per_workload_and_kind(kube, clients):
    first = act(clients, incident(1, 'operational'), 'rollout_restart')
    assert first['result'] == 'success' and first['changed']
    # Another incident (another fingerprint, another type) restarting within the interval is suppressed...
    second = act(clients, incident(2, 'operational'), 'restart_deployment')
    assert second['result'] == 'suppressed' and second['details']['last_change']['incident'] == 'INC-20260131-0001'
    generation = deployment(kube)['metadata']['generation']
    # ... a change of another kind is not ...
    assert act(clients, incident(2, 'operational'), 'increase_logging')['result'] == 'success'
    assert deployment(kube)['metadata']['generation'] == generation + 1
    # ... and with the interval at 0 the guard is off.
    assert act(clients, incident(3, 'operational'), 'rollout_restart', min_interval={'restart': 0})['result'] == 'success'


def test_restarts_keep_the_minimum_available(kube, clients):
    blocked = act(clients, incident(1, 'operational'), 'raise_limits', {'factor': 1.5, 'ceilings': {'cpu': '2', 'memory': '2Gi'}},
                  min_available=3)
    assert blocked['result'] == 'blocked' and blocked['details']['guard'] == 'min_available'
    document = deployment(kube)
    document['spec']['strategy'] = {'type': 'Recreate'}
    kube.replace(document)
    blocked = act(clients, incident(2, 'operational'), 'increase_logging')
    assert blocked['result'] == 'blocked' and 'below the minimum' in blocked['summary']


def test_raised_limits_have_a_cumulative_bound(kube, clients):
    before = deployment(kube)['spec']['template']['spec']['containers'][0]['resources']['limits']
    ceilings = {'cpu': '8', 'memory': '16Gi'}
    results = []
    for number in range(1, 5):
        outcome = act(clients, incident(number, 'operational'), 'raise_limits', {'factor': 1.5, 'ceilings': ceilings},
                      min_interval={'limits': 0})
        results.append(outcome['result'])
    limits = deployment(kube)['spec']['template']['spec']['containers'][0]['resources']['limits']
    assert results[:2] == ['success', 'success'] and results[-1] == 'blocked'
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.response import parse_quantity
    assert parse_quantity(limits['cpu']) <= 2.0 * parse_quantity(before['cpu']) + 0.001


def test_debug_logging_is_held_and_reverted_by_the_last_holder(kube, clients):
    args = deployment(kube)['spec']['template']['spec']['containers'][0].get('args') or []
    act(clients, incident(1, 'operational'), 'increase_logging', min_interval={'logging': 0})
    act(clients, incident(2, 'operational'), 'increase_logging', min_interval={'logging': 0})
    kept = act(clients, incident(1, 'operational'), 'revert_logging', min_interval={'logging': 0})
    assert kept['details']['held_by'] == ['INC-20260131-0002'] and '--log-level=debug' in (
        deployment(kube)['spec']['template']['spec']['containers'][0]['args'])
    reverted = act(clients, incident(2, 'operational'), 'revert_logging')
    assert reverted['changed'] and deployment(kube)['spec']['template']['spec']['containers'][0].get('args', []) == args


def test_a_transient_500_on_each_write_is_retried_and_recorded(kube, clients):
    kube.add_fault('PUT', r'/deployments/slurm-exporter$', status=500, times=1)
    kube.add_fault('PUT', r'/leases/', status=503, times=1)
    outcome = act(clients, incident(1, actions=CAPTURED), 'scale_down')
    assert outcome['result'] == 'success' and deployment(kube)['spec']['replicas'] == 0
    errors = sorted(error for item in outcome['details']['retries'] for error in item['errors'])
    assert errors == ['500', '503']


def test_a_permanent_500_fails_with_what_was_tried(kube, clients):
    record = incident(1, actions=CAPTURED)
    act(clients, record, 'scale_down')
    kube.add_fault('PUT', r'/deployments/slurm-exporter$', status=500, times=None)
    with pytest.raises(IncidentResponseError) as failure:
        act(clients, record, 'scale_restore')
    retries = failure.value.details['details']['retries']
    assert retries and retries[-1]['attempts'] == FAST['total'] + 1 and retries[-1]['outcome'] == '500'
    # The Lease was given back: the next responder does not wait for a dead step.
    lease = kube.get('coordination.k8s.io/v1', 'Lease', NS, 'incident-response-slurm-exporter')
    assert lease['spec']['holderIdentity'] == ''


def test_check_mode_sends_no_write_of_any_kind(kube, clients):
    record = incident(1, actions=CAPTURED)
    kube.clear_requests()
    for action, params in (('isolate_pods', {}), ('scale_down', {}), ('rollout_restart', {}), ('increase_logging', {}),
                           ('rotate_tls', {'name': 'slurm-exporter-tls'})):
        secret = {'tls.crt': 'eA==', 'tls.key': 'eA=='} if action == 'rotate_tls' else None
        act(clients, dict(record, category='security'), action, params, check_mode=True, secret_data=secret)
    assert [entry for entry in kube.requests if entry['method'] != 'GET'] == []


def test_compensation_keeps_isolated_workloads_down_and_restores_the_others(kube, clients):
    record = incident(1, actions=CAPTURED)
    act(clients, record, 'isolate_pods')
    act(clients, record, 'scale_down')
    done = [{'name': 'isolate_pods', 'result': 'success'}, {'name': 'scale_down', 'result': 'success',
                                                            'details': {'previous_replicas': 3}}]
    kept = act(clients, dict(record, actions=CAPTURED + done), 'compensate')
    assert deployment(kube)['spec']['replicas'] == 0 and 'left at 0 replicas' in kept['summary']
    assert [step['compensation'] for step in kept['details']['compensation']][0].startswith('none')
    # Without isolation the scale-down is undone.
    containment.lift_isolation(clients(), NS, force=True)
    undone = act(clients, dict(record, actions=CAPTURED + done), 'compensate')
    assert deployment(kube)['spec']['replicas'] == 3 and undone['details']['compensation'][0]['compensation'] == 'scale_restore'
