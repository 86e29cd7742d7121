# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The isolation NetworkPolicy against the emulated API server (real HTTP through the kubernetes client)."""

from __future__ import annotations

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import containment
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes

NS = 'slurm-exporter'
DNS = [{'ports': [{'protocol': 'UDP', 'port': 53}]}]


@pytest.fixture
def client(kube):
    api = Kubernetes({'kubeconfig': kube.kubeconfig})
    yield api
    api.close()


def policy(kube, name=containment.ISOLATION_POLICY_NAME):
    return kube.get('networking.k8s.io/v1', 'NetworkPolicy', NS, name)


def test_isolate_is_idempotent_and_converges(kube, client):
    first = containment.apply_isolation(client, NS, 'INC-20260131-0001')
    assert first['changed'] and first['operation'] == 'created'
    stored = policy(kube)
    assert stored['spec'] == {'podSelector': {'matchLabels': {'app': 'slurm-exporter'}}, 'policyTypes': ['Ingress', 'Egress'],
                              'ingress': [], 'egress': []}
    assert stored['metadata']['labels'][containment.INCIDENT_LABEL] == 'INC-20260131-0001'
    kube.clear_requests()
    again = containment.apply_isolation(client, NS, 'INC-20260131-0001')
    assert not again['changed'] and kube.writes() == []
    # A second incident adds its hold to the same policy.
    second = containment.apply_isolation(client, NS, 'INC-20260131-0002')
    assert second['operation'] == 'held' and second['holders'] == ['INC-20260131-0001', 'INC-20260131-0002']
    assert containment.holders(policy(kube)) == ['INC-20260131-0001', 'INC-20260131-0002']
    # Drifted rules are replaced, and the incident that isolated first stays on the label.
    widened = containment.apply_isolation(client, NS, 'INC-20260131-0002', allow_egress=DNS)
    assert widened['operation'] == 'replaced' and policy(kube)['spec']['egress'] == DNS
    assert policy(kube)['metadata']['labels'][containment.INCIDENT_LABEL] == 'INC-20260131-0001'


def test_lifting_removes_only_the_incidents_own_hold(kube, client):
    for number in (1, 2, 3):
        containment.apply_isolation(client, NS, 'INC-20260131-000%d' % number)
    first = containment.lift_isolation(client, NS, 'INC-20260131-0001')
    assert first['operation'] == 'released' and first['holders'] == ['INC-20260131-0002', 'INC-20260131-0003']
    assert policy(kube) is not None
    # Lifting a hold that is not there (a rerun) changes nothing.
    kube.clear_requests()
    assert containment.lift_isolation(client, NS, 'INC-20260131-0001')['operation'] == 'none' and kube.writes() == []
    # Without an incident, a held policy is refused, unless forced.
    with pytest.raises(ValidationError, match='is held by INC-20260131-0002, INC-20260131-0003'):
        containment.lift_isolation(client, NS)
    assert containment.lift_isolation(client, NS, 'INC-20260131-0003')['operation'] == 'released'
    last = containment.lift_isolation(client, NS, 'INC-20260131-0002')
    assert last['operation'] == 'deleted' and policy(kube) is None
    containment.apply_isolation(client, NS, 'INC-20260131-0004')
    assert containment.lift_isolation(client, NS, force=True)['operation'] == 'deleted' and policy(kube) is None


def test_a_hold_added_between_read_and_delete_keeps_the_policy(kube, client):
    """The DELETE carries the resourceVersion it was decided on: a 409 means re-reading, not deleting a new hold."""
    containment.apply_isolation(client, NS, 'INC-20260131-0001')
    kube.add_fault('DELETE', r'/networkpolicies/incident-isolation$', status=409, times=1)
    containment.apply_isolation(client, NS, 'INC-20260131-0001')
    assert containment.lift_isolation(client, NS, 'INC-20260131-0001')['operation'] == 'deleted'


def test_check_mode_sends_no_write(kube, client):
    kube.clear_requests()
    planned = containment.apply_isolation(client, NS, check_mode=True)
    assert planned['changed'] and planned['operation'] == 'created' and kube.writes() == [] and policy(kube) is None
    containment.apply_isolation(client, NS)
    kube.clear_requests()
    lifted = containment.lift_isolation(client, NS, check_mode=True)
    assert lifted['changed'] and kube.writes() == [] and policy(kube) is not None


def test_lift_deletes_only_our_policy(kube, client):
    assert not containment.lift_isolation(client, NS)['changed']
    containment.apply_isolation(client, NS)
    assert containment.lift_isolation(client, NS)['operation'] == 'deleted' and policy(kube) is None
    # A policy from before holds were recorded is held by the incident on its label.
    containment.apply_isolation(client, NS, 'INC-20260131-0009')
    assert containment.holders(policy(kube)) == ['INC-20260131-0009']
    # The exporter's own policy (no managed-by label) is never replaced or deleted.
    with pytest.raises(ValidationError, match='not created by this collection'):
        containment.lift_isolation(client, NS, name='slurm-exporter')
    with pytest.raises(ValidationError, match='not created by this collection'):
        containment.apply_isolation(client, NS, name='slurm-exporter')
    assert policy(kube, 'slurm-exporter')['spec']['ingress']


def test_a_concurrent_create_converges(kube, client):
    """Another responder created the policy between our GET and POST (409): the second call converges on it."""
    kube.add_fault('POST', r'/networkpolicies$', status=409, times=1)
    containment.apply_isolation(client, NS)  # the 409 is followed by a GET that still finds nothing; POST again
    assert policy(kube) is not None


@pytest.mark.parametrize('kwargs, message', [
    ({'pod_selector': {}}, 'isolate every pod'),
    ({'allow_ingress': [{'from': []}]}, 'allow everything'),
    ({'allow_egress': [{}]}, 'would allow all traffic'),
    ({'allow_egress': [{'to': [{'ipBlock': {'cidr': '10.0.0.0/8'}}], 'bogus': 1}]}, 'unknown key'),
    ({'allow_ingress': 'everything'}, 'expected a list'),
])
def test_unsafe_policies_are_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        containment.isolation_policy(NS, **kwargs)


def test_names_are_validated():
    with pytest.raises(ValidationError, match='namespace'):
        containment.isolation_policy('../kube-system')


def test_a_persistent_conflict_fails_instead_of_looping(kube, client):
    kube.add_fault('POST', r'/networkpolicies$', status=409, times=100)
    with pytest.raises(Exception, match='409'):
        containment.apply_isolation(client, NS)
