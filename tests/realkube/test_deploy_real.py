# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/deploy.yml against the real API server: install, idempotence, upgrade, uninstall, admission.

The launcher's pods are created by the real ReplicaSet controller and admitted (or not) by the real Pod Security
admission under the ``restricted`` level the role puts on its namespace; kwok runs them. The Role and ClusterRole
read back from the API server are exactly the rules in roles/deploy/vars/main.yml (tests/realkube/test_rbac_real.py
proves those are what the response uses, under the real authoriser).
"""

from __future__ import annotations

import itertools

import pytest

from tests.kube.cluster import ApiError
from tests.realkube.conftest import CLUSTER_ROLE_RULES, DEPLOY_NAME, RULES, ROLE_RULES, deploy, persistent_volume

_NUMBER = itertools.count(1)
MANAGED = 'app.kubernetes.io/managed-by=slurm_exporter.incident_response'
KINDS = (('v1', 'ServiceAccount'), ('v1', 'ConfigMap'), ('v1', 'Secret'), ('v1', 'PersistentVolumeClaim'), ('v1', 'Service'),
         ('apps/v1', 'Deployment'), ('batch/v1', 'CronJob'), ('networking.k8s.io/v1', 'NetworkPolicy'),
         ('policy/v1', 'PodDisruptionBudget'),
         ('rbac.authorization.k8s.io/v1', 'Role'), ('rbac.authorization.k8s.io/v1', 'RoleBinding'),
         ('monitoring.coreos.com/v1', 'PrometheusRule'))


@pytest.fixture
def deploy_namespace(real_cluster):
    namespace = 'ir-deploy-%d' % next(_NUMBER)
    yield namespace
    real_cluster.delete_namespace(namespace)
    for kind in ('ClusterRoleBinding', 'ClusterRole'):
        real_cluster.delete('rbac.authorization.k8s.io/v1', kind, None, '%s-%s' % (namespace, DEPLOY_NAME))


def changed(run):
    return run.json['stats']['localhost']['changed']


def owned(cluster, namespaces):
    """:func:`version` of every object the deploy labelled as its own in ``namespaces`` (and cluster-wide)."""
    found = {}
    for namespace in namespaces:
        for api_version, kind in KINDS:
            for item in cluster.list(api_version, kind, namespace, MANAGED):
                found[(kind, namespace, item['metadata']['name'])] = version(kind, item)
    for kind in ('Namespace', 'ClusterRole', 'ClusterRoleBinding'):
        api_version = 'v1' if kind == 'Namespace' else 'rbac.authorization.k8s.io/v1'
        for item in cluster.list(api_version, kind, None, MANAGED):
            found[(kind, None, item['metadata']['name'])] = item['metadata']['resourceVersion']
    return found


def version(kind, item):
    """What a write by the deploy would change: the resourceVersion, or for a CronJob (whose controller writes its
    status every minute) the generation, labels and annotations."""
    metadata = item['metadata']
    if kind == 'CronJob':
        return (metadata['generation'], tuple(sorted((metadata.get('labels') or {}).items())),
                tuple(sorted((metadata.get('annotations') or {}).items())))
    return metadata['resourceVersion']


def launcher_pods(cluster, namespace):
    return cluster.list('v1', 'Pod', namespace, 'app.kubernetes.io/component=launcher')


def test_install_idempotence_upgrade_uninstall(real_cluster, real_kube, deploy_namespace):
    target = real_kube.namespace
    kubeconfig = real_kube.kubeconfig

    # Check mode of a first install: nothing is persisted (the namespace does not exist yet, so nothing is dry-run in it).
    persistent_volume(real_cluster, deploy_namespace)
    real_kube.clear_requests()
    check = deploy(real_cluster, kubeconfig, deploy_namespace, target, check=True)
    assert check.rc == 0, check
    assert real_kube.writes() == [] and real_cluster.get('v1', 'Namespace', None, deploy_namespace) is None

    # Install.
    run = deploy(real_cluster, kubeconfig, deploy_namespace, target)
    assert run.rc == 0, run
    namespace = real_cluster.get('v1', 'Namespace', None, deploy_namespace)
    assert namespace['metadata']['labels']['pod-security.kubernetes.io/enforce'] == 'restricted'

    # The launcher's pod was admitted under `restricted` and runs (kwok), as the role's wait already saw.
    pods = launcher_pods(real_cluster, deploy_namespace)
    assert len(pods) == 1 and pods[0]['status']['phase'] == 'Running'
    assert pods[0]['spec']['serviceAccountName'] == DEPLOY_NAME
    assert not [e for e in real_cluster.list('v1', 'Event', deploy_namespace) if e['reason'] == 'FailedCreate']
    # The escalation CronJob's pods would be admitted too (the API server judges a dry-run create of its pod template).
    cronjob = real_cluster.get('batch/v1', 'CronJob', deploy_namespace, 'incident-escalation')
    template = cronjob['spec']['jobTemplate']['spec']['template']
    real_cluster.api('POST', '/api/v1/namespaces/%s/pods' % deploy_namespace, params={'dryRun': 'All'},
                     body={'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'escalation-admission-check'}, 'spec': template['spec']})
    # ...and a pod that does not meet `restricted` is refused in that namespace.
    with pytest.raises(ApiError) as refused:
        real_cluster.create({'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'root', 'namespace': deploy_namespace},
                             'spec': {'containers': [{'name': 'c', 'image': 'busybox'}]}})
    assert refused.value.status == 403 and 'PodSecurity' in refused.value.body['message']

    # The Role and ClusterRole as the API server stores them: exactly the role's rules.
    role = real_cluster.get('rbac.authorization.k8s.io/v1', 'Role', target, DEPLOY_NAME)
    assert role['rules'] == ROLE_RULES
    cluster_role = real_cluster.get('rbac.authorization.k8s.io/v1', 'ClusterRole', None, '%s-%s' % (deploy_namespace, DEPLOY_NAME))
    assert cluster_role['rules'] == CLUSTER_ROLE_RULES
    assert real_cluster.get('monitoring.coreos.com/v1', 'PrometheusRule', target, 'incident-detection-rules')

    # Second run: reported unchanged, and no object's resourceVersion moved (the API server's own verdict).
    before = owned(real_cluster, (deploy_namespace, target))
    real_kube.clear_requests()
    again = deploy(real_cluster, kubeconfig, deploy_namespace, target)
    assert again.rc == 0, again
    assert changed(again) == 0, [t for p in again.json['plays'] for t in p['tasks'] if t['hosts']['localhost'].get('changed')]
    assert owned(real_cluster, (deploy_namespace, target)) == before

    # Upgrade: a rotated token and new launcher settings roll the launcher to a new ReplicaSet; the CronJob goes away.
    old_replicasets = {rs['metadata']['name'] for rs in real_cluster.list('apps/v1', 'ReplicaSet', deploy_namespace)}
    upgrade = deploy(real_cluster, kubeconfig, deploy_namespace, target, deploy_launcher_bearer_token='x' * 40,
                     deploy_escalation_enabled=False, deploy_launcher_config={'workers': {'concurrency': 2}})
    assert upgrade.rc == 0, upgrade
    real_cluster.wait_rollout(deploy_namespace, 'incident-webhook')
    deployment = real_cluster.get('apps/v1', 'Deployment', deploy_namespace, 'incident-webhook')
    assert deployment['metadata']['annotations']['deployment.kubernetes.io/revision'] == '2'
    new_replicasets = {rs['metadata']['name'] for rs in real_cluster.list('apps/v1', 'ReplicaSet', deploy_namespace)} - old_replicasets
    assert len(new_replicasets) == 1
    assert [p['metadata']['ownerReferences'][0]['name'] for p in launcher_pods(real_cluster, deploy_namespace)] == list(new_replicasets)
    assert real_cluster.get('batch/v1', 'CronJob', deploy_namespace, 'incident-escalation') is None

    # Uninstall: everything but the namespace and the claim (the records); the exporter untouched; then the purge.
    exporter = real_cluster.get('apps/v1', 'Deployment', target, 'slurm-exporter')['metadata']['resourceVersion']
    absent = deploy(real_cluster, kubeconfig, deploy_namespace, target, deploy_state='absent')
    assert absent.rc == 0, absent
    left = {(kind, name) for kind, _ns, name in owned(real_cluster, (deploy_namespace, target))}
    assert left == {('Namespace', deploy_namespace), ('PersistentVolumeClaim', DEPLOY_NAME)}, left
    assert real_cluster.get('apps/v1', 'Deployment', target, 'slurm-exporter')['metadata']['resourceVersion'] == exporter
    real_cluster.wait_for('the launcher pods gone', lambda: not launcher_pods(real_cluster, deploy_namespace), 60)
    assert changed(deploy(real_cluster, kubeconfig, deploy_namespace, target, deploy_state='absent')) == 0
    purge = deploy(real_cluster, kubeconfig, deploy_namespace, target, deploy_state='absent', deploy_purge_data=True)
    assert purge.rc == 0, purge
    assert real_cluster.get('v1', 'Namespace', None, deploy_namespace) is None


CRD = 'incidents.incident-response.slurm-exporter.io'
CONFIGMAP_VERBS = ('create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch')


def allowed_verbs(cluster, token, namespace, resource='configmaps'):
    """The verbs on ``resource`` in ``namespace`` that the real authoriser grants the holder of ``token``."""
    allowed = set()
    for verb in CONFIGMAP_VERBS:
        review = {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SelfSubjectAccessReview',
                  'spec': {'resourceAttributes': {'namespace': namespace, 'verb': verb, 'resource': resource, 'group': ''}}}
        if cluster.api('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', review, token=token)['status'].get('allowed'):
            allowed.add(verb)
    return allowed


def test_several_launcher_replicas_and_back_to_one(real_cluster, real_kube, deploy_namespace):
    """deploy_launcher_replicas: 2 on the real API server: two launchers admitted and running, the rolling update, the
    anti-affinity and the PodDisruptionBudget accepted (the disruption controller counts both launchers), the
    ServiceAccount allowed exactly the cluster spool's verbs on ConfigMaps in deploy_namespace, a second run unchanged;
    back to 1 replica the real server takes the Recreate strategy again and the budget and the spool Role are gone."""
    target = real_kube.namespace
    kubeconfig = real_kube.kubeconfig
    replicated = {'deploy_launcher_replicas': 2, 'deploy_store_backend': 'kubernetes', 'deploy_storage_access_mode': 'ReadWriteMany'}
    try:
        run = deploy(real_cluster, kubeconfig, deploy_namespace, target, **replicated)
        assert run.rc == 0, run
        pods = launcher_pods(real_cluster, deploy_namespace)
        assert len(pods) == 2 and all(pod['status']['phase'] == 'Running' for pod in pods)
        deployment = real_cluster.get('apps/v1', 'Deployment', deploy_namespace, 'incident-webhook')
        assert deployment['spec']['strategy'] == {'type': 'RollingUpdate', 'rollingUpdate': {'maxUnavailable': 0, 'maxSurge': 1}}
        assert deployment['spec']['template']['spec']['affinity']['podAntiAffinity']['preferredDuringSchedulingIgnoredDuringExecution']
        real_cluster.wait_for('the PodDisruptionBudget counting both launchers', lambda: (real_cluster.get(
            'policy/v1', 'PodDisruptionBudget', deploy_namespace, 'incident-webhook').get('status') or {}).get('currentHealthy') == 2, 60)
        role = real_cluster.get('rbac.authorization.k8s.io/v1', 'Role', deploy_namespace, '%s-spool' % DEPLOY_NAME)
        assert role['rules'] == RULES['_deploy_spool_rules']

        # The ServiceAccount's token: the spool's verbs on ConfigMaps in deploy_namespace (the store Role's configmaps
        # verbs are among them), no patch, no watch; and those requests pass the real authoriser.
        token = real_cluster.service_account_token(deploy_namespace, DEPLOY_NAME)
        spool_verbs = {verb for rule in RULES['_deploy_spool_rules'] for verb in rule['verbs']}
        real_cluster.wait_for('the spool Role in force', lambda: 'delete' in allowed_verbs(real_cluster, token, deploy_namespace), 30)
        assert allowed_verbs(real_cluster, token, deploy_namespace) == spool_verbs
        # A second run changes nothing, the Incident CRD included (its apply is a no-op on the real server).
        before = owned(real_cluster, (deploy_namespace, target))
        again = deploy(real_cluster, kubeconfig, deploy_namespace, target, **replicated)
        assert again.rc == 0, again
        assert changed(again) == 0, [t for p in again.json['plays'] for t in p['tasks'] if t['hosts']['localhost'].get('changed')]
        assert owned(real_cluster, (deploy_namespace, target)) == before
        path = '/api/v1/namespaces/%s/configmaps' % deploy_namespace
        created = real_cluster.api('POST', path, {'apiVersion': 'v1', 'kind': 'ConfigMap', 'data': {'entry': '{}'},
                                                  'metadata': {'name': 'alert-check', 'labels': {'spool-check': 'yes'}}}, token=token)
        listed = real_cluster.api('GET', path, params={'labelSelector': 'spool-check=yes'}, token=token)['items']
        assert [item['metadata']['name'] for item in listed] == ['alert-check']
        created['data'] = {'entry': '{"state": "done"}'}
        real_cluster.api('PUT', path + '/alert-check', created, token=token)
        with pytest.raises(ApiError) as stale:  # the resourceVersion precondition the claims rely on
            real_cluster.api('PUT', path + '/alert-check', created, token=token)
        assert stale.value.status == 409
        real_cluster.api('DELETE', path + '/alert-check', token=token)

        # Back to one replica: Recreate, no anti-affinity, no budget, no spool Role (the store's configmaps verbs remain).
        one = deploy(real_cluster, kubeconfig, deploy_namespace, target, deploy_store_backend='kubernetes',
                     deploy_storage_access_mode='ReadWriteMany')
        assert one.rc == 0, one
        deployment = real_cluster.get('apps/v1', 'Deployment', deploy_namespace, 'incident-webhook')
        assert deployment['spec']['replicas'] == 1 and deployment['spec']['strategy'] == {'type': 'Recreate'}
        assert 'affinity' not in deployment['spec']['template']['spec']
        assert real_cluster.get('policy/v1', 'PodDisruptionBudget', deploy_namespace, 'incident-webhook') is None
        assert real_cluster.get('rbac.authorization.k8s.io/v1', 'Role', deploy_namespace, '%s-spool' % DEPLOY_NAME) is None
        real_cluster.wait_for('the spool Role out of force', lambda: 'delete' not in allowed_verbs(real_cluster, token, deploy_namespace), 30)
        assert allowed_verbs(real_cluster, token, deploy_namespace) == {'create', 'get', 'update'}
        real_cluster.wait_rollout(deploy_namespace, 'incident-webhook')
        real_cluster.wait_for('one launcher', lambda: len(launcher_pods(real_cluster, deploy_namespace)) == 1, 60)
    finally:
        real_cluster.delete_namespace(deploy_namespace, wait=True)
        real_cluster.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', None, CRD)
