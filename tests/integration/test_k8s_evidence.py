# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""k8s_evidence and k8s_evidence_verify run by ansible-playbook against the emulated cluster."""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import os
import threading
import urllib.parse

import pytest

from tests.conftest import run_playbook, write_playbook

pytestmark = pytest.mark.integration

NS = 'slurm-exporter'
GROUP = 'group/slurm_exporter.incident_response.incident_response'
PLANTED = 'PLANTED-jwt-7c1e94d2b55a'
EVIDENCE = 'slurm_exporter.incident_response.k8s_evidence'
VERIFY = 'slurm_exporter.incident_response.k8s_evidence_verify'


def plant_secret(kube):
    encoded = base64.b64encode(PLANTED.encode()).decode()
    kube.create({'apiVersion': 'v1', 'kind': 'Secret', 'type': 'Opaque',
                 'metadata': {'name': 'planted', 'namespace': NS, 'annotations': {
                     'kubectl.kubernetes.io/last-applied-configuration': json.dumps({'data': {'token': encoded}})}},
                 'data': {'token': encoded}})
    kube.create({'apiVersion': 'networking.k8s.io/v1', 'kind': 'Ingress', 'metadata': {'name': 'metrics', 'namespace': NS},
                 'spec': {'rules': [{'host': 'metrics.example.org'}]}})
    kube.create({'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'metadata': {'name': 'data', 'namespace': NS},
                 'spec': {'accessModes': ['ReadWriteOnce'], 'resources': {'requests': {'storage': '1Gi'}}}})
    return encoded


def pods(kube):
    return sorted(pod['metadata']['name'] for pod in kube.list('v1', 'Pod', NS, 'app=slurm-exporter'))


def capture_playbook(tmp_path, store_dir, **extra):
    tasks = [
        {'name': 'open', 'slurm_exporter.incident_response.incident': {'type': 'security_breach'}, 'register': 'incident'},
        {'name': 'capture', EVIDENCE: dict({'namespace': NS, 'label_selectors': ['app=slurm-exporter'],
                                            'incident_id': '{{ incident.id }}'}, **extra), 'register': 'evidence'},
        {'name': 'verify', VERIFY: {'path': '{{ evidence.archive }}', 'expected_sha256': '{{ evidence.manifest_sha256 }}'}},
        {'name': 'record', 'slurm_exporter.incident_response.incident_info': {'id': '{{ incident.id }}'}},
    ]
    return write_playbook(tmp_path, tasks, module_defaults={GROUP: {'store': store_dir}})


def bundle_files(bundle):
    for directory, _dirs, names in os.walk(bundle):
        for name in names:
            with open(os.path.join(directory, name), 'rb') as handle:
                yield os.path.join(directory, name), handle.read()


def test_capture_everything_without_secret_values(kube, tmp_path, store_dir):
    encoded = plant_secret(kube)
    kube.clear_requests()
    run = run_playbook(capture_playbook(tmp_path, store_dir), env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig})
    assert run.rc == 0, run
    result = run.result('capture')
    counts = result['counts']
    for kind in ('pods', 'logs', 'previous_logs', 'events', 'services', 'endpoints', 'networkpolicies', 'ingresses',
                 'horizontalpodautoscalers', 'persistentvolumeclaims', 'configmaps', 'secrets', 'serviceaccounts',
                 'rbac_bindings', 'rbac_roles', 'nodes', 'replicasets', 'deployments', 'images'):
        assert counts.get(kind), (kind, counts)
    assert counts['pods'] == 3 and counts['logs'] == 6 and counts['previous_logs'] == 1 and counts['nodes'] == 2
    assert result['errors'] == [] and result['registered'] is True
    assert kube.writes() == [], 'evidence capture is read-only'
    bundle = result['bundle']
    assert oct(os.stat(bundle).st_mode & 0o777) == '0o700'
    manifest = json.load(open(os.path.join(bundle, 'manifest.json'), encoding='utf-8'))
    expected = {'secrets.json', 'events.json', 'nodes.json', 'images.json', 'owners/deployments/slurm-exporter.json'}
    assert {entry['path'] for entry in manifest['files']} >= expected
    assert all(entry['source'] and entry['sha256'] and entry['collected_at'] for entry in manifest['files'])
    assert manifest['collector']['name'] == EVIDENCE and manifest['collector']['versions']['kubernetes_client']
    deployment = json.load(open(os.path.join(bundle, 'owners/deployments/slurm-exporter.json'), encoding='utf-8'))
    assert deployment['revision_history'][0]['revision'] == 1
    images = json.load(open(os.path.join(bundle, 'images.json'), encoding='utf-8'))
    assert all(entry['digest'].startswith('sha256:') for entries in images.values() for entry in entries)
    secrets = {item['name']: item for item in json.load(open(os.path.join(bundle, 'secrets.json'), encoding='utf-8'))}
    assert secrets['planted']['keys'] == ['token'] and len(secrets['planted']['values']['token']['sha256']) == 64
    for path, content in bundle_files(bundle):
        assert PLANTED.encode() not in content and encoded.encode() not in content, path
        assert oct(os.stat(path).st_mode & 0o777) == '0o600', path
    archive = gzip.open(result['archive']).read()
    assert PLANTED.encode() not in archive and encoded.encode() not in archive
    assert PLANTED not in run.stdout and encoded not in run.stdout and PLANTED not in run.stderr
    verify = run.result('verify')
    assert verify['verified'] is True and verify['files'] == len(manifest['files'])
    record = run.result('record')['incident']
    assert record['evidence'][0]['path'] == bundle and record['evidence'][0]['sha256'] == result['manifest_sha256']


def test_one_changed_byte_is_detected(kube, tmp_path, store_dir):
    run = run_playbook(capture_playbook(tmp_path, store_dir), env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig})
    assert run.rc == 0, run
    bundle = run.result('capture')['bundle']
    target = os.path.join(bundle, 'events.json')
    with open(target, 'r+b') as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(b'[' if first != b'[' else b'{')
    with open(os.path.join(bundle, 'planted-by-attacker.txt'), 'w', encoding='utf-8') as handle:
        handle.write('x')
    tasks = [{'name': 'verify', VERIFY: {'path': bundle}},
             {'name': 'strict', VERIFY: {'path': bundle, 'fail_on_mismatch': True}, 'ignore_errors': True}]
    checked = run_playbook(write_playbook(tmp_path, tasks, name='verify.yml'))
    result = checked.result('verify')
    assert result['verified'] is False and result['altered'] == ['events.json'] and result['added'] == ['planted-by-attacker.txt']
    assert checked.result('strict')['failed'] and '1 altered' in checked.result('strict')['msg']


def test_failing_log_is_recorded_and_the_rest_captured(kube, tmp_path, store_dir):
    broken = pods(kube)[1]
    kube.add_fault('GET', r'/pods/%s/log$' % broken, status=500)
    kube.add_fault('GET', r'/ingresses$', status=403, reason='Forbidden')
    kube.add_fault('GET', r'/persistentvolumeclaims$', status=404, reason='NotFound')
    kube.add_fault('GET', r'/configmaps$', hang=True, delay=6)  # answers after the client gave up: a time-out
    run = run_playbook(capture_playbook(tmp_path, store_dir, workers=4, request_timeout=2),
                       env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig})
    assert run.rc == 0, run
    result = run.result('capture')
    failed = {(error['kind'], error['status']) for error in result['errors']}
    assert {('PodLog', 500), ('ingresses', 403), ('persistentvolumeclaims', 404), ('configmaps', 0)} <= failed
    assert [error['reason'] for error in result['errors'] if error['kind'] == 'configmaps'] == ['timed out after 2s']
    assert result['counts']['services'] >= 1 and result['counts']['secrets'] >= 1 and 'configmaps' not in result['counts']
    assert result['counts']['logs'] == 4 and result['counts']['pods'] == 3
    manifest = json.load(open(os.path.join(result['bundle'], 'manifest.json'), encoding='utf-8'))
    assert any(broken in error['name'] for error in manifest['errors'])


def test_bounds_and_truncation(kube, tmp_path, store_dir):
    first = pods(kube)[0]
    kube.set_pod_log(NS, first, 'slurm-exporter', size=300000)
    run = run_playbook(capture_playbook(tmp_path, store_dir, limit_bytes=1000, tail_lines=500),
                       env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig})
    assert run.rc == 0, run
    result = run.result('capture')
    truncated = {item['path']: item['reason'] for item in result['truncated']}
    assert truncated.get('logs/%s/slurm-exporter.log' % first) == 'limit_bytes'
    size = os.path.getsize(os.path.join(result['bundle'], 'logs', first, 'slurm-exporter.log'))
    assert size == 1000


def test_check_mode_writes_nothing(kube, tmp_path, store_dir):
    tasks = [{'name': 'capture', EVIDENCE: {'namespace': NS, 'objects': [{'kind': 'Deployment', 'name': 'slurm-exporter'}]}}]
    kube.clear_requests()
    run = run_playbook(write_playbook(tmp_path, tasks, module_defaults={GROUP: {'store': store_dir}}), check=True,
                       env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig})
    assert run.rc == 0, run
    plan = run.result('capture')['would_capture']
    assert plan['pods'] == 3 and plan['container_logs'] == 6 and plan['previous_logs'] == 1
    assert plan['objects']['secrets'] >= 1 and plan['objects']['services'] >= 1 and plan['objects']['configmaps'] >= 1
    assert not any(request['subresource'] == 'log' for request in kube.requests), 'check mode reads lists only'
    assert not os.path.exists(store_dir)
    assert kube.writes() == []


def test_nothing_captured_fails_clearly(kube, tmp_path, store_dir):
    kube.add_fault(None, r'^/api', status=403, reason='Forbidden')
    tasks = [{'name': 'capture', EVIDENCE: {'namespace': NS}, 'ignore_errors': True},
             {'name': 'bad namespace', EVIDENCE: {'namespace': '../etc'}, 'ignore_errors': True}]
    run = run_playbook(write_playbook(tmp_path, tasks, module_defaults={GROUP: {'store': store_dir}}),
                       env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig})
    result = run.result('capture')
    assert result['failed'] and result['msg'].startswith('nothing could be captured from namespace slurm-exporter')
    assert "not a valid Kubernetes namespace name" in run.result('bad namespace')['msg']
    evidence_dir = os.path.join(store_dir, 'evidence')
    assert not os.path.exists(evidence_dir) or not any(name for _d, _s, names in os.walk(evidence_dir) for name in names)


class FakePrometheus(http.server.ThreadingHTTPServer):
    """The Prometheus HTTP API on a loopback port: answers /api/v1/query and /api/v1/query_range, 500 for 'broken'."""

    def __init__(self):
        super().__init__(('127.0.0.1', 0), _PrometheusHandler)
        self.seen = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server_address[1]


class _PrometheusHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        self.server.seen.append((url.path, params))
        if params.get('query') == 'broken':
            body, status = {'status': 'error', 'error': 'boom'}, 500
        elif url.path == '/api/v1/query_range':
            body, status = {'status': 'success', 'data': {'resultType': 'matrix', 'result': [
                {'metric': {'job': 'slurm-exporter'}, 'values': [[1769860800, '1'], [1769860830, '0']]}]}}, 200
        else:
            body, status = {'status': 'success', 'data': {'resultType': 'vector', 'result': [
                {'metric': {'job': 'slurm-exporter'}, 'value': [1769860800, '0']}]}}, 200
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


def test_prometheus_snapshot_and_unsupported_checkpoint(kube, tmp_path, store_dir):
    prometheus = FakePrometheus()
    try:
        tasks = [{'name': 'capture', EVIDENCE: {
            'namespace': NS, 'label_selectors': ['app=slurm-exporter'], 'checkpoint': True, 'archive': False,
            'prometheus_url': prometheus.url, 'prometheus_queries': [
                {'name': 'up', 'query': 'up{job="slurm-exporter"}'},
                {'name': 'errors', 'query': 'rate(slurm_exporter_collector_errors_total[5m])',
                 'start': '2026-01-31T12:00:00Z', 'end': '2026-01-31T12:30:00Z', 'step': '30s'},
                {'name': 'broken', 'query': 'broken'}]}}]
        run = run_playbook(write_playbook(tmp_path, tasks, module_defaults={GROUP: {'store': store_dir}}),
                           env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig})
    finally:
        prometheus.shutdown()
        prometheus.server_close()
    assert run.rc == 0, run
    result = run.result('capture')
    bundle = result['bundle']
    snapshot = json.load(open(os.path.join(bundle, 'prometheus.json'), encoding='utf-8'))
    by_name = {entry['name']: entry for entry in snapshot['results']}
    assert by_name['up']['response']['data']['resultType'] == 'vector'
    assert by_name['errors']['endpoint'] == '/api/v1/query_range' and by_name['errors']['response']['data']['resultType'] == 'matrix'
    assert ('/api/v1/query_range', {'query': 'rate(slurm_exporter_collector_errors_total[5m])', 'start': '2026-01-31T12:00:00Z',
                                    'end': '2026-01-31T12:30:00Z', 'step': '30s'}) in prometheus.seen
    assert 'error' in by_name['broken'] and ('Prometheus', 'broken') in {(e['kind'], e['name']) for e in result['errors']}
    attempts = json.load(open(os.path.join(bundle, 'checkpoint.json'), encoding='utf-8'))
    assert len(attempts) == 3 and {attempt['result'] for attempt in attempts} == {'unsupported'}
    assert all(attempt['source'].startswith('POST /api/v1/nodes/') for attempt in attempts)
    assert result['counts']['prometheus_queries'] == 3 and not result['counts'].get('checkpoints')
    assert 'archive' not in result
    manifest = json.load(open(os.path.join(bundle, 'manifest.json'), encoding='utf-8'))
    assert {'prometheus.json', 'checkpoint.json'} <= {entry['path'] for entry in manifest['files']}
