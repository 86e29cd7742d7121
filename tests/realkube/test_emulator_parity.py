# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulator answers as the real API server does: every case runs against both, with the same assertions.

The real server is the reference: where the two disagreed (status codes, patch semantics, validation, dry run,
defaulting), the emulator was fixed, and the case stays here so that they cannot drift apart again.
"""

from __future__ import annotations

import json

import pytest
import requests


class Target:
    """One API server (the emulator or the real one), as the admin, in one namespace seeded with slurm-exporter."""

    def __init__(self, name, url, token, verify, namespace):  # pylint: disable=too-many-arguments
        self.name = name
        self.url = url
        self.token = token
        self.verify = verify
        self.namespace = namespace

    def request(self, method, path, body=None, content_type='application/json', params=None):  # pylint: disable=too-many-arguments
        headers = {'Authorization': 'Bearer %s' % self.token}
        if body is not None:
            headers['Content-Type'] = content_type
        return requests.request(method, self.url + path.replace('{ns}', self.namespace), headers=headers, params=params,
                                data=json.dumps(body) if body is not None else None, verify=self.verify, timeout=30)


@pytest.fixture(params=['emulator', 'real'])
def target(request):
    if request.param == 'emulator':
        from tests.emulator import Emulator  # pylint: disable=import-outside-toplevel
        emulator = Emulator.start(seed=True)
        try:
            yield Target('emulator', emulator.url, emulator.token, True, 'slurm-exporter')
        finally:
            emulator.stop()
        return
    cluster = request.getfixturevalue('real_cluster')
    namespace = request.getfixturevalue('real_namespace')
    yield Target('real', cluster.url, cluster.admin_token, cluster.ca_cert, namespace)


def configmap(name, data=None, namespace=None):
    obj = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': name}, 'data': data or {'a': '1'}}
    if namespace:
        obj['metadata']['namespace'] = namespace
    return obj


def status(response):
    body = response.json()
    return response.status_code, body.get('kind'), body.get('reason')


def test_get_missing_is_a_not_found_status(target):
    response = target.request('GET', '/api/v1/namespaces/{ns}/configmaps/missing')
    assert status(response) == (404, 'Status', 'NotFound')
    assert response.json()['details'] == {'name': 'missing', 'kind': 'configmaps'}


def test_create_twice_is_already_exists(target):
    assert target.request('POST', '/api/v1/namespaces/{ns}/configmaps', configmap('twice')).status_code == 201
    response = target.request('POST', '/api/v1/namespaces/{ns}/configmaps', configmap('twice'))
    assert status(response) == (409, 'Status', 'AlreadyExists')


def test_invalid_name_is_unprocessable(target):
    response = target.request('POST', '/api/v1/namespaces/{ns}/configmaps', configmap('Not_A_Name'))
    assert status(response) == (422, 'Status', 'Invalid')
    assert response.json()['details']['causes'][0]['field'] == 'metadata.name'


def test_create_in_a_missing_namespace_is_not_found(target):
    response = target.request('POST', '/api/v1/namespaces/nowhere/configmaps', configmap('x'))
    assert status(response) == (404, 'Status', 'NotFound')
    assert response.json()['details'] == {'name': 'nowhere', 'kind': 'namespaces'}


def test_namespace_in_body_must_match_the_path(target):
    response = target.request('POST', '/api/v1/namespaces/{ns}/configmaps', configmap('elsewhere', namespace='kube-system'))
    assert response.status_code == 400 and response.json()['reason'] == 'BadRequest'


def test_update_with_a_stale_resource_version_conflicts(target):
    created = target.request('POST', '/api/v1/namespaces/{ns}/configmaps', configmap('stale')).json()
    fresh = dict(created, data={'a': '2'})
    assert target.request('PUT', '/api/v1/namespaces/{ns}/configmaps/stale', fresh).status_code == 200
    response = target.request('PUT', '/api/v1/namespaces/{ns}/configmaps/stale', dict(created, data={'a': '3'}))
    assert status(response) == (409, 'Status', 'Conflict')


def test_merge_patch_null_removes_a_key_and_a_no_op_keeps_the_resource_version(target):
    created = target.request('POST', '/api/v1/namespaces/{ns}/configmaps', configmap('merge', {'a': '1', 'b': '2'})).json()
    patched = target.request('PATCH', '/api/v1/namespaces/{ns}/configmaps/merge', {'data': {'a': None, 'c': '3'}},
                             content_type='application/merge-patch+json').json()
    assert patched['data'] == {'b': '2', 'c': '3'}
    again = target.request('PATCH', '/api/v1/namespaces/{ns}/configmaps/merge', {'data': {'c': '3'}},
                           content_type='application/merge-patch+json').json()
    assert again['metadata']['resourceVersion'] == patched['metadata']['resourceVersion'] != created['metadata']['resourceVersion']


def test_strategic_merge_patch_merges_containers_by_name(target):
    path = '/apis/apps/v1/namespaces/{ns}/deployments/slurm-exporter'
    patch = {'spec': {'template': {'spec': {'containers': [{'name': 'sidecar', 'image': 'busybox:1'}]}}}}
    patched = target.request('PATCH', path, patch, content_type='application/strategic-merge-patch+json', params={'dryRun': 'All'})
    assert patched.status_code == 200, patched.text
    names = [c['name'] for c in patched.json()['spec']['template']['spec']['containers']]
    assert names == ['sidecar', 'slurm-exporter'] or names == ['slurm-exporter', 'sidecar']
    # The same body as a merge patch replaces the whole list (and the result fails no validation: one container).
    merged = target.request('PATCH', path, patch, content_type='application/merge-patch+json', params={'dryRun': 'All'})
    assert [c['name'] for c in merged.json()['spec']['template']['spec']['containers']] == ['sidecar']


def test_json_patch_failed_test_operation(target):
    response = target.request('PATCH', '/api/v1/namespaces/{ns}/configmaps/slurm-exporter-config',
                              [{'op': 'test', 'path': '/metadata/name', 'value': 'other'}], content_type='application/json-patch+json')
    assert response.status_code == 422 and response.json()['reason'] == 'Invalid'


def test_dry_run_create_persists_nothing(target):
    response = target.request('POST', '/api/v1/namespaces/{ns}/configmaps', configmap('dry'), params={'dryRun': 'All'})
    assert response.status_code == 201 and response.json()['metadata']['name'] == 'dry'
    assert target.request('GET', '/api/v1/namespaces/{ns}/configmaps/dry').status_code == 404


def test_dry_run_delete_keeps_the_object(target):
    response = target.request('DELETE', '/api/v1/namespaces/{ns}/configmaps/slurm-exporter-config', params={'dryRun': 'All'})
    assert response.status_code == 200
    assert target.request('GET', '/api/v1/namespaces/{ns}/configmaps/slurm-exporter-config').status_code == 200


def test_delete_answers_with_a_success_status(target):
    target.request('POST', '/api/v1/namespaces/{ns}/configmaps', configmap('gone'))
    response = target.request('DELETE', '/api/v1/namespaces/{ns}/configmaps/gone')
    assert response.status_code == 200
    body = response.json()
    assert (body['kind'], body['status'], body['details']['name']) == ('Status', 'Success', 'gone')


def test_deployment_defaults(target):
    deployment = {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'defaults'},
                  'spec': {'selector': {'matchLabels': {'app': 'defaults'}},
                           'template': {'metadata': {'labels': {'app': 'defaults'}},
                                        'spec': {'containers': [{'name': 'c', 'image': 'busybox:latest'}]}}}}
    created = target.request('POST', '/apis/apps/v1/namespaces/{ns}/deployments', deployment, params={'dryRun': 'All'})
    assert created.status_code == 201, created.text
    spec = created.json()['spec']
    assert spec['replicas'] == 1 and spec['revisionHistoryLimit'] == 10 and spec['progressDeadlineSeconds'] == 600
    assert spec['strategy'] == {'type': 'RollingUpdate', 'rollingUpdate': {'maxUnavailable': '25%', 'maxSurge': '25%'}}
    pod = spec['template']['spec']
    assert (pod['restartPolicy'], pod['dnsPolicy'], pod['terminationGracePeriodSeconds'], pod['schedulerName']) == \
        ('Always', 'ClusterFirst', 30, 'default-scheduler')
    container = pod['containers'][0]
    assert container['imagePullPolicy'] == 'Always' and container['terminationMessagePolicy'] == 'File'


def test_scale_subresource(target):
    path = '/apis/apps/v1/namespaces/{ns}/deployments/slurm-exporter/scale'
    scale = target.request('GET', path).json()
    assert (scale['kind'], scale['apiVersion'], scale['spec']['replicas']) == ('Scale', 'autoscaling/v1', 3)
    assert scale['status']['selector'] == 'app=slurm-exporter,component=exporter'
    refused = target.request('PATCH', path, {'spec': {'replicas': -1}}, content_type='application/merge-patch+json')
    assert status(refused) == (422, 'Status', 'Invalid')


def test_bad_label_selector_is_a_bad_request(target):
    response = target.request('GET', '/api/v1/namespaces/{ns}/pods', params={'labelSelector': 'app in (a'})
    assert status(response) == (400, 'Status', 'BadRequest')


def test_a_limit_range_with_two_items_of_one_type_is_invalid(target):
    """The upstream manifests' LimitRange: both seeds correct it (tests.emulator.seed.corrected)."""
    limit_range = {'apiVersion': 'v1', 'kind': 'LimitRange', 'metadata': {'name': 'twice'},
                   'spec': {'limits': [{'type': 'Container', 'default': {'cpu': '500m'}}, {'type': 'Container', 'max': {'cpu': '2'}}]}}
    response = target.request('POST', '/api/v1/namespaces/{ns}/limitranges', limit_range)
    assert status(response) == (422, 'Status', 'Invalid')
    assert response.json()['details']['causes'][0]['field'] == 'spec.limits[1].type'


def test_a_docker_config_secret_must_hold_json(target):
    """The upstream manifests' registry-credentials (an empty .dockerconfigjson): both seeds skip it."""
    secret = {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'registry'}, 'type': 'kubernetes.io/dockerconfigjson',
              'data': {'.dockerconfigjson': ''}}
    response = target.request('POST', '/api/v1/namespaces/{ns}/secrets', secret)
    assert status(response) == (422, 'Status', 'Invalid')
    assert response.json()['details']['causes'][0]['field'] == 'data[.dockerconfigjson]'
