# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The response playbooks' decisions (module_utils/response.py, used through the collection's filters)."""

from __future__ import annotations

import base64
import datetime
import json

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import response
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

NOON = int(datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.timezone.utc).timestamp())


def replicaset(revision, created, image, owner='slurm-exporter'):
    return {'metadata': {'name': 'rs-%d' % revision, 'creationTimestamp': created,
                         'annotations': {'deployment.kubernetes.io/revision': str(revision)},
                         'ownerReferences': [{'kind': 'Deployment', 'name': owner}]},
            'spec': {'template': {'metadata': {'labels': {'app': 'slurm-exporter', 'pod-template-hash': 'abc'}},
                                  'spec': {'containers': [{'name': 'slurm-exporter', 'image': image}]}}}}


def test_known_good_revision_is_the_last_one_before_the_incident():
    sets = [replicaset(1, '2026-01-01T00:00:00Z', 'good:1'), replicaset(2, '2026-01-30T00:00:00Z', 'good:2'),
            replicaset(3, '2026-01-31T11:59:00Z', 'evil:1'), replicaset(9, '2026-01-01T00:00:00Z', 'other', owner='another')]
    chosen = response.known_good_revision(sets, 'slurm-exporter', '2026-01-31T11:58:00Z')
    assert chosen['revision'] == 2 and chosen['current'] == 3 and chosen['changed']
    assert chosen['template']['spec']['containers'][0]['image'] == 'good:2'
    assert 'pod-template-hash' not in chosen['template']['metadata']['labels']
    assert not response.known_good_revision(sets, 'slurm-exporter', '2026-01-31T12:00:00Z')['changed']
    with pytest.raises(ValidationError, match='no revision older'):
        response.known_good_revision(sets, 'slurm-exporter', '2025-12-31T00:00:00Z')
    with pytest.raises(ValidationError, match='no ReplicaSet'):
        response.known_good_revision(sets, 'missing', '2026-01-31T12:00:00Z')
    with pytest.raises(ValidationError, match='RFC 3339'):
        response.known_good_revision(sets, 'slurm-exporter', 'yesterday')


@pytest.mark.parametrize('limits, ceilings, expected, capped', [
    ({'cpu': '500m', 'memory': '512Mi'}, {'cpu': '2', 'memory': '2Gi'}, {'cpu': '750m', 'memory': '768Mi'}, []),
    ({'cpu': '500m', 'memory': '512Mi'}, {'cpu': '600m', 'memory': '2Gi'}, {'cpu': '600m', 'memory': '768Mi'}, ['cpu']),
    ({'cpu': '2', 'memory': '2Gi'}, {'cpu': '2', 'memory': '2Gi'}, {'cpu': '2', 'memory': '2Gi'}, ['cpu', 'memory']),
])
def test_raised_limits_never_pass_the_ceilings(limits, ceilings, expected, capped):
    result = response.raised_limits({'resources': {'limits': limits}}, 1.5, ceilings)
    assert result['limits'] == expected and result['capped'] == capped
    assert result['changed'] == (expected != limits)


@pytest.mark.parametrize('factor, ceilings, message', [(1, {'cpu': '1'}, 'greater than 1'), ('x', {'cpu': '1'}, 'number'),
                                                       (2, {}, 'ceilings'), (2, {'cpu': 'lots'}, 'quantity')])
def test_raised_limits_refuse_bad_settings(factor, ceilings, message):
    with pytest.raises(ValidationError, match=message):
        response.raised_limits({'resources': {'limits': {'cpu': '1'}}}, factor, ceilings)


def encode(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b'=').decode()


def jwt(claims):
    return '%s.%s.sig' % (encode({'alg': 'HS256'}), encode(claims))


def test_jwt_expiry_reads_exp_and_never_returns_the_token():
    now = '2026-01-31T12:00:00Z'
    valid = response.jwt_expiry(jwt({'exp': NOON + 7200}), now, min_remaining=3600)
    assert valid['valid'] and not valid['expired'] and valid['remaining'] == 7200
    soon = response.jwt_expiry(jwt({'exp': NOON + 600}), now, min_remaining=3600)
    assert soon['expired']
    for token in ('', 'not-a-jwt', jwt({'sub': 'x'}), 'a.!!!.c'):
        result = response.jwt_expiry(token, now)
        assert result['expired'] and not result['valid']
        assert token not in json.dumps(result) or token == ''


def test_image_findings_flag_unexpected_digests_and_unpinned_images():
    pinned = {'spec': {'template': {'spec': {'containers': [{'name': 'app', 'image': 'repo/app@sha256:aaa'}]}}}}
    pods = [{'metadata': {'name': 'p1'}, 'status': {'containerStatuses': [{'name': 'app', 'imageID': 'repo/app@sha256:aaa'}]}},
            {'metadata': {'name': 'p2'}, 'status': {'containerStatuses': [{'name': 'app', 'imageID': 'repo/app@sha256:bad'}]}},
            {'metadata': {'name': 'p3'}, 'status': {'containerStatuses': [{'name': 'miner', 'imageID': 'x@sha256:ccc'}]}}]
    result = response.image_findings(pinned, pods)
    assert result['mismatched_pods'] == ['p2', 'p3'] and result['pinned']
    unpinned = {'spec': {'template': {'spec': {'containers': [{'name': 'app', 'image': 'repo/app:v1'}]}}}}
    result = response.image_findings(unpinned, pods[:2])
    assert result['mismatched_pods'] == [] and not result['pinned']
    assert [f['finding'] for f in result['findings']] == ['image repo/app:v1 is not pinned by digest', 'pods run different digests of repo/app:v1']


@pytest.mark.parametrize('replicas, available, strategy, minimum, allowed', [
    (3, 3, {'rollingUpdate': {'maxUnavailable': 1}}, 1, True),
    (3, 3, {'rollingUpdate': {'maxUnavailable': 1}}, 3, False),
    (3, 3, {'rollingUpdate': {'maxUnavailable': '0%'}}, 3, True),
    (3, 0, {}, 2, True),  # nothing available: a restart cannot make it worse
    (3, 3, {'type': 'Recreate'}, 1, False),
])
def test_restart_allowed_keeps_the_minimum(replicas, available, strategy, minimum, allowed):
    deployment = {'spec': {'replicas': replicas, 'strategy': strategy}, 'status': {'availableReplicas': available}}
    assert response.restart_allowed(deployment, minimum)['allowed'] is allowed


def test_scoped_manifests_force_the_namespace_and_refuse_others():
    docs = [{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'a', 'resourceVersion': '7'}, 'status': {}},
            None, {'apiVersion': 'v1', 'kind': 'List', 'items': [{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 'b', 'namespace': 'ns'}}]}]
    scoped = response.scoped_manifests(docs, 'ns')
    assert [(d['kind'], d['metadata']) for d in scoped] == [('ConfigMap', {'name': 'a', 'namespace': 'ns'}), ('Service', {'name': 'b', 'namespace': 'ns'})]
    with pytest.raises(ValidationError, match='outside the configured namespace'):
        response.scoped_manifests([{'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 's', 'namespace': 'kube-system'}}], 'ns')
    with pytest.raises(ValidationError, match='cluster-scoped'):
        response.scoped_manifests([{'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRole', 'metadata': {'name': 'r'}}], 'ns')
    with pytest.raises(ValidationError, match='kind not allowed'):
        response.scoped_manifests(docs[:1], 'ns', ['Deployment'])
    with pytest.raises(ValidationError, match='not a Kubernetes object'):
        response.scoped_manifests(['text'], 'ns')


def test_not_ready_nodes():
    nodes = [{'metadata': {'name': 'a'}, 'status': {'conditions': [{'type': 'Ready', 'status': 'True'}]}},
             {'metadata': {'name': 'b'}, 'status': {'conditions': [{'type': 'Ready', 'status': 'Unknown'}]}},
             {'metadata': {'name': 'c'}, 'status': {}}]
    assert response.not_ready_nodes(nodes) == ['b', 'c']
