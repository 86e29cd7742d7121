# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Disaster recovery decisions (module_utils/restore.py, used through the restore_plan and apply_outcome filters)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import restore
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

SERVED = {
    'v1': {kind: {'namespaced': kind not in ('Namespace', 'Node')}
           for kind in ('Namespace', 'Node', 'ConfigMap', 'Secret', 'ServiceAccount', 'Service', 'ResourceQuota')},
    'apps/v1': {'Deployment': {'namespaced': True}},
    'autoscaling/v2': {'HorizontalPodAutoscaler': {'namespaced': True}},
    'autoscaling.k8s.io/v1': {'VerticalPodAutoscaler': {'namespaced': True}},
    'rbac.authorization.k8s.io/v1': {kind: {'namespaced': kind.startswith('Role')}
                                     for kind in ('Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding')},
    'scheduling.k8s.io/v1': {'PriorityLevel': {'namespaced': False}},
}


def obj(api_version, kind, name, namespace=None, **extra):
    metadata = {'name': name}
    if namespace:
        metadata['namespace'] = namespace
    return dict({'apiVersion': api_version, 'kind': kind, 'metadata': metadata}, **extra)


def test_plan_orders_the_objects_and_forces_the_namespace():
    backup = [obj('apps/v1', 'Deployment', 'exporter', 'ns', status={'x': 1}), obj('autoscaling/v2', 'HorizontalPodAutoscaler', 'exporter'),
              obj('v1', 'Service', 'exporter'), None, obj('v1', 'Secret', 'creds', data={'k': 'dmFsdWU='}),
              {'apiVersion': 'v1', 'kind': 'List', 'items': [obj('v1', 'ConfigMap', 'config'), obj('v1', 'ServiceAccount', 'exporter')]}]
    plan = restore.restore_plan(backup, 'ns', SERVED, ['Role', 'RoleBinding'])
    labels = {key: [restore.label(d) for d in plan[key]] for key in ('first', 'secrets', 'rest')}
    assert labels == {'first': ['ConfigMap/config', 'ServiceAccount/exporter'], 'secrets': ['Secret/creds'],
                      'rest': ['Service/exporter', 'Deployment/exporter', 'HorizontalPodAutoscaler/exporter']}
    assert all(d['metadata']['namespace'] == 'ns' and 'status' not in d for key in ('first', 'secrets', 'rest') for d in plan[key])
    assert plan['skipped_cluster_scoped'] == [] and plan['skipped_unserved'] == []


def test_plan_skips_what_the_server_does_not_serve_and_names_where_the_kind_is_served():
    backup = [obj('autoscaling/v2', 'VerticalPodAutoscaler', 'exporter', 'ns'), obj('example.com/v1', 'Widget', 'w'),
              obj('v1', 'ConfigMap', 'config')]
    plan = restore.restore_plan(backup, 'ns', SERVED)
    assert [restore.label(d) for d in plan['first']] == ['ConfigMap/config']
    vpa, widget = plan['skipped_unserved']
    assert vpa['object'] == 'VerticalPodAutoscaler/exporter' and vpa['apiVersion'] == 'autoscaling/v2'
    assert vpa['served_as'] == ['autoscaling.k8s.io/v1'] and 'autoscaling.k8s.io/v1' in vpa['reason'] and 'not converted' in vpa['reason']
    assert widget == {'object': 'Widget/w', 'apiVersion': 'example.com/v1', 'served_as': [],
                      'reason': 'the API server serves no Widget in example.com/v1'}


def test_plan_leaves_cluster_scoped_and_rbac_objects_to_an_administrator():
    backup = [obj('v1', 'Namespace', 'ns'), obj('rbac.authorization.k8s.io/v1', 'ClusterRole', 'r'),
              obj('rbac.authorization.k8s.io/v1', 'Role', 'r'), obj('scheduling.k8s.io/v1', 'PriorityLevel', 'p'),
              obj('v1', 'ConfigMap', 'config')]
    plan = restore.restore_plan(backup, 'ns', SERVED, ['Role', 'RoleBinding'])
    # PriorityLevel is not in any list: discovery says it is cluster-scoped.
    assert plan['skipped_cluster_scoped'] == ['Namespace/ns', 'ClusterRole/r', 'Role/r', 'PriorityLevel/p']
    assert [restore.label(d) for d in plan['first']] == ['ConfigMap/config']


def test_plan_refuses_another_namespace_and_what_is_not_an_object():
    with pytest.raises(ValidationError, match='ConfigMap/takeover .* namespace kube-system is outside the configured namespace ns'):
        restore.restore_plan([obj('v1', 'ConfigMap', 'a'), obj('v1', 'ConfigMap', 'takeover', 'kube-system')], 'ns', SERVED)
    # also when the server would not serve it: a backup reaching outside the namespace is refused as a whole
    with pytest.raises(ValidationError, match='outside the configured namespace'):
        restore.restore_plan([obj('example.com/v1', 'Widget', 'w', 'kube-system')], 'ns', SERVED)
    with pytest.raises(ValidationError, match='document 1 of the backup is not a Kubernetes object'):
        restore.restore_plan([obj('v1', 'ConfigMap', 'a'), 'text'], 'ns', SERVED)
    with pytest.raises(ValidationError, match='discovery'):
        restore.restore_plan([obj('v1', 'ConfigMap', 'a')], 'ns', {})
    with pytest.raises(ValidationError, match='namespace'):
        restore.restore_plan([obj('v1', 'ConfigMap', 'a')], '', SERVED)


def k8s_failure(code, reason, message, http_reason='Unprocessable Entity'):
    """A failed item as kubernetes.core.k8s registers it: the Status body as the repr of bytes."""
    body = json.dumps({'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure', 'message': message,
                       'reason': reason, 'code': code}).encode()
    return {'failed': True, 'changed': False, 'reason': http_reason, 'msg': 'Failed to apply object: %r' % body}


def test_outcome_names_each_failure_with_the_api_servers_answer():
    message = 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": it\'s not a name'
    results = [
        dict(k8s_failure(422, 'Invalid', message), item=obj('v1', 'ConfigMap', 'Bad_Name')),
        {'changed': True, 'item': obj('apps/v1', 'Deployment', 'exporter')},
        {'changed': False, 'item': obj('v1', 'Service', 'exporter')},
        {'skipped': True, 'item': obj('v1', 'Service', 'other')},
        {'failed': True, 'msg': 'Failed to apply object: HTTPConnectionPool: connection refused', 'item': obj('v1', 'ConfigMap', 'c')},
    ]
    outcome = restore.apply_outcome(results)
    assert outcome['changed'] == ['Deployment/exporter'] and outcome['unchanged'] == ['Service/exporter']
    assert outcome['failed'] == [
        {'object': 'ConfigMap/Bad_Name', 'status': 422, 'reason': 'Invalid', 'message': message},
        {'object': 'ConfigMap/c', 'status': None, 'reason': 'failed', 'message': 'Failed to apply object: HTTPConnectionPool: connection refused'}]
    assert outcome['failure_lines'][0] == 'ConfigMap/Bad_Name: 422 Invalid: ' + message
    assert outcome['failure_heads'] == ['ConfigMap/Bad_Name (422 Invalid)', 'ConfigMap/c (failed)']


def test_a_secrets_failure_never_carries_its_message():
    planted = 'cGxhbnRlZC12YWx1ZQ=='
    denial = 'admission webhook "policy.example.com" denied the request: data.token %s looks like a leaked key' % planted
    results = [dict(k8s_failure(403, 'Forbidden', denial, 'Forbidden'), item=obj('v1', 'Secret', 'creds', data={'token': planted})),
               {'failed': True, 'msg': 'boom %s' % planted, 'item': obj('v1', 'Secret', 'other', data={'token': planted})}]
    outcome = restore.apply_outcome(results)
    assert outcome['failed'] == [{'object': 'Secret/creds', 'status': 403, 'reason': 'Forbidden', 'message': 'withheld (Secret)'},
                                 {'object': 'Secret/other', 'status': None, 'reason': 'failed', 'message': 'withheld (Secret)'}]
    assert outcome['failure_lines'] == ['Secret/creds: 403 Forbidden (message withheld (Secret))', 'Secret/other: failed (message withheld (Secret))']
    assert outcome['failure_heads'] == ['Secret/creds (403 Forbidden)', 'Secret/other (failed)']
    assert planted not in json.dumps(outcome) and 'planted-value' not in json.dumps(outcome)


def test_a_long_message_is_cut():
    outcome = restore.apply_outcome([dict(k8s_failure(422, 'Invalid', 'x' * 5000), item=obj('v1', 'ConfigMap', 'c'))])
    assert len(outcome['failed'][0]['message']) == restore.MESSAGE_LIMIT
