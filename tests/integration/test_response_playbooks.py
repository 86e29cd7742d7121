# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The response playbooks, run for real (ansible-playbook) against the emulated cluster seeded with slurm-exporter.

Every test asserts through the API (the emulator's objects and request log) and through the incident record.
Guardrails: check mode sends no write request; a second run with the same payload changes nothing; an alert
labelled with another namespace changes nothing outside the configured one; a failing step is recorded, notified
and leaves the incident open.
"""

from __future__ import annotations

import base64
import datetime
import glob
import json
import os
import shutil
import hashlib
import stat
import tarfile
import time

import pytest
import requests

from tests.conftest import REPO_ROOT, run_playbook, snapshot, write_playbook
from tests.fakes.endpoints import Endpoints
from tests.fakes.slurm import FakeSlurm

NS = 'slurm-exporter'
INCIDENT = 'slurm_exporter.incident_response.incident'
UPSTREAM_IMAGE = 'ghcr.io/jontk/slurm-exporter:v1.0.0'
FIXTURES = os.path.join(REPO_ROOT, 'tests', 'fixtures', 'slurm-exporter', 'kubernetes-ha')


def now_ts(offset=0.0):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def alert_payload(incident_type, fingerprint, labels=None, status='firing', starts_at=None):
    alert_labels = {'alertname': 'Test%s' % incident_type.title().replace('_', ''), 'incident_type': incident_type,
                    'component': 'incident-response', 'job': 'slurm-exporter',
                    # Alerts may name any namespace: the response acts on the configured one only.
                    'namespace': 'kube-system'}
    alert_labels.update(labels or {})
    return {
        'version': '4', 'status': status, 'receiver': 'incident-response', 'groupLabels': {}, 'commonLabels': alert_labels,
        'commonAnnotations': {}, 'externalURL': 'http://127.0.0.1:9093', 'groupKey': '{}:{}', 'truncatedAlerts': 0,
        'alerts': [{'status': status, 'labels': alert_labels, 'annotations': {'summary': '%s test' % incident_type},
                    'startsAt': starts_at or now_ts(), 'endsAt': now_ts() if status == 'resolved' else '0001-01-01T00:00:00Z',
                    'generatorURL': 'http://127.0.0.1:9090/graph', 'fingerprint': fingerprint}],
    }


class Responder:
    """Runs one playbook against one emulator and one store."""

    def __init__(self, kube, tmp_path):
        self.kube = kube
        self.tmp = tmp_path
        self.store = str(tmp_path / 'store')
        self.inventory = None
        self.count = 0

    def api(self, method, path, body=None, content_type='application/merge-patch+json'):
        headers = {'Authorization': 'Bearer %s' % self.kube.token}
        if body is not None:
            headers['Content-Type'] = content_type
        response = requests.request(method, self.kube.url + path, headers=headers, data=json.dumps(body) if body is not None else None,
                                    timeout=10)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    def deployment(self):
        return self.kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')

    def run(self, playbook, payload=None, check=False, extra=None, env=None):
        self.count += 1
        variables = {'incident_store': self.store, 'incident_wait_timeout': 20, 'incident_actor': 'pytest'}
        if payload is not None:
            path = str(self.tmp / ('alert-%d.json' % self.count))
            with open(path, 'w', encoding='utf-8') as handle:
                json.dump(payload, handle)
            variables['alert_file'] = path
        variables.update(extra or {})
        environment = {'K8S_AUTH_KUBECONFIG': self.kube.kubeconfig}
        environment.update(env or {})
        return run_playbook(os.path.join(REPO_ROOT, 'playbooks', playbook + '.yml'), variables, check=check,
                            env=environment, inventory=self.inventory or os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'), timeout=600)

    def records(self):
        found = []
        for path in sorted(glob.glob(os.path.join(self.store, 'incident-*.json'))):
            with open(path, encoding='utf-8') as handle:
                found.append(json.load(handle))
        return found

    def record(self):
        records = self.records()
        assert len(records) == 1, [r['id'] for r in records]
        return records[0]

    def outbox(self):
        path = os.path.join(self.store, 'outbox', 'notifications.jsonl')
        if not os.path.exists(path):
            return []
        with open(path, encoding='utf-8') as handle:
            return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
def responder(kube, tmp_path):
    return Responder(kube, tmp_path)


@pytest.fixture
def endpoints():
    server = Endpoints()
    yield server
    server.stop()


def actions(record):
    return {(action['name'], action['phase']): action for action in record['actions']}


def assert_scoped(kube):
    """Every write request went to the configured namespace."""
    writes = kube.writes()
    outside = [(w['method'], w['path']) for w in writes if '/namespaces/%s/' % NS not in w['path']]
    assert not outside, outside
    return writes


def failures(run):
    """The failed tasks of a run: name and message."""
    found = []
    for play in run.json.get('plays', []):
        for task in play.get('tasks', []):
            for result in task['hosts'].values():
                if result.get('failed') and not result.get('ignore_errors'):
                    found.append('%s: %s' % (task['task']['name'], result.get('msg')))
    return found


def assert_succeeded(run):
    assert run.rc == 0, '\n'.join(failures(run)) or run


def write_paths(kube):
    return [(w['method'], w['path']) for w in kube.writes()]


# -- security_breach --------------------------------------------------------------------------------------
def slurm_inventory(tmp_path, slurm, controllers=('slurmctld-1',), slurmdbd=()):
    """An inventory whose slurm_controllers (and slurmdbd) groups hold local hosts that run the fake SLURM's scontrol."""
    return slurm.inventory(tmp_path / 'hosts.yml', controllers, slurmdbd)


@pytest.fixture
def slurm(tmp_path):
    """A fake SLURM cluster (slurmctld, slurmdbd, scontrol, slurmrestd on loopback) with a token that leaked."""
    cluster = FakeSlurm(tmp_path / 'slurm')
    cluster.start_slurmrestd()
    cluster.leaked = cluster.issue('slurm-exporter')
    yield cluster
    cluster.stop()


def restd(slurm, path, token):
    """slurmrestd's answer to a request carrying ``token``."""
    return requests.get(slurm.url + path, headers={'X-SLURM-USER-NAME': 'slurm-exporter', 'X-SLURM-USER-TOKEN': token},
                        timeout=10).status_code


def secret_token(kube):
    return base64.b64decode(kube.get('v1', 'Secret', NS, 'slurm-credentials')['data']['jwt-token']).decode()


def plant_token(responder, token):
    responder.api('PATCH', '/api/v1/namespaces/%s/secrets/slurm-credentials' % getattr(responder, 'namespace', NS),
                  {'data': {'jwt-token': base64.b64encode(token.encode()).decode()}})


def assert_nowhere(run, store, *secrets):
    """None of ``secrets`` (str or bytes) in the run's output or any file of the store, evidence archives included."""
    needles = [value.encode() if isinstance(value, str) else value for value in secrets]
    blobs = {'stdout': run.stdout.encode(), 'stderr': run.stderr.encode()}
    for path in glob.glob(os.path.join(store, '**', '*'), recursive=True):
        if os.path.isfile(path):
            with open(path, 'rb') as handle:
                blobs[path] = handle.read()
            if path.endswith('.tar.gz'):
                with tarfile.open(path) as archive:
                    for member in archive.getmembers():
                        if member.isfile():
                            blobs[path + ':' + member.name] = archive.extractfile(member).read()
    for name, blob in blobs.items():
        for needle in needles:
            assert needle not in blob, name
            assert base64.b64encode(needle) not in blob, name


def tamper_deployment(responder):
    """The attacker's change, after the alert started: a new image and a sidecar (revision 2)."""
    time.sleep(2.1)  # the ReplicaSet of revision 2 must be younger than the alert (API times have 1 s resolution)
    responder.api('PATCH', '/apis/apps/v1/namespaces/%s/deployments/slurm-exporter' % getattr(responder, 'namespace', NS), [
        {'op': 'replace', 'path': '/spec/template/spec/containers/0/image', 'value': 'evil.example/miner:latest'},
        {'op': 'add', 'path': '/spec/template/spec/containers/-', 'value': {'name': 'backdoor', 'image': 'evil.example/shell:1'}},
    ], content_type='application/json-patch+json')
    # A real Deployment controller sets the revision moments after the patch (tests/realkube); the emulator at once.
    deadline = time.monotonic() + 60
    while responder.deployment()['metadata']['annotations']['deployment.kubernetes.io/revision'] != '2':
        assert time.monotonic() < deadline, 'the tampered Deployment never got revision 2'
        time.sleep(0.2)


def test_security_breach_end_to_end(responder, kube, tmp_path, slurm):
    """The whole breach response, with two controllers sharing a StateSaveLocation and a slurmdbd host: the leaked
    token stops working at slurmctld and slurmdbd, the exporter gets a token that works, the old key is kept."""
    responder.inventory = slurm_inventory(tmp_path, slurm, controllers=('slurmctld-1', 'slurmctld-2'), slurmdbd=('slurmdbd-1',))
    plant_token(responder, slurm.leaked)
    assert restd(slurm, '/slurm/v0.0.40/ping', slurm.leaked) == 200 and restd(slurm, '/slurmdb/v0.0.40/config', slurm.leaked) == 200
    payload = alert_payload('security_breach', 'a1b2c3d4e5f60001', starts_at=now_ts())
    tamper_deployment(responder)
    kube.clear_requests()

    run = responder.run('security_breach', payload)
    assert_succeeded(run)

    # The cluster: known-good template back (image and no sidecar), 3 replicas available, isolation lifted.
    deployment = responder.deployment()
    containers = deployment['spec']['template']['spec']['containers']
    assert [c['name'] for c in containers] == ['slurm-exporter'] and containers[0]['image'] == UPSTREAM_IMAGE
    assert deployment['spec']['replicas'] == 3 and deployment['status']['availableReplicas'] == 3
    assert kube.get('networking.k8s.io/v1', 'NetworkPolicy', NS, 'incident-isolation') is None
    tls = kube.get('v1', 'Secret', NS, 'slurm-exporter-tls')
    assert base64.b64decode(tls['data']['tls.crt']).startswith(b'-----BEGIN CERTIFICATE-----')
    assert b'PRIVATE KEY' in base64.b64decode(tls['data']['tls.key'])

    # SLURM: the leaked token is rejected by slurmctld and slurmdbd, the Secret's new token is accepted by both.
    token = secret_token(kube)
    assert token != slurm.leaked
    for path in ('/slurm/v0.0.40/ping', '/slurmdb/v0.0.40/config'):
        assert restd(slurm, path, slurm.leaked) == 401, path
        assert restd(slurm, path, token) == 200, path
    assert slurm.verify(token) == (True, 'slurm-exporter')
    assert slurm.calls() == ['scontrol show config', 'slurmdbd-restart', 'scontrol reconfigure', 'scontrol token username lifespan']
    # The new key, with SLURM's ownership and mode, on the controllers' shared path and slurmdbd's; the old one kept.
    record = responder.record()
    with open(slurm.key_path, 'rb') as handle:
        key = handle.read()
    assert len(key) >= 32 and key != slurm.initial_key and slurm.loaded_key('slurmdbd') == key == slurm.loaded_key()
    for path in (slurm.key_path, slurm.slurmdbd_key_path):
        info = os.stat(path)
        assert stat.S_IMODE(info.st_mode) == 0o400 and info.st_uid == os.getuid(), path
        backup = '%s.%s.previous' % (path, record['id'])
        assert stat.S_IMODE(os.stat(backup).st_mode) == 0o400, backup
        with open(backup, 'rb') as handle:
            assert handle.read() == slurm.initial_key, backup

    # The order of the writes: isolate first, scale to 0 only after evidence, isolation lifted last; every write of the
    # workload happened while this incident held the workload's Lease.
    writes = assert_scoped(kube)
    paths = [(w['method'], w['path']) for w in writes]
    isolate = paths.index(('POST', '/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies' % NS))
    scale = paths.index(('PUT', '/apis/apps/v1/namespaces/%s/deployments/slurm-exporter' % NS))
    lift = paths.index(('DELETE', '/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/incident-isolation' % NS))
    assert isolate < scale < lift == max(i for i, (verb, path) in enumerate(paths) if 'networkpolicies' in path)
    lease_writes = [i for i, (verb, path) in enumerate(paths) if '/leases' in path]
    assert lease_writes and lease_writes[0] < isolate and lease_writes[-1] > lift

    # The record: every action succeeded, in plan order, evidence registered; a P1 security breach is not resolved by
    # automation: it stops at monitoring for a person.
    assert record['status'] == 'monitoring' and record['type'] == 'security_breach' and record['resolved_at'] is None
    assert [a['name'] for a in record['actions']] == [
        'isolate_pods', 'capture_evidence', 'scale_down', 'rotate_credentials', 'rotate_tls', 'restore_known_good',
        'scale_restore', 'wait_available', 'lift_isolation']
    assert all(a['result'] == 'success' for a in record['actions'])
    done = actions(record)
    assert done[('scale_down', 'containment')]['details']['previous_replicas'] in (3, '3')
    assert done[('restore_known_good', 'eradication')]['details']['revision'] in (1, '1')
    rotation = done[('rotate_credentials', 'eradication')]
    details = rotation['details']
    assert rotation['changed'] is True and details['source'] == 'scontrol token on slurmctld-1'
    assert details['key_path'] == slurm.key_path and details['key_path_source'] == 'AuthAltParameters jwt_key'
    assert details['key_sha256_prefix'] == hashlib.sha256(key).hexdigest()[:12]
    assert details['backup_path'] == slurm.key_path + '.%s.previous' % record['id']
    assert [(h['host'], h['path'], h['daemons']) for h in details['hosts']] == [
        ('slurmctld-1', slurm.key_path, ['slurmctld']), ('slurmctld-2', slurm.key_path, ['slurmctld']),
        ('slurmdbd-1', slurm.slurmdbd_key_path, ['slurmdbd'])]
    # slurmctld-2 shares slurmctld-1's StateSaveLocation: the key (and its backup) were already in place there.
    assert details['key_installed_on'] == ['slurmctld-1', 'slurmdbd-1'] == details['key_backed_up_on']
    assert details['slurmdbd_restarted'] == ['slurmdbd-1'] and details['reconfigure']['rc'] in (0, '0')
    assert 'the leaked token no longer validates' in json.dumps(record['timeline'])
    assert len(record['evidence']) == 1 and os.path.isdir(record['evidence'][0]['path'])
    assert [n['template'] for n in responder.outbox()] == ['initial', 'status_update']
    assert 'resolved by a person' in json.dumps(responder.outbox()[-1])
    assert record['reports'] and all(os.path.exists(r['path']) for r in record['reports'])
    assert [run['outcome'] for run in record['runs']] == ['completed']
    # No secret value anywhere: not the keys, not the tokens, in the output, the record, the outbox or the evidence.
    assert_nowhere(run, responder.store, token, slurm.leaked, key, slurm.initial_key)

    # A second run with the same payload (Alertmanager resends, a replayed job): nothing changes, SLURM untouched.
    kube.clear_requests()
    slurm.reset_calls()
    before = responder.records()
    again = responder.run('security_breach', payload)
    assert_succeeded(again)
    assert kube.writes() == [] and slurm.calls() == []
    assert responder.records() == before

    # A person acknowledges and resolves it with the incident module; the report's SLA line says what happened.
    person = write_playbook(tmp_path, [
        {'name': 'acknowledge', INCIDENT: {'state': 'acknowledge', 'id': record['id'], 'actor': 'alice', 'store': responder.store}},
        {'name': 'resolve', INCIDENT: {'state': 'resolve', 'id': record['id'], 'actor': 'alice', 'store': responder.store,
                                       'resolution': 'Reviewed: token rotated, known-good image back', 'root_cause': 'leaked JWT'}},
        {'name': 'report', 'slurm_exporter.incident_response.incident_report': {'id': record['id'], 'store': responder.store}},
    ], play_vars={'ansible_python_interpreter': '{{ ansible_playbook_python }}'}, name='person.yml')
    assert_succeeded(run_playbook(person))
    record = responder.record()
    assert record['status'] == 'resolved' and record['acknowledged_by'] == 'alice'
    with open(next(r['path'] for r in record['reports'] if r['path'].endswith('.md')), encoding='utf-8') as handle:
        report = handle.read()
    assert 'Response SLA' in report and '**met**' in report and 'never acknowledged' not in report


def test_security_breach_check_mode_writes_nothing(responder, kube, tmp_path, slurm):
    """No write request, nothing in the store, and on the SLURM controllers: no command, the key files unchanged."""
    responder.inventory = slurm_inventory(tmp_path, slurm, slurmdbd=('slurmdbd-1',))
    plant_token(responder, slurm.leaked)
    files = snapshot(slurm.root)
    kube.clear_requests()
    run = responder.run('security_breach', alert_payload('security_breach', 'a1b2c3d4e5f60002'), check=True)
    assert_succeeded(run)
    assert kube.writes() == [] and not os.path.exists(responder.store)
    assert responder.deployment()['spec']['replicas'] == 3
    assert slurm.calls() == [] and snapshot(slurm.root) == files
    assert secret_token(kube) == slurm.leaked and restd(slurm, '/slurm/v0.0.40/ping', slurm.leaked) == 200
    assert 'Dry run: would rotate the JWT signing key on slurmctld-1 and slurmdbd on slurmdbd-1' in run.stdout


def test_security_breach_failure_is_recorded_and_notified(responder, kube):
    """The TLS secret cannot be written (the API answers 500): the failure is recorded, notified, and the incident stays
    open and isolated for a person to pick up."""
    kube.add_fault('PUT', r'/secrets/slurm-exporter-tls', status=500, times=100)
    kube.add_fault('PATCH', r'/secrets/slurm-exporter-tls', status=500, times=100)
    kube.add_fault('POST', r'/namespaces/slurm-exporter/secrets$', status=500, times=100)
    run = responder.run('security_breach', alert_payload('security_breach', 'a1b2c3d4e5f60003'))
    assert run.rc != 0
    record = responder.record()
    assert record['status'] != 'resolved'
    done = actions(record)
    assert done[('rotate_tls', 'eradication')]['result'] == 'failed'
    assert ('restore_known_good', 'eradication') not in done
    assert kube.get('networking.k8s.io/v1', 'NetworkPolicy', NS, 'incident-isolation') is not None
    assert any('rotate_tls failed' in entry['message'] for entry in record['timeline'])
    updates = [n for n in responder.outbox() if n['template'] == 'status_update']
    assert updates and 'rotate_tls' in json.dumps(updates[-1])
    assert_scoped(kube)


# -- vulnerability_exploit, malware_detection, compliance_violation ----------------------------------------
def test_vulnerability_exploit_restores_the_revision_before_the_exploit(responder, kube):
    """No SLURM controller in the inventory (the local one): the credential rotation needs a person, nothing is invented."""
    payload = alert_payload('vulnerability_exploit', 'b1b2c3d4e5f60001', starts_at=now_ts())
    tamper_deployment(responder)
    secret = kube.get('v1', 'Secret', NS, 'slurm-credentials')
    kube.clear_requests()
    run = responder.run('vulnerability_exploit', payload)
    assert_succeeded(run)
    containers = responder.deployment()['spec']['template']['spec']['containers']
    assert [c['image'] for c in containers] == [UPSTREAM_IMAGE]
    record = responder.record()
    assert [a['name'] for a in record['actions']] == ['isolate_pods', 'capture_evidence', 'check_image_digests', 'restore_known_good',
                                                      'rotate_credentials', 'wait_available', 'lift_isolation']
    rotation = actions(record)[('rotate_credentials', 'eradication')]
    assert rotation['result'] == 'needs_person' and rotation['changed'] is False
    assert all(a['result'] == 'success' for a in record['actions'] if a['name'] != 'rotate_credentials')
    # The Secret is untouched: not written, same data, no rotated-by annotation.
    assert [w for w in kube.writes() if w['resource'] == 'secrets' and w['name'] == 'slurm-credentials'] == []
    after = kube.get('v1', 'Secret', NS, 'slurm-credentials')
    assert after['data'] == secret['data'] and 'incident-response/rotated-by' not in after['metadata'].get('annotations', {})
    # The exact steps for the person, in the record and in the timeline's words.
    details = rotation['details']
    assert details['key_path'] == '/var/spool/slurm/statesave/jwt_hs256.key' and details['key_path_known'] in (False, 'False')
    steps = '\n'.join(details['steps'])
    for command in ('install -m 0400 -o slurm -g slurm /var/spool/slurm/statesave/jwt_hs256.key '
                    '/var/spool/slurm/statesave/jwt_hs256.key.%s.previous' % record['id'],
                    'dd if=/dev/random of=/var/spool/slurm/statesave/jwt_hs256.key.new bs=32 count=1', 'scontrol reconfigure',
                    'scontrol token username=slurm-exporter lifespan=86400',
                    'kubectl -n slurm-exporter patch secret slurm-credentials --type merge --patch-file /dev/stdin'):
        assert command in steps, command
    summary = [e['message'] for e in record['timeline'] if 'rotate' in e['message'] or 'JWT' in e['message']]
    assert any('The leaked SLURM JWT is still valid' in message for message in summary), summary
    # The incident waits for that person: not monitoring, not resolved; the status update lists the steps.
    assert record['status'] not in ('monitoring', 'resolved')
    update = [n for n in responder.outbox() if n['template'] == 'status_update'][-1]
    assert 'rotate_credentials needs person' in json.dumps(update) and 'scontrol reconfigure' in json.dumps(update)
    assert_scoped(kube)


def test_malware_deletes_only_the_named_pod_of_the_workload_after_capture(responder, kube):
    pods = [p['metadata']['name'] for p in kube.list('v1', 'Pod', NS, 'app=slurm-exporter')]
    infected = pods[0]
    payload = alert_payload('malware_detection', 'c1b2c3d4e5f60001', labels={'pod': infected})
    kube.clear_requests()
    run = responder.run('malware_detection', payload)
    assert_succeeded(run)
    remaining = [p['metadata']['name'] for p in kube.list('v1', 'Pod', NS, 'app=slurm-exporter')]
    assert infected not in remaining and set(pods[1:]) <= set(remaining)
    deletes = [w['path'] for w in kube.writes() if w['method'] == 'DELETE' and '/pods/' in w['path']]
    assert deletes == ['/api/v1/namespaces/%s/pods/%s' % (NS, infected)]
    record = responder.record()
    names = [a['name'] for a in record['actions']]
    assert names.index('capture_evidence') < names.index('delete_infected_pods')
    findings = actions(record)[('check_image_digests', 'investigation')]['details']['findings']
    assert any('not pinned' in f['finding'] for f in findings)
    assert_scoped(kube)


def test_malware_never_deletes_a_pod_outside_the_workload(responder, kube):
    """A pod label naming another namespace's pod, or a path, deletes nothing."""
    payload = alert_payload('malware_detection', 'c1b2c3d4e5f60002', labels={'pod': '../../kube-system/pods/coredns'})
    kube.clear_requests()
    assert_succeeded(responder.run('malware_detection', payload))
    assert [w for w in kube.writes() if w['method'] == 'DELETE' and '/pods/' in w['path']] == []
    assert_scoped(kube)


def test_compliance_violation_changes_nothing_and_stays_open(responder, kube):
    kube.clear_requests()
    assert_succeeded(responder.run('compliance_violation', alert_payload('compliance_violation', 'd1b2c3d4e5f60001')))
    assert kube.writes() == []
    record = responder.record()
    assert record['status'] != 'resolved'
    findings = actions(record)[('audit_security_context', 'investigation')]['details']['findings']
    assert isinstance(findings, list)
    assert [n['template'] for n in responder.outbox()] == ['initial', 'status_update']


# -- operational ------------------------------------------------------------------------------------------
def test_service_outage_restarts_and_verifies_health(responder, kube, endpoints):
    endpoints.series['up{job="slurm-exporter"}'] = [({'job': 'slurm-exporter', 'instance': 'a'}, 1), ({'job': 'slurm-exporter', 'instance': 'b'}, 1)]
    kube.clear_requests()
    run = responder.run('service_outage', alert_payload('service_outage', 'e1b2c3d4e5f60001'),
                        extra={'incident_exporter_health_url': endpoints.url + '/health', 'incident_prometheus_url': endpoints.url})
    assert_succeeded(run)
    template = responder.deployment()['spec']['template']
    assert template['metadata']['annotations']['kubectl.kubernetes.io/restartedAt'].startswith('INC-')
    record = responder.record()
    done = actions(record)
    assert done[('rollback_if_unavailable', 'recovery')]['details']['rolled_back'] in (False, 'False')
    assert done[('verify_health', 'recovery')]['result'] == 'success'
    assert endpoints.received('/health') and endpoints.received('/api/v1/query')
    assert record['status'] == 'resolved'
    assert_scoped(kube)


def test_service_outage_rolls_back_and_hands_over_when_still_unavailable(responder, kube):
    kube.set_unhealthy(NS, 'slurm-exporter')
    kube.clear_requests()
    run = responder.run('service_outage', alert_payload('service_outage', 'e1b2c3d4e5f60002'), extra={'incident_wait_timeout': 3})
    assert run.rc != 0
    record = responder.record()
    assert record['status'] != 'resolved'
    assert actions(record)[('rollback_if_unavailable', 'recovery')]['result'] == 'failed'
    # The restart and the rollback were attempted (each an update of the deployment under the Lease).
    updates = [w for w in kube.writes() if w['method'] == 'PUT' and w['path'].endswith('/deployments/slurm-exporter')]
    assert len(updates) >= 2
    assert any(n['template'] == 'status_update' for n in responder.outbox())
    assert_scoped(kube)
    # Failed stays failed: the alert clearing does not resolve it (nor move it to monitoring); it waits for a person.
    resolved = alert_payload('service_outage', 'e1b2c3d4e5f60002', status='resolved', starts_at=record['alerts'][0]['startsAt'])
    assert_succeeded(responder.run('service_outage', resolved))
    record = responder.record()
    assert record['status'] == 'investigating' and record['alerts'][0]['status'] == 'resolved'
    assert record['runs'][-1]['outcome'] == 'failed' and len(record['runs']) == 1


def test_operational_guardrail_refuses_a_restart_below_the_minimum(responder, kube):
    kube.clear_requests()
    run = responder.run('service_outage', alert_payload('service_outage', 'e1b2c3d4e5f60003'),
                        extra={'incident_min_available_replicas': 3})
    assert run.rc != 0
    assert 'below the minimum of 3' in run.stdout
    assert [w for w in kube.writes() if '/deployments/' in w['path']] == []


def test_performance_degradation_raises_limits_within_ceilings(responder, kube):
    kube.clear_requests()
    run = responder.run('performance_degradation', alert_payload('performance_degradation', 'f1b2c3d4e5f60001'),
                        extra={'incident_resource_ceilings': {'cpu': '600m', 'memory': '2Gi'}})
    assert_succeeded(run)
    container = responder.deployment()['spec']['template']['spec']['containers'][0]
    assert container['resources']['limits']['cpu'] == '600m'      # 500m x 1.5 = 750m, capped at 600m
    assert container['resources']['limits']['memory'] == '768Mi'  # 512Mi x 1.5
    details = actions(responder.record())[('raise_limits', 'recovery')]['details']
    assert details['at_ceiling'] == ['cpu']
    assert_scoped(kube)


def expiring_jwt(exp):
    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b'=').decode()
    return '%s.%s.c2ln' % (b64({'alg': 'HS256'}), b64({'exp': exp, 'sun': 'slurm-exporter'}))


@pytest.mark.parametrize('expired', [True, False])
def test_api_failure_rotates_only_an_expired_token(responder, kube, endpoints, tmp_path, slurm, expired):
    old = expiring_jwt(int(time.time()) + (-60 if expired else 86400 * 30))
    responder.inventory = slurm_inventory(tmp_path, slurm)
    plant_token(responder, old)
    kube.clear_requests()
    run = responder.run('api_failure', alert_payload('api_failure', 'a2b2c3d4e5f6000%d' % int(expired)),
                        extra={'incident_slurmrestd_url': endpoints.url})
    assert_succeeded(run)
    token = secret_token(kube)
    assert (token != old) == expired
    done = actions(responder.record())
    assert done[('check_slurmrestd', 'investigation')]['details']['status'] in (200, '200')
    assert done[('check_jwt_expiry', 'investigation')]['details']['expired'] in (expired, str(expired))
    assert (('rotate_credentials', 'eradication') in done) == expired
    if expired:
        assert restd(slurm, '/slurm/v0.0.40/ping', token) == 200 and restd(slurm, '/slurm/v0.0.40/ping', slurm.leaked) == 401
        assert slurm.calls() == ['scontrol show config', 'scontrol reconfigure', 'scontrol token username lifespan']
    else:
        assert slurm.calls() == [] and restd(slurm, '/slurm/v0.0.40/ping', slurm.leaked) == 200
    assert_nowhere(run, responder.store, old, token)
    assert_scoped(kube)


def test_rotation_fails_loudly_when_slurmctld_keeps_the_old_key(responder, kube, endpoints, tmp_path, slurm):
    """slurmctld before 23.11 keeps the key it loaded at start through `scontrol reconfigure`: the token it issues is
    signed with the old key, so the leaked one is still valid. The action fails and says so; the Secret keeps the old
    token, and the new key stays installed with the previous one next to it for the person who restarts slurmctld."""
    slurm.legacy_reconfigure()
    responder.inventory = slurm_inventory(tmp_path, slurm)
    plant_token(responder, expiring_jwt(int(time.time()) - 60))
    before = kube.get('v1', 'Secret', NS, 'slurm-credentials')['data']
    kube.clear_requests()
    run = responder.run('api_failure', alert_payload('api_failure', 'a2b2c3d4e5f60009'), extra={'incident_slurmrestd_url': endpoints.url})
    assert run.rc != 0
    assert kube.get('v1', 'Secret', NS, 'slurm-credentials')['data'] == before
    assert restd(slurm, '/slurm/v0.0.40/ping', slurm.leaked) == 200  # still valid: slurmctld never loaded the new key
    record = responder.record()
    assert record['status'] != 'resolved'
    rotation = actions(record)[('rotate_credentials', 'eradication')]
    error = rotation['result'] == 'failed' and rotation['details']['error']
    backup = '%s.%s.previous' % (slurm.key_path, record['id'])
    assert 'slurmctld still signs tokens with another key' in error and backup in error and 'not written' in error
    details = rotation['details']
    assert details['key_installed_on'] == ['slurmctld-1'] and details['secret_written'] in (False, 'False')
    assert details['backup_path'] == backup and details['stopped_at'].startswith('Rotate credentials - check that slurmctld signs')
    with open(backup, 'rb') as handle:
        assert handle.read() == slurm.initial_key
    with open(slurm.key_path, 'rb') as handle:
        assert handle.read() != slurm.initial_key
    assert any(n['template'] == 'status_update' and 'rotate_credentials' in json.dumps(n) for n in responder.outbox())
    assert_scoped(kube)


def test_data_loss_restores_the_known_good_configuration(responder, kube, endpoints):
    live = kube.get('v1', 'ConfigMap', NS, 'slurm-exporter-config')
    kube.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'slurm-exporter-config-known-good', 'namespace': NS},
                 'data': dict(live['data'])})
    responder.api('PATCH', '/api/v1/namespaces/%s/configmaps/slurm-exporter-config' % NS, {'data': {'config.yaml': 'collectors: {}\n'}})
    endpoints.series['slurm_exporter_last_collection_timestamp_seconds'] = [({}, 3600)]
    kube.clear_requests()
    run = responder.run('data_loss', alert_payload('data_loss', 'a3b2c3d4e5f60001'), extra={'incident_prometheus_url': endpoints.url})
    assert_succeeded(run)
    assert kube.get('v1', 'ConfigMap', NS, 'slurm-exporter-config')['data'] == live['data']
    done = actions(responder.record())
    assert done[('check_series', 'investigation')]['details']['back'] in (False, 'False')
    assert done[('restore_configmap', 'recovery')]['changed'] is True
    assert ('rollout_restart', 'recovery') in done
    assert_scoped(kube)


def test_resource_exhaustion_cleans_evicted_pods_and_raises_limits_after_oom(responder, kube):
    pods = kube.list('v1', 'Pod', NS, 'app=slurm-exporter')
    oom_before = sum(1 for p in pods for c in p['status']['containerStatuses']
                     if (c.get('lastState') or {}).get('terminated', {}).get('reason') == 'OOMKilled')
    pod = next(p for p in pods if not p['status']['containerStatuses'][0].get('lastState'))
    statuses = pod['status']['containerStatuses']
    statuses[0]['lastState'] = {'terminated': {'reason': 'OOMKilled', 'exitCode': 137}}
    responder.api('PATCH', '/api/v1/namespaces/%s/pods/%s/status' % (NS, pod['metadata']['name']), {'status': {'containerStatuses': statuses}})
    kube.create({'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'slurm-exporter-evicted', 'namespace': NS,
                                                                 'labels': {'app': 'slurm-exporter'}},
                 'spec': {'containers': [{'name': 'slurm-exporter', 'image': UPSTREAM_IMAGE}]},
                 'status': {'phase': 'Failed', 'reason': 'Evicted', 'message': 'The node was low on resource: memory.'}})
    kube.clear_requests()
    assert_succeeded(responder.run('resource_exhaustion', alert_payload('resource_exhaustion', 'a4b2c3d4e5f60001')))
    assert kube.get('v1', 'Pod', NS, 'slurm-exporter-evicted') is None
    assert responder.deployment()['spec']['template']['spec']['containers'][0]['resources']['limits']['memory'] == '768Mi'
    details = actions(responder.record())[('assess_resources', 'investigation')]['details']
    assert int(details['oom_killed']) == oom_before + 1, details and details['evicted'] == ['slurm-exporter-evicted']
    assert_scoped(kube)


def test_network_partition_restores_the_exporters_policy(responder, kube, tmp_path):
    responder.api('DELETE', '/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/slurm-exporter' % NS)
    manifest = tmp_path / 'networkpolicy.yaml'
    shutil.copy(os.path.join(FIXTURES, 'networkpolicy.yaml.upstream'), manifest)
    kube.clear_requests()
    assert_succeeded(responder.run('network_partition', alert_payload('network_partition', 'a5b2c3d4e5f60001'),
                                   extra={'incident_known_good_network_policy': str(manifest), 'incident_slurmrestd_url': 'http://127.0.0.1:9'}))
    assert kube.get('networking.k8s.io/v1', 'NetworkPolicy', NS, 'slurm-exporter') is not None
    done = actions(responder.record())
    assert done[('check_slurmrestd', 'investigation')]['result'] == 'success'
    assert 'unreachable' in json.dumps(responder.record()['timeline'])
    assert_scoped(kube)


def test_cluster_failure_moves_pods_off_a_failed_node(responder, kube):
    pods = kube.list('v1', 'Pod', NS, 'app=slurm-exporter')
    node = pods[0]['spec']['nodeName']
    stranded = sorted(p['metadata']['name'] for p in pods if p['spec'].get('nodeName') == node)
    conditions = [{'type': 'Ready', 'status': 'Unknown', 'reason': 'NodeStatusUnknown'}]
    responder.api('PATCH', '/api/v1/nodes/%s/status' % node, {'status': {'conditions': conditions}})
    kube.clear_requests()
    assert_succeeded(responder.run('cluster_failure', alert_payload('cluster_failure', 'a6b2c3d4e5f60001')))
    remaining = {p['metadata']['name'] for p in kube.list('v1', 'Pod', NS, 'app=slurm-exporter')}
    assert not set(stranded) & remaining
    details = actions(responder.record())[('assess_cluster', 'investigation')]['details']
    assert details['not_ready'] == [node] and sorted(details['stranded_pods']) == stranded
    assert_scoped(kube)


# A backup holds what a live cluster held. The upstream registry Secret has an empty .dockerconfigjson, which an API server
# refuses (no cluster can hold it); in a backup it is a valid Docker config (no registries).
def as_backed_up(text):
    """An upstream manifest's text as a backup of a live cluster holds it: the registry Secret with a valid Docker config."""
    return text.replace('.dockerconfigjson: ""', '.dockerconfigjson: "%s"' % base64.b64encode(b'{"auths": {}}').decode())


def backup_dir(tmp_path, names=('configmap', 'deployment', 'service', 'serviceaccount', 'secrets', 'networkpolicy')):
    directory = tmp_path / 'backup'
    directory.mkdir()
    for name in names:
        with open(os.path.join(FIXTURES, name + '.yaml.upstream'), encoding='utf-8') as handle:
            (directory / (name + '.yaml')).write_text(as_backed_up(handle.read()))
    return str(directory)


def test_disaster_recovery_restores_the_namespace(responder, kube, tmp_path):
    for path in ('/apis/apps/v1/namespaces/%s/deployments/slurm-exporter' % NS, '/api/v1/namespaces/%s/services/slurm-exporter' % NS,
                 '/api/v1/namespaces/%s/configmaps/slurm-exporter-config' % NS):
        responder.api('DELETE', path)
    kube.clear_requests()
    run = responder.run('disaster_recovery', alert_payload('cluster_failure', 'a7b2c3d4e5f60001'),
                        extra={'incident_backup_dir': backup_dir(tmp_path)})
    assert_succeeded(run)
    assert responder.deployment()['status']['availableReplicas'] == 3
    assert kube.get('v1', 'Service', NS, 'slurm-exporter') and kube.get('v1', 'ConfigMap', NS, 'slurm-exporter-config')
    # No /health URL and no Prometheus to ask: the recovery is unverified, so it is not resolved by automation.
    record = responder.record()
    assert record['status'] == 'monitoring' and actions(record)[('verify_health', 'recovery')]['details']['verified'] in (False, 'False')
    assert_scoped(kube)
    # RBAC and cluster-scoped objects of the backup are listed for an administrator, never written.
    assert not [entry for entry in kube.writes() if entry['resource'] in ('roles', 'rolebindings', 'clusterroles', 'clusterrolebindings')]
    details = actions(responder.record())[('restore_namespace', 'recovery')]['details']
    assert {'Role/slurm-exporter', 'RoleBinding/slurm-exporter', 'ClusterRole/slurm-exporter'} <= set(details['skipped_cluster_scoped'])


def test_disaster_recovery_refuses_a_backup_reaching_outside_the_namespace(responder, kube, tmp_path):
    directory = backup_dir(tmp_path, names=('configmap',))
    with open(os.path.join(directory, 'zz-other.yaml'), 'w', encoding='utf-8') as handle:
        handle.write('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: takeover\n  namespace: kube-system\ndata: {}\n')
    kube.clear_requests()
    run = responder.run('disaster_recovery', alert_payload('cluster_failure', 'a7b2c3d4e5f60002'), extra={'incident_backup_dir': directory})
    assert run.rc != 0
    assert kube.writes() == []
    assert 'outside the configured namespace' in run.stdout
    assert actions(responder.record())[('restore_namespace', 'recovery')]['result'] == 'failed'


# -- respond.yml ------------------------------------------------------------------------------------------
def test_respond_classifies_and_runs_a_custom_rule(responder, kube, endpoints):
    rules = [{'name': 'exporter-memory', 'trigger': 'process_resident_memory_bytes{job="slurm-exporter"} > 1e9', 'duration': '5m',
              'incident_type': 'resource_exhaustion', 'actions': ['capture_heap_dump', 'increase_logging', 'create_ticket', 'notify_team']}]
    payload = alert_payload('resource_exhaustion', 'a8b2c3d4e5f60001', labels={'response_rule': 'exporter-memory'})
    kube.clear_requests()
    run = responder.run('respond', payload, extra={
        'incident_response_rules': rules, 'incident_pprof_base_url': endpoints.url,
        'incident_ticket_webhook': {'url': endpoints.url + '/tickets'}})
    assert_succeeded(run)
    # Debug logging was on while the rule ran, and the response turned it back at recovery (the timeline says so).
    args = responder.deployment()['spec']['template']['spec']['containers'][0]['args']
    assert '--log-level=info' in args and '--log-level=debug' not in args
    record = responder.record()
    assert [a['name'] for a in record['actions']] == ['capture_heap_dump', 'increase_logging', 'create_ticket', 'notify_team',
                                                      'revert_logging']
    assert actions(record)[('increase_logging', 'containment')]['details']['args'][1] == '--log-level=debug'
    assert any(entry['message'].startswith('Debug logging turned on by the response reverted') for entry in record['timeline'])
    assert actions(record)[('create_ticket', 'containment')]['details']['ticket'] == 'TICKET-1'
    assert any(e['path'].endswith('exporter-heap.pb.gz') for e in record['evidence'])
    assert endpoints.received('/debug/pprof/heap')
    assert_scoped(kube)


def test_respond_resolved_alert_resolves_an_operational_incident(responder, kube):
    firing = alert_payload('service_outage', 'a9b2c3d4e5f60001')
    run = responder.run('respond', firing, extra={'incident_resolve_on_success': False})
    assert_succeeded(run)
    assert responder.record()['status'] == 'monitoring'
    resolved = alert_payload('service_outage', 'a9b2c3d4e5f60001', status='resolved', starts_at=firing['alerts'][0]['startsAt'])
    kube.clear_requests()
    assert_succeeded(responder.run('respond', resolved))
    record = responder.record()
    assert record['status'] == 'resolved' and record['alerts'][0]['status'] == 'resolved'
    assert kube.writes() == []
    assert [n['template'] for n in responder.outbox()][-1] == 'resolution'


def test_respond_refuses_a_payload_that_is_not_alertmanagers(responder, kube, tmp_path):
    kube.clear_requests()
    run = responder.run('respond', {'alerts': 'rm -rf /'})
    assert run.rc != 0 and 'Alertmanager webhook body' in run.stdout
    assert kube.writes() == [] and not os.path.exists(responder.store)


def test_hostile_labels_are_data(responder, kube, tmp_path):
    marker = tmp_path / 'pwned'
    labels = {'summary': "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % marker, 'pod': '$(touch %s)' % marker,
              'incident_type': 'compliance_violation'}
    assert_succeeded(responder.run('respond', alert_payload('compliance_violation', 'aab2c3d4e5f60001', labels=labels)))
    assert not marker.exists()
    assert responder.record()['alerts'][0]['labels']['summary'].startswith('{{ lookup(')
