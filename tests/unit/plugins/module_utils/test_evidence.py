# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import evidence
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import KubernetesError

PLANTED = 'planted-s3cr3t-value'


def test_scrub_secret_keeps_metadata_and_hashes_only():
    secret = {
        'metadata': {'name': 'slurm-credentials', 'namespace': 'ns', 'labels': {'a': 'b'}, 'annotations': {
            'kubectl.kubernetes.io/last-applied-configuration': json.dumps({'data': {'jwt-token': PLANTED}}), 'team': 'hpc'}},
        'type': 'Opaque',
        'data': {'jwt-token': base64.b64encode(PLANTED.encode()).decode(), 'empty': ''},
        'stringData': {'plain': PLANTED},
    }
    scrubbed = evidence.scrub_secret(secret)
    text = json.dumps(scrubbed)
    assert PLANTED not in text and base64.b64encode(PLANTED.encode()).decode() not in text
    assert scrubbed['keys'] == ['empty', 'jwt-token', 'plain']
    assert scrubbed['values']['jwt-token'] == {'sha256': hashlib.sha256(PLANTED.encode()).hexdigest(), 'size': len(PLANTED)}
    assert scrubbed['annotations'] == {'team': 'hpc'}


@pytest.mark.parametrize('name, safe', [('slurm-exporter-abc12', True), ('../../etc', False), ('a/b', False), ('UPPER', False), ('', False)])
def test_safe_component(name, safe):
    component = evidence.safe_component(name)
    assert (component == name) is safe
    assert '/' not in component and '..' not in component


def test_write_stream_limits_and_until(tmp_path):
    writer = evidence.BundleWriter(str(tmp_path / 'b'))
    lines = [b'2026-01-31T12:00:%02d.000000000Z line %d\n' % (n, n) for n in range(10)]
    entry = writer.write_stream('a.log', iter([b''.join(lines)]), 'src', limit=100)
    assert entry['size'] == 100 and entry['truncated'] == 'limit_bytes'
    # split across chunks at odd places; stop after 12:00:04
    blob = b''.join(lines)
    chunks = iter([blob[i:i + 7] for i in range(0, len(blob), 7)])
    entry = writer.write_stream('b.log', chunks, 'src', until=b'2026-01-31T12:00:04')
    with open(os.path.join(writer.root, 'b.log'), 'rb') as handle:
        assert handle.read() == b''.join(lines[:5])
    assert entry['truncated'] == 'until'
    entry = writer.write_stream('c.log', iter(lines), 'src')
    assert entry['truncated'] is False and entry['sha256'] == hashlib.sha256(blob).hexdigest()
    assert oct(os.stat(os.path.join(writer.root, 'c.log')).st_mode & 0o777) == '0o600'
    with pytest.raises(ValidationError, match='outside the bundle'):
        writer.write_json('../escape.json', {}, 'src')


def test_verify_reports_altered_missing_added(tmp_path):
    root = str(tmp_path / 'bundle')
    writer = evidence.BundleWriter(root)
    writer.write_json('one.json', {'a': 1}, 's')
    writer.write_json('two.json', {'b': 2}, 's')
    data = json.dumps({'files': writer.files}).encode()
    with open(os.path.join(root, evidence.MANIFEST), 'wb') as handle:
        handle.write(data)
    with open(os.path.join(root, evidence.DIGEST), 'w', encoding='utf-8') as handle:
        handle.write('%s  manifest.json\n' % hashlib.sha256(data).hexdigest())
    assert evidence.verify_bundle(root)['verified'] is True
    with open(os.path.join(root, 'one.json'), 'ab') as handle:
        handle.write(b' ')
    os.unlink(os.path.join(root, 'two.json'))
    with open(os.path.join(root, 'three.json'), 'w', encoding='utf-8') as handle:
        handle.write('{}')
    result = evidence.verify_bundle(root)
    assert (result['verified'], result['altered'], result['missing'], result['added']) == (False, ['one.json'], ['two.json'], ['three.json'])
    with open(os.path.join(root, evidence.MANIFEST), 'ab') as handle:
        handle.write(b'\n')
    assert evidence.verify_bundle(root)['manifest_sha256_ok'] is False
    with pytest.raises(ValidationError, match='neither an evidence bundle'):
        evidence.verify_bundle(str(tmp_path / 'nothing-here'))


def _bundle(tmp_path, files):
    """A bundle directory with ``files`` ({relative: bytes}) and a correct manifest and digest."""
    root = str(tmp_path / 'bundle-20260131T120000Z-abc123')
    writer = evidence.BundleWriter(root)
    for relative, content in files.items():
        writer.write_stream(relative, iter([content]), 'src')
    data = json.dumps({'files': writer.files}).encode()
    with open(os.path.join(root, evidence.MANIFEST), 'wb') as handle:
        handle.write(data)
    with open(os.path.join(root, evidence.DIGEST), 'w', encoding='utf-8') as handle:
        handle.write('%s  manifest.json\n' % hashlib.sha256(data).hexdigest())
    return root


def test_verify_archive_streams_and_reports_one_changed_byte(tmp_path):
    root = _bundle(tmp_path, {'logs/p/c.log': b'x' * (3 << 20), 'pods/p.json': b'{}'})
    archive, _digest = evidence.make_archive(root)
    assert oct(os.stat(archive).st_mode & 0o777) == '0o600'
    result = evidence.verify_bundle(archive)
    assert result['verified'] is True and result['files'] == 2
    # one byte changed inside the log, then archived again
    with open(os.path.join(root, 'logs/p/c.log'), 'r+b') as handle:
        handle.seek(1 << 20)
        handle.write(b'y')
    os.unlink(archive)
    archive, _digest = evidence.make_archive(root)
    result = evidence.verify_bundle(archive)
    assert (result['verified'], result['altered'], result['missing'], result['added']) == (False, ['logs/p/c.log'], [], [])


def test_verify_does_not_follow_planted_symlinks(tmp_path):
    root = _bundle(tmp_path, {'a.json': b'{}'})
    os.unlink(os.path.join(root, 'a.json'))
    os.symlink('/etc/hostname', os.path.join(root, 'a.json'))
    result = evidence.verify_bundle(root)
    assert result['verified'] is False and result['altered'] == ['a.json']


def test_verify_damaged_archive_and_missing_digest(tmp_path):
    root = _bundle(tmp_path, {'a.json': b'{}'})
    os.unlink(os.path.join(root, evidence.DIGEST))
    result = evidence.verify_bundle(root)
    assert result['verified'] is False and result['missing'] == [evidence.DIGEST] and result['manifest_sha256_ok'] is False
    broken = tmp_path / 'broken.tar.gz'
    archive, _digest = evidence.make_archive(root)
    with open(archive, 'rb') as handle:
        broken.write_bytes(handle.read()[:200])
    with pytest.raises(ValidationError, match='damaged'):
        evidence.verify_bundle(str(broken))


class FakeKube:
    """Answers the collector's GETs from a dict of path -> document, bytes (logs) or an exception."""

    host = 'https://fake:6443'

    def __init__(self, answers):
        self.answers = answers
        self.calls = []
        self.successful_calls = 0

    def _answer(self, path, query):
        self.calls.append((path, dict(query or {})))
        answer = self.answers.get(path)
        if answer is None:
            raise KubernetesError('GET %s: 404 Not Found' % path, 404, 'Not Found', 'GET ' + path)
        if isinstance(answer, Exception):
            raise answer
        self.successful_calls += 1
        return answer

    def get_json(self, path, query=None):
        return self._answer(path, query), 'GET ' + path

    def stream(self, path, query=None):
        blob = self._answer(path, query)
        lines = blob.splitlines(keepends=True)
        if (query or {}).get('tailLines'):
            lines = lines[-query['tailLines']:]
        return iter([b''.join(lines)]), 'GET ' + path

    def post_json(self, path, body=None):
        return self._answer(path, body), 'POST ' + path


NS = 'slurm-exporter'
STALE = json.dumps({'data': {'password': 'STALE-literal-removed-by-kubectl-edit'}})


def fake_cluster():
    pod = {'metadata': {'name': 'exp-1', 'namespace': NS, 'ownerReferences': [{'kind': 'ReplicaSet', 'name': 'exp-rs', 'controller': True}]},
           'spec': {'nodeName': 'node-a', 'serviceAccountName': 'exp', 'containers': [{'name': 'exporter'}, {'name': 'sidecar'}]},
           'status': {'containerStatuses': [
               {'name': 'exporter', 'restartCount': 1, 'image': 'exp:1', 'imageID': 'docker.io/exp@sha256:' + 'a' * 64},
               {'name': 'sidecar', 'restartCount': 0, 'image': 'side:1', 'imageID': 'docker.io/side@sha256:' + 'b' * 64}]}}
    secret = {'metadata': {'name': 'creds', 'namespace': NS, 'annotations': {evidence.LAST_APPLIED: PLANTED}},
              'type': 'Opaque', 'data': {'token': base64.b64encode(PLANTED.encode()).decode()}}
    log = b''.join(b'2026-01-31T12:00:%02d.000000000Z line %d\n' % (n, n) for n in range(10))
    base = '/api/v1/namespaces/%s' % NS
    return {
        base + '/pods': {'items': [pod]},
        base + '/pods/exp-1/log': log,
        '/apis/apps/v1/namespaces/%s/replicasets/exp-rs' % NS: {'metadata': {'name': 'exp-rs', 'ownerReferences': []}},
        base + '/events': {'items': [{'metadata': {'name': 'e1'}, 'involvedObject': {'kind': 'Pod', 'name': 'exp-1'}, 'reason': 'BackOff'}]},
        base + '/services': {'items': [{'metadata': {'name': 'exp'}}]},
        base + '/configmaps': {'items': [{'metadata': {'name': 'cfg', 'annotations': {evidence.LAST_APPLIED: STALE}}, 'data': {'a': 'b'}}]},
        base + '/secrets': {'items': [secret]},
        base + '/endpoints': KubernetesError('GET endpoints: 500', 500, 'Internal Server Error', 'GET %s/endpoints' % base),
        base + '/serviceaccounts/exp': {'metadata': {'name': 'exp'}},
        '/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings' % NS: {'items': [
            {'metadata': {'name': 'rb'}, 'subjects': [{'kind': 'ServiceAccount', 'name': 'exp'}], 'roleRef': {'kind': 'Role', 'name': 'reader'}},
            {'metadata': {'name': 'other'}, 'subjects': [{'kind': 'ServiceAccount', 'name': 'someone-else'}], 'roleRef': {'kind': 'Role', 'name': 'x'}}]},
        '/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles/reader' % NS: {'metadata': {'name': 'reader'}, 'rules': []},
        '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings': {'items': []},
        '/api/v1/nodes/node-a': {'metadata': {'name': 'node-a'}, 'status': {'nodeInfo': {'kubeletVersion': 'v1.30.1'}, 'conditions': []}},
        '/api/v1/events': {'items': []},
        '/version': {'gitVersion': 'v1.30.1'},
    }


def test_capture_with_failures_tail_lines_and_no_secret_values(tmp_path):
    kube = FakeKube(fake_cluster())
    collector = evidence.EvidenceCollector(kube, NS, label_selector='app=exp', tail_lines=4, workers=3)
    root = str(tmp_path / 'b')
    manifest, digest = collector.capture(root)
    assert evidence.verify_bundle(root)['verified'] is True
    with open(os.path.join(root, evidence.DIGEST), encoding='utf-8') as handle:
        assert handle.read().split()[0] == digest
    counts = manifest['counts']
    assert (counts['pods'], counts['logs'], counts['previous_logs'], counts['rbac_bindings'], counts['rbac_roles']) == (1, 2, 1, 1, 1)
    assert counts['secrets'] == 1 and counts['nodes'] == 1 and 'endpoints' not in counts
    errors = {(error['kind'], error['status']) for error in manifest['errors']}
    # endpoints failed (500); ingresses, HPAs, PVCs, network policies and the deployment-less chain are 404s here
    assert ('endpoints', 500) in errors and ('ingresses', 404) in errors
    logs = {entry['path']: entry for entry in manifest['files'] if entry['path'].startswith('logs/')}
    assert logs['logs/exp-1/exporter.log']['truncated'] == 'tail_lines' and logs['logs/exp-1/exporter.log']['lines'] == 4
    log_calls = [query for path, query in kube.calls if path.endswith('/log')]
    assert {query.get('previous') for query in log_calls} == {None, 'true'} and all(q['timestamps'] == 'true' for q in log_calls)
    for directory, _dirs, names in os.walk(root):
        for name in names:
            with open(os.path.join(directory, name), 'rb') as handle:
                content = handle.read()
            assert PLANTED.encode() not in content and base64.b64encode(PLANTED.encode()) not in content, name
            assert b'STALE-literal' not in content, name
    with open(os.path.join(root, 'configmaps.json'), encoding='utf-8') as handle:
        configmap = json.load(handle)[0]
    # a stale literal in the last-applied copy is replaced by the copy's digest
    assert configmap['metadata']['annotations'][evidence.LAST_APPLIED] == 'removed by k8s_evidence; sha256:%s' % (
        hashlib.sha256(STALE.encode()).hexdigest())
    assert configmap['data'] == {'a': 'b'}


def test_plan_counts_from_lists_only(tmp_path):
    kube = FakeKube(fake_cluster())
    plan = evidence.EvidenceCollector(kube, NS).plan()
    assert (plan['pods'], plan['container_logs'], plan['previous_logs'], plan['nodes']) == (1, 2, 1, 1)
    assert plan['objects']['secrets'] == 1 and plan['objects']['services'] == 1 and 'endpoints' not in plan['objects']
    assert not any(path.endswith('/log') for path, _query in kube.calls)
    assert not os.listdir(str(tmp_path))


def test_capture_with_nothing_reachable_records_every_failure(tmp_path):
    kube = FakeKube({})
    manifest, _digest = evidence.EvidenceCollector(kube, NS).capture(str(tmp_path / 'b'))
    assert kube.successful_calls == 0 and manifest['counts'].get('pods') is None
    assert {'Pod', 'Version'} <= {error['kind'] for error in manifest['errors']}


def test_bad_names_rejected():
    with pytest.raises(ValidationError, match='namespace'):
        evidence.EvidenceCollector(FakeKube({}), '../etc')
    with pytest.raises(ValidationError, match=r'objects\[0\].name'):
        evidence.EvidenceCollector(FakeKube({}), NS, objects=[{'kind': 'Pod', 'name': 'a/../../b'}])
    with pytest.raises(ValidationError, match='since'):
        evidence.EvidenceCollector(FakeKube({}), NS, since='2026-02-01T00:00:00Z', until='2026-01-01T00:00:00Z')


def test_in_cluster_fallback_only_without_a_named_kubeconfig(monkeypatch, tmp_path):
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import k8s  # pylint: disable=import-outside-toplevel

    monkeypatch.setenv('KUBECONFIG', str(tmp_path / 'none'))

    def in_cluster(client_configuration):
        client_configuration.host = 'https://10.0.0.1:443'

    monkeypatch.setattr(k8s.kubernetes_library()['config'], 'load_incluster_config', in_cluster)
    kube = k8s.Kubernetes({'workers': 20})
    assert kube.host == 'https://10.0.0.1:443' and kube.api.configuration.connection_pool_maxsize >= 22
    kube.close()
    with pytest.raises(k8s.IncidentResponseError, match='cannot load the kubeconfig'):
        k8s.Kubernetes({'kubeconfig': str(tmp_path / 'named-but-absent')})


def test_refused_connection_is_a_short_recorded_reason():
    import socket  # pylint: disable=import-outside-toplevel
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import k8s  # pylint: disable=import-outside-toplevel

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]  # closed again before the request: nothing listens there
    kube = k8s.Kubernetes({'host': 'http://127.0.0.1:%d' % port, 'request_timeout': 2})
    with pytest.raises(k8s.KubernetesError) as caught:
        kube.get_json('/api/v1/namespaces/ns/pods')
    kube.close()
    assert (caught.value.status, caught.value.reason) == (0, 'connection refused or unreachable')
    assert caught.value.source == 'GET /api/v1/namespaces/ns/pods'
