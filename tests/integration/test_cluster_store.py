# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kubernetes incident store from real ansible-playbook processes against the emulated API server.

The deploy role installs the Incident CRD and the store's Role (deploy_store_backend: kubernetes); then the incident
modules select the store with one setting (a module default, or the environment variable the deployed pods carry), two
playbook runs update one incident at the same time without losing either update, check mode writes nothing, and every
request the store made is allowed by the Role, which grants nothing the store did not use.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import kubestore
from tests.conftest import REPO_ROOT, finish, run_playbook, write_playbook
from tests.integration.test_deploy import RULES, deploy, get
from tests.fakes.endpoints import Endpoints
from tests.integration.test_rbac import expand
from tests.integration.test_response_playbooks import Responder, alert_payload, failures

pytestmark = pytest.mark.integration

NS = 'incident-response'
GROUP = 'group/slurm_exporter.incident_response.incident_response'
INCIDENT = 'slurm_exporter.incident_response.incident'
INFO = 'slurm_exporter.incident_response.incident_info'
COPY = 'slurm_exporter.incident_response.incident_store_copy'
NOTIFY = 'slurm_exporter.incident_response.incident_notify'
REPORT = 'slurm_exporter.incident_response.incident_report'


def alert(fingerprint, alertname='SlurmExporterDown', status='firing'):
    return {'fingerprint': fingerprint, 'status': status, 'labels': {'alertname': alertname},
            'annotations': {'summary': 'exporter down'}, 'startsAt': '2026-01-31T11:58:00Z'}


@pytest.fixture
def deployed(kube):
    run = deploy(kube, deploy_store_backend='kubernetes', deploy_wait=False)
    assert run.rc == 0, run
    kube.clear_requests()
    return kube


def store_env(kube):
    return {'INCIDENT_RESPONSE_STORE_BACKEND': 'kubernetes', 'INCIDENT_RESPONSE_STORE_NAMESPACE': NS,
            'K8S_AUTH_KUBECONFIG': kube.kubeconfig}


def store_usage(kube):
    """``(group, resource, verb)`` of every request the store made in its namespace."""
    used = set()
    for request in kube.requests:
        if request['resource'] is None or request['namespace'] != NS:
            continue
        group = '' if request['path'].startswith('/api/') else request['path'].split('/')[2]
        resource = request['resource'] + ('/' + request['subresource'] if request['subresource'] else '')
        used.add((group, resource, request['verb']))
    return used


def check_deployed(deployed):
    """The deploy role installed the CRD, the store's Role and binding, and the setting in the launcher and the pods."""
    crd = deployed.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', None, kubestore.CRD_NAME)
    assert crd is not None and any(c['type'] == 'Established' and c['status'] == 'True' for c in crd['status']['conditions'])
    role = get(deployed, 'rbac.authorization.k8s.io/v1', 'Role', 'incident-response-store')
    assert role['rules'] == RULES['_deploy_store_rules']
    binding = get(deployed, 'rbac.authorization.k8s.io/v1', 'RoleBinding', 'incident-response-store')
    assert binding['subjects'] == [{'kind': 'ServiceAccount', 'name': 'incident-response', 'namespace': NS}]
    launcher = get(deployed, 'v1', 'ConfigMap', 'incident-response')['data']['launcher.yml']
    assert 'backend: kubernetes' in launcher
    container = get(deployed, 'apps/v1', 'Deployment', 'incident-webhook')['spec']['template']['spec']['containers'][0]
    env = {item['name']: item.get('value') for item in container['env']}
    assert env['INCIDENT_RESPONSE_STORE_BACKEND'] == 'kubernetes' and env['INCIDENT_RESPONSE_STORE_NAMESPACE'] == NS


def test_deployed_store_shared_by_playbooks_with_exactly_the_role_s_permissions(deployed, tmp_path):
    check_deployed(deployed)
    deployed.clear_requests()
    payload = tmp_path / 'alert.json'
    payload.write_text(json.dumps({'alerts': [alert('a1b2c3')]}))
    play_vars = {'payload': "{{ lookup('ansible.builtin.file', alert_file) | ansible.builtin.from_json }}"}
    defaults = {GROUP: {'store': str(tmp_path / 'local'), 'store_backend': 'kubernetes', 'store_namespace': NS,
                        'store_kubernetes': {'kubeconfig': deployed.kubeconfig}}}
    opened = run_playbook(write_playbook(tmp_path, [
        {'name': 'open', INCIDENT: {'alerts': '{{ payload.alerts }}'}, 'register': 'opened'},
        {'name': 'attach', INCIDENT: {'alerts': '{{ payload.alerts }}'}},
        {'name': 'another', INCIDENT: {'alerts': [alert('d00d', 'SecurityIncidentDetected')]}, 'register': 'another'},
    ], play_vars=play_vars, module_defaults=defaults, name='open.yml'), extra_vars={'alert_file': str(payload)})
    assert opened.rc == 0, opened
    incident_id = opened.result('open')['id']
    assert opened.result('open')['created'] and opened.result('attach')['attached']
    assert opened.result('another')['id'] == incident_id[:-4] + '0002'
    assert not (tmp_path / 'local' / ('incident-%s.json' % incident_id)).exists()

    # Two playbook runs change the same incident at the same time (the store selected by the environment only).
    def update(name, tasks):
        return run_playbook(write_playbook(tmp_path, tasks, name=name), env=store_env(deployed), popen=True)

    runs = [update('ack.yml', [{'name': 'ack', INCIDENT: {'state': 'acknowledge', 'id': incident_id, 'actor': 'alice'}}]),
            update('escalate.yml', [{'name': 'escalate', INCIDENT: {'state': 'escalate', 'id': incident_id, 'reason': 'no answer'}}]),
            update('identify.yml', [{'name': 'identify', INCIDENT: {'state': 'update', 'id': incident_id, 'status': 'identified'}}])]
    for run in runs:
        finished = finish(run)
        assert finished.rc == 0, finished

    # Check mode plans, and writes nothing.
    writes_before = len(deployed.writes())
    planned = run_playbook(write_playbook(tmp_path, [
        {'name': 'resolve', INCIDENT: {'state': 'resolve', 'id': incident_id, 'resolution': 'restarted'}},
    ], name='resolve.yml'), check=True, env=store_env(deployed))
    assert planned.rc == 0, planned
    assert planned.result('resolve')['changed'] and planned.result('resolve')['incident']['status'] == 'resolved'
    assert len(deployed.writes()) == writes_before

    info = run_playbook(write_playbook(tmp_path, [{'name': 'get', INFO: {'id': incident_id}},
                                                  {'name': 'list', INFO: {'status': ['identified']}}], name='info.yml'),
                        env=store_env(deployed))
    assert info.rc == 0, info
    record = info.result('get')['incident']
    # No lost update: each of the concurrent runs' changes is in the record.
    assert record['acknowledged_by'] == 'alice' and record['escalation_level'] == 1 and record['status'] == 'identified'
    assert record['revision'] == 4
    assert [summary['id'] for summary in info.result('list')['incidents']] == [incident_id]
    obj = deployed.get(kubestore.API_VERSION, 'Incident', NS, kubestore.object_name(incident_id))
    assert obj['status']['phase'] == 'identified' and obj['status']['escalationLevel'] == 1

    # Exactly the Role's permissions: every request allowed, every permission used.
    assert store_usage(deployed) == expand(RULES['_deploy_store_rules'])


def test_a_clear_error_without_the_crd(kube, tmp_path):
    run = run_playbook(write_playbook(tmp_path, [{'name': 'list', INFO: {}}]), env=store_env(kube))
    assert run.rc != 0
    message = run.result('list')['msg']
    assert 'kubernetes://incident-response' in message and 'incidents.crd.yaml' in message, message


def install_crd(kube):
    with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'), encoding='utf-8') as handle:
        kube.create(yaml.safe_load(handle))
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})


def test_notify_and_report_read_and_record_through_the_cluster_store(kube, tmp_path):
    install_crd(kube)
    local = str(tmp_path / 'local')
    run = run_playbook(write_playbook(tmp_path, [
        {'name': 'open', INCIDENT: {'store': local, 'alerts': [alert('f00d')]}, 'register': 'incident'},
        {'name': 'notify', NOTIFY: {'store': local, 'id': '{{ incident.id }}'}},
        {'name': 'resolve', INCIDENT: {'store': local, 'state': 'resolve', 'id': '{{ incident.id }}', 'resolution': 'restarted'}},
        {'name': 'report', REPORT: {'store': local, 'id': '{{ incident.id }}'}},
    ], name='notify.yml'), env=store_env(kube))
    assert run.rc == 0, run
    incident_id = run.result('open')['id']
    record = kube.get(kubestore.API_VERSION, 'Incident', NS, kubestore.object_name(incident_id))['spec']
    assert [item['channel'] for item in record['notifications']] == ['outbox']
    assert os.path.exists(run.result('report')['markdown']) and run.result('report')['markdown'].startswith(local)
    assert not os.path.exists(os.path.join(local, 'incident-%s.json' % incident_id))


def test_migration_file_store_to_cluster_and_back(kube, tmp_path):
    install_crd(kube)
    files, back = str(tmp_path / 'files'), str(tmp_path / 'back')
    seeded = run_playbook(write_playbook(tmp_path, [
        {'name': 'open', INCIDENT: {'store': files, 'alerts': [alert('e1')]}, 'register': 'first'},
        {'name': 'resolve', INCIDENT: {'store': files, 'state': 'resolve', 'id': '{{ first.id }}', 'resolution': 'restarted'}},
        {'name': 'other', INCIDENT: {'store': files, 'alerts': [alert('e2', 'SecurityIncidentDetected')]}},
    ], name='seed.yml'))
    assert seeded.rc == 0, seeded
    to_cluster = {COPY: {'store': files, 'destination': {'backend': 'kubernetes', 'namespace': NS, 'kubeconfig': kube.kubeconfig}},
                  'name': 'copy'}
    kube.clear_requests()
    planned = run_playbook(write_playbook(tmp_path, [to_cluster], name='plan.yml'), check=True)
    assert planned.rc == 0, planned
    assert planned.result('copy')['changed'] and len(planned.result('copy')['copied']) == 2 and kube.writes() == []
    copied = run_playbook(write_playbook(tmp_path, [to_cluster, dict(to_cluster, name='again')], name='copy.yml'))
    assert copied.rc == 0, copied
    digests = copied.result('copy')['digests']
    assert sorted(copied.result('copy')['copied']) == sorted(digests) and len(digests) == 2
    assert not copied.result('again')['changed'] and sorted(copied.result('again')['unchanged']) == sorted(digests)
    assert sorted(obj['spec']['id'] for obj in kube.list(kubestore.API_VERSION, 'Incident', NS)) == sorted(digests)
    returned = run_playbook(write_playbook(tmp_path, [
        {'name': 'back', COPY: {'store': back, 'store_backend': 'kubernetes', 'store_namespace': NS,
                                'store_kubernetes': {'kubeconfig': kube.kubeconfig}, 'destination': {'backend': 'file'}}},
        {'name': 'same', COPY: {'store': files, 'destination': {'backend': 'file', 'store': files}}, 'ignore_errors': True},
    ], name='back.yml'))
    assert returned.result('back')['digests'] == digests and sorted(returned.result('back')['copied']) == sorted(digests)
    assert 'the same store as the source' in returned.result('same')['msg']


def test_a_response_playbook_end_to_end_on_the_cluster_store(kube, tmp_path):
    """service_outage.yml (open and claim the run, the workload's Lease, restart, verify, resolve, notify, report) with the
    store selected by the environment, as the deployed launcher's runs and AWX jobs select it."""
    install_crd(kube)
    endpoints = Endpoints()
    try:
        endpoints.series['up{job="slurm-exporter"}'] = [({'job': 'slurm-exporter', 'instance': 'a'}, 1)]
        responder = Responder(kube, tmp_path)
        run = responder.run('service_outage', alert_payload('service_outage', 'e1b2c3d4e5f6c001'), env=store_env(kube),
                            extra={'incident_exporter_health_url': endpoints.url + '/health', 'incident_prometheus_url': endpoints.url})
    finally:
        endpoints.stop()
    assert run.rc == 0, '\n'.join(failures(run)) or run
    assert responder.records() == [], 'a record was written to the file store'
    (obj,) = kube.list(kubestore.API_VERSION, 'Incident', NS)
    record = obj['spec']
    assert record['status'] == 'resolved' and obj['status']['phase'] == 'resolved'
    assert [item['outcome'] for item in record['runs']] == ['completed']
    assert {(action['name'], action['result']) for action in record['actions']} >= {('verify_health', 'success')}
    assert any(item['template'] == 'resolution' for item in record['notifications'])
    assert os.path.isdir(os.path.join(responder.store, 'reports'))
