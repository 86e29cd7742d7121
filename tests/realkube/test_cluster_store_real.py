# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kubernetes incident store against the real kube-apiserver: the CRD of roles/deploy/files/incidents.crd.yaml is
accepted and established, the store's objects pass its structural schema unchanged (no field pruned: the record reads
back with the digest it was written with), 16 concurrent writers lose no update under the real resourceVersion
preconditions, and the printer columns are what `kubectl get incidents` shows."""

from __future__ import annotations

import os
import threading

import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import kubestore, stores
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import record_digest
from tests.conftest import REPO_ROOT
from tests.integration.test_rbac import expand, usage
from tests.realkube.conftest import DEPLOY_NAME, deploy, service_account_view
from tests.realkube.test_rbac_real import wait_authorised

NS = 'ir-store-real'
with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'vars', 'main.yml'), encoding='utf-8') as _vars:
    STORE_RULES = yaml.safe_load(_vars)['_deploy_store_rules']


@pytest.fixture
def store_settings(uses_real_cluster, tmp_path):
    cluster = uses_real_cluster
    cluster.install_crd(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'))
    cluster.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    kubeconfig = cluster.write_kubeconfig(str(tmp_path / 'kubeconfig'), namespace=NS)
    try:
        yield cluster, stores.settings('kubernetes', str(tmp_path / 'local'), NS, {'kubeconfig': kubeconfig})
    finally:
        cluster.delete_namespace(NS, wait=True)
        cluster.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', None, kubestore.CRD_NAME)


def alert(fingerprint):
    return {'fingerprint': fingerprint, 'status': 'firing', 'labels': {'alertname': 'SlurmExporterDown'}, 'annotations': {'summary': 's'}}


def test_the_real_api_server_accepts_the_crd_and_the_store(store_settings):
    cluster, config = store_settings
    svc = IncidentService(stores.open_store(config), load_catalog(), actor='tester')
    opened = svc.open(alerts=[alert('a1b2')])
    incident_id = opened.after['id']
    assert svc.open(alerts=[alert('a1b2')]).attached
    errors = []

    def writer(number):
        try:
            IncidentService(stores.open_store(config), load_catalog(), actor='w%d' % number).update(
                incident_id, edits={'timeline': [{'phase': 'investigation', 'event': 'update', 'message': 'writer %d' % number}]})
        except Exception as exc:  # pylint: disable=broad-exception-caught
            errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    store = stores.open_store(config)
    record = store.read(incident_id)
    assert record['revision'] == 17
    assert {'writer %d' % number for number in range(16)} <= {entry['message'] for entry in record['timeline']}
    assert [entry['revision'] for entry in store.audit_entries(incident_id)] == list(range(1, 18))
    # Stored as written: the structural schema pruned nothing of the record.
    obj = cluster.get(kubestore.API_VERSION, 'Incident', NS, kubestore.object_name(incident_id))
    assert record_digest(obj['spec']) == record_digest(record)
    assert obj['status']['phase'] == 'investigating'
    # kubectl get incidents
    table = cluster.session.get(cluster.url + '/apis/%s/namespaces/%s/incidents' % (kubestore.API_VERSION, NS), verify=cluster.pki.ca_cert,
                                headers={'Accept': 'application/json;as=Table;g=meta.k8s.io;v=v1',
                                         'Authorization': 'Bearer %s' % cluster.admin_token}).json()
    assert [column['name'] for column in table['columnDefinitions']][:6] == ['Name', 'ID', 'Type', 'Severity', 'Status', 'Age']
    assert table['rows'][0]['cells'][1:5] == [incident_id, 'service_outage', 'critical', 'investigating']
    # a label selection as incident_info makes it
    assert [summary['id'] for summary in store.list()[0]] == [incident_id]


DEPLOY_NAMESPACE = 'ir-store-deploy'
TARGET = 'slurm-exporter-store'


def test_the_deployed_service_account_runs_the_store_with_exactly_its_role(uses_real_cluster, tmp_path, monkeypatch):
    """deploy_store_backend: kubernetes on the real server: the role applies the CRD and the store's Role; the store run
    with the deployed ServiceAccount's token is never refused by the real authoriser and uses every permission."""
    real_cluster = uses_real_cluster
    real_cluster.seed(TARGET)
    kubeconfig = real_cluster.write_kubeconfig(str(tmp_path / 'kubeconfig'), namespace=TARGET)
    try:
        run = deploy(real_cluster, kubeconfig, DEPLOY_NAMESPACE, TARGET, deploy_store_backend='kubernetes', deploy_wait=False)
        assert run.rc == 0, run
        role = real_cluster.get('rbac.authorization.k8s.io/v1', 'Role', DEPLOY_NAMESPACE, '%s-store' % DEPLOY_NAME)
        assert role['rules'] == STORE_RULES
        view = service_account_view(real_cluster, DEPLOY_NAMESPACE, str(tmp_path / 'kubeconfig-sa'))
        wait_authorised(real_cluster, view.user, DEPLOY_NAMESPACE, resource='incidents', verb='list', group=kubestore.GROUP)
        config = stores.settings('kubernetes', str(tmp_path / 'local'), DEPLOY_NAMESPACE, {'kubeconfig': view.kubeconfig})
        monkeypatch.setattr(kubestore, 'AUDIT_KEEP', 4)
        monkeypatch.setattr(kubestore, 'AUDIT_CHUNK', 2)
        view.clear_requests()
        svc = IncidentService(stores.open_store(config), load_catalog(), actor='sa')
        first = svc.open(alerts=[alert('c0de')]).after['id']
        svc.open(alerts=[alert('c0df')])
        for number in range(5):
            svc.update(first, edits={'summary': 'change %d' % number})
        assert [entry['revision'] for entry in svc.store.audit_entries(first)] == list(range(1, 7))
        assert [summary['id'] for summary in svc.store.list()[0]][0] == first
        assert view.forbidden() == [], 'the real authoriser refused: %s' % view.forbidden()
        used = set()
        for request in view.requests:
            found = usage(request)
            if found is not None:
                group, resource, verb, namespace = found
                assert namespace == DEPLOY_NAMESPACE, request
                used.add((group, resource, verb))
        assert used == expand(STORE_RULES)
    finally:
        for namespace in (DEPLOY_NAMESPACE, TARGET):
            real_cluster.delete_namespace(namespace, wait=True)
        for kind in ('ClusterRoleBinding', 'ClusterRole'):
            real_cluster.delete('rbac.authorization.k8s.io/v1', kind, None, '%s-%s' % (DEPLOY_NAMESPACE, DEPLOY_NAME))
        real_cluster.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', None, kubestore.CRD_NAME)
