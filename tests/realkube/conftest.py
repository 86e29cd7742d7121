# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real-cluster tier: the collection against a real kube-apiserver (tests/kube), `make realkube`.

Every test here is marked ``realkube``. Each pytest process (each xdist worker, ``make realkube`` runs two) starts a
control plane of its own for the tests it runs; the tests of one file share an xdist group, so they run in one process,
one after the other (test_rbac_real.py's last tests check what its scenarios used; its Role is deployed once). Shared
pieces: the response playbooks' Responder pointed at a namespace of the real cluster, the deploy role run as the
admin, and the ServiceAccount it installs, with a token from the TokenRequest API.
"""

from __future__ import annotations

import os

import pytest
import yaml

from tests.conftest import REPO_ROOT, run_playbook
from tests.integration.test_response_playbooks import Responder
from tests.kube.view import KubeView

DEPLOY_PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'deploy.yml')
DEPLOY_INVENTORY = os.path.join(REPO_ROOT, 'inventories', 'local')
DEPLOY_NAME = 'incident-response'
LAUNCHER_TOKEN = 'launcher-token-real-cluster-5e8d2a7c9b1f3e6d'
with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'vars', 'main.yml'), encoding='utf-8') as _vars:
    RULES = yaml.safe_load(_vars)
ROLE_RULES = RULES['_deploy_role_rules']
CLUSTER_ROLE_RULES = RULES['_deploy_cluster_role_rules']


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the xdist_group marks (loadgroup)
def pytest_collection_modifyitems(items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.realkube)
            item.add_marker(pytest.mark.xdist_group('realkube-' + os.path.splitext(os.path.basename(str(item.fspath)))[0]))


class RealResponder(Responder):
    """The response playbooks' Responder, acting on one namespace of the real cluster through ``view``'s kubeconfig."""

    def __init__(self, view, tmp_path, namespace):
        super().__init__(view, tmp_path)
        self.namespace = namespace

    def api(self, method, path, body=None, content_type='application/merge-patch+json'):
        """A request as the admin (test set-up: the attacker's change, a broken node...)."""
        return self.kube.cluster.api(method, path, body, content_type=content_type)

    def deployment(self):
        return self.kube.get('apps/v1', 'Deployment', self.namespace, 'slurm-exporter')

    def run(self, playbook, payload=None, check=False, extra=None, env=None):
        variables = {'incident_namespace': self.namespace}
        variables.update(extra or {})
        return super().run(playbook, payload, check=check, extra=variables, env=env)


@pytest.fixture
def real_responder(real_kube, tmp_path):
    return RealResponder(real_kube, tmp_path, real_kube.namespace)


def persistent_volume(cluster, namespace, claim=DEPLOY_NAME, size='20Gi'):
    """A PersistentVolume bound in advance to the deploy role's claim (no storage provisioner in this cluster)."""
    name = 'pv-%s-%s' % (namespace, claim)
    if cluster.get('v1', 'PersistentVolume', None, name) is None:
        cluster.create({'apiVersion': 'v1', 'kind': 'PersistentVolume', 'metadata': {'name': name},
                        'spec': {'capacity': {'storage': size}, 'accessModes': ['ReadWriteOnce', 'ReadWriteMany'],
                                 'persistentVolumeReclaimPolicy': 'Delete', 'hostPath': {'path': '/tmp/%s' % name},
                                 'claimRef': {'namespace': namespace, 'name': claim}}})
    return name


def deploy_settings(kubeconfig, deploy_namespace, target_namespace, **extra):
    variables = {'deploy_kubeconfig': kubeconfig, 'deploy_namespace': deploy_namespace, 'incident_namespace': target_namespace,
                 'deploy_launcher_bearer_token': LAUNCHER_TOKEN, 'deploy_wait_timeout': 90,
                 'incident_slack': {'webhook_url': 'https://hooks.slack.example/services/T0/B0/real-cluster'}}
    variables.update(extra)
    return variables


def deploy(cluster, kubeconfig, deploy_namespace, target_namespace, check=False, **extra):
    """playbooks/deploy.yml as the admin; the PersistentVolume for its claim is made first."""
    persistent_volume(cluster, deploy_namespace)
    run = run_playbook(DEPLOY_PLAYBOOK, deploy_settings(kubeconfig, deploy_namespace, target_namespace, **extra), check=check,
                       inventory=DEPLOY_INVENTORY, timeout=600)
    assert LAUNCHER_TOKEN not in run.stdout + run.stderr, 'a secret reached the output'
    return run


def service_account_view(cluster, deploy_namespace, kubeconfig_path, name=DEPLOY_NAME, target_namespace=None):
    """A view of the deployed ServiceAccount: a TokenRequest token in a kubeconfig, its requests from the audit log."""
    token = cluster.service_account_token(deploy_namespace, name)
    kubeconfig = cluster.write_kubeconfig(kubeconfig_path, token=token, user=name, namespace=target_namespace or deploy_namespace)
    return KubeView(cluster, kubeconfig, token=token, user='system:serviceaccount:%s:%s' % (deploy_namespace, name))


def grant(cluster, namespace, deploy_namespace, rules, name=DEPLOY_NAME, service_account=DEPLOY_NAME):
    """The deploy role's Role and RoleBinding for one more response namespace, as its template writes them for each of
    ``_deploy_response_namespaces`` (the target and the drill namespace), with ``rules``."""
    cluster.create({'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'Role', 'metadata': {'name': name, 'namespace': namespace},
                    'rules': rules})
    cluster.create({'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'RoleBinding', 'metadata': {'name': name, 'namespace': namespace},
                    'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': name},
                    'subjects': [{'kind': 'ServiceAccount', 'name': service_account, 'namespace': deploy_namespace}]})
