# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kubernetes incident store (module_utils/kubestore.py) over real HTTP against the emulated API server, which serves
the collection's CustomResourceDefinition (roles/deploy/files/incidents.crd.yaml)."""

from __future__ import annotations

import os
import threading

import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import kubestore, stores
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import NotFoundError, ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from tests.conftest import REPO_ROOT

NS = 'incident-response'
CRD = os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml')
API = kubestore.API_VERSION


def alert(fingerprint='a1', alertname='SlurmExporterDown', status='firing'):
    return {'fingerprint': fingerprint, 'status': status, 'labels': {'alertname': alertname}, 'annotations': {'summary': 's'}}


@pytest.fixture
def cluster(kube, tmp_path):
    """The emulator with the Incident CRD and the store's namespace; returns the store settings."""
    with open(CRD, encoding='utf-8') as handle:
        kube.create(yaml.safe_load(handle))
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    kube.clear_requests()
    return stores.settings('kubernetes', str(tmp_path / 'local'), NS, {'kubeconfig': kube.kubeconfig}, lock_timeout=30)


def service(config, actor='tester', check_mode=False):
    return IncidentService(stores.open_store(config, read_only=check_mode), load_catalog(), actor=actor, check_mode=check_mode)


def test_lifecycle_objects_labels_status_and_audit(kube, cluster):
    svc = service(cluster)
    opened = svc.open(alerts=[alert()])
    incident_id = opened.after['id']
    assert opened.created and svc.open(alerts=[alert()]).attached
    svc.acknowledge(incident_id, reason='on it')
    svc.resolve(incident_id, resolution='restarted')
    obj = kube.get(API, 'Incident', NS, kubestore.object_name(incident_id))
    assert obj['spec']['id'] == incident_id and obj['spec']['status'] == 'resolved' and obj['spec']['revision'] == 3
    labels = obj['metadata']['labels']
    assert labels[kubestore.LABEL + 'status'] == 'resolved' and labels[kubestore.LABEL + 'type'] == 'service_outage'
    assert kubestore.fingerprint_label('a1') in labels
    assert obj['status'] == {'phase': 'resolved', 'acknowledged': True, 'escalationLevel': 0, 'handedOver': ''}
    assert [entry['operation'] for entry in svc.store.audit_entries(incident_id)] == ['open', 'acknowledge', 'resolve']
    assert svc.store.read(incident_id) == obj['spec']
    # list selects on the API server by labels
    assert [summary['id'] for summary in svc.store.list()[0]] == [incident_id]
    assert svc.store.find_resolved(['a1']) == [incident_id] and svc.store.find_open(['a1']) == []
    # a new firing of a resolved fingerprint opens the next incident of the day
    again = svc.open(alerts=[alert()])
    assert again.created and again.after['id'] == incident_id[:-4] + '0002'


def test_printer_columns_as_kubectl_get_asks(kube, cluster):
    svc = service(cluster)
    incident_id = svc.open(alerts=[alert()]).after['id']
    client = Kubernetes({'kubeconfig': kube.kubeconfig})
    try:
        table, _source = client.get_json('/apis/%s/namespaces/%s/incidents' % (API, NS),
                                         accept='application/json;as=Table;g=meta.k8s.io;v=v1')
    finally:
        client.close()
    columns = [column['name'] for column in table['columnDefinitions']]
    assert columns[:6] == ['Name', 'ID', 'Type', 'Severity', 'Status', 'Age']
    assert table['rows'][0]['cells'][1:5] == [incident_id, 'service_outage', 'critical', 'investigating']


def test_sixteen_concurrent_writers_lose_no_update(cluster):
    incident_id = service(cluster).open(alerts=[alert()]).after['id']
    errors = []

    def writer(number):
        try:
            service(cluster, actor='writer-%d' % number).update(incident_id, edits={'timeline': [
                {'phase': 'investigation', 'event': 'update', 'message': 'writer %d' % number}]})
        except Exception as exc:  # pylint: disable=broad-exception-caught
            errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    store = stores.open_store(cluster)
    record = store.read(incident_id)
    assert record['revision'] == 17
    messages = {entry['message'] for entry in record['timeline']}
    assert {'writer %d' % number for number in range(16)} <= messages
    assert [entry['revision'] for entry in store.audit_entries(incident_id)] == list(range(1, 18))


def test_concurrent_opens_of_one_alert_open_one_incident_and_ids_have_no_gaps(cluster):
    ids, errors = [], []

    def opener(fingerprint):
        try:
            ids.append(service(cluster).open(alerts=[alert(fingerprint)]).after['id'])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            errors.append(repr(exc))

    threads = [threading.Thread(target=opener, args=(fingerprint,)) for fingerprint in ['aaaa'] * 6 + ['b%d' % n for n in range(6)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    summaries, invalid = stores.open_store(cluster).list()
    assert invalid == [] and len(summaries) == 7
    assert sorted(int(summary['id'][-4:]) for summary in summaries) == list(range(1, 8))
    assert len([summary for summary in summaries if summary['fingerprints'] == ['aaaa']]) == 1
    assert len(set(ids)) == 7


def test_check_mode_writes_nothing(kube, cluster):
    service(cluster).open(alerts=[alert()])
    kube.clear_requests()
    planned = service(cluster, check_mode=True).open(alerts=[alert('cafe')])
    assert planned.changed and planned.after['id'].endswith('0002')
    assert kube.writes() == []
    assert len(stores.open_store(cluster).list()[0]) == 1


def test_audit_trail_is_bounded_and_append_only(kube, cluster, monkeypatch):
    monkeypatch.setattr(kubestore, 'AUDIT_KEEP', 6)
    monkeypatch.setattr(kubestore, 'AUDIT_CHUNK', 4)
    svc = service(cluster)
    incident_id = svc.open(alerts=[alert()]).after['id']
    for number in range(12):
        svc.update(incident_id, edits={'summary': 'change %d' % number})
    obj = kube.get(API, 'Incident', NS, kubestore.object_name(incident_id))
    assert len(obj['audit']['entries']) <= 6 and obj['audit']['overflow'] == 2
    moved = kube.get('v1', 'ConfigMap', NS, '%s-audit-0' % kubestore.object_name(incident_id))
    assert moved['immutable'] is True
    assert [entry['revision'] for entry in svc.store.audit_entries(incident_id)] == list(range(1, 14))


def test_migration_file_to_cluster_and_back_verified_by_digests(cluster, tmp_path):
    source = stores.settings('file', str(tmp_path / 'files'))
    file_service = service(source)
    first = file_service.open(alerts=[alert('e1')]).after['id']
    file_service.resolve(first, resolution='done')
    file_service.open(alerts=[alert('e2', alertname='SecurityIncidentDetected')])
    copied = stores.copy_store(stores.open_store(source), stores.open_store(cluster))
    assert len(copied['copied']) == 2 and copied['invalid'] == []
    assert stores.copy_store(stores.open_store(source), stores.open_store(cluster))['unchanged'] == copied['copied']
    back = stores.settings('file', str(tmp_path / 'back'))
    returned = stores.copy_store(stores.open_store(cluster), stores.open_store(back))
    assert returned['digests'] == copied['digests']
    # an imported id is never handed out again
    third = service(cluster).open(alerts=[alert('e3')]).after['id']
    assert third not in copied['digests']


def test_settings_are_validated_and_a_missing_incident_is_named(cluster):
    with pytest.raises(ValidationError, match='store_backend'):
        stores.settings('etcd', '/tmp/x')
    with pytest.raises(ValidationError, match='unknown key'):
        stores.settings('kubernetes', '/tmp/x', kubernetes={'token': 'x'})
    with pytest.raises(NotFoundError, match='kubernetes://incident-response'):
        stores.open_store(cluster).read('INC-20260101-0001')
