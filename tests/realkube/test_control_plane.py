# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The control plane itself: what the other real-cluster tests rely on (tests/kube/cluster.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.kube import build
from tests.kube.cluster import NODES, ApiError, stop_from_pidfile


def test_the_cluster_is_the_pinned_release_with_rbac_and_pod_security(uses_real_cluster):
    cluster = uses_real_cluster
    version = cluster.api('GET', '/version')
    assert version['gitVersion'] == build.KUBERNETES_VERSION
    assert cluster.request('GET', '/api/v1/namespaces', token='not-a-token').status_code == 401
    # A user that is authenticated but bound to nothing gets 403 from RBAC.
    token = cluster.service_account_token('default', 'default')
    refused = cluster.request('GET', '/api/v1/namespaces/kube-system/secrets', token=token)
    assert refused.status_code == 403 and refused.json()['reason'] == 'Forbidden'
    # batch/v1 CronJob is served (kube-apiserver 1.20 was not enough), and PrometheusRule through its CRD.
    assert 'cronjobs' in {r['name'] for r in cluster.api('GET', '/apis/batch/v1')['resources']}
    assert cluster.resource('monitoring.coreos.com/v1', 'PrometheusRule') == ('prometheusrules', True)


def test_seeded_pods_run_on_kwok_nodes_and_serve_logs(real_cluster, real_kube):
    namespace = real_kube.namespace
    nodes = real_cluster.list('v1', 'Node')
    assert sorted(n['metadata']['name'] for n in nodes) == sorted(NODES)
    pods = real_cluster.list('v1', 'Pod', namespace, 'app=slurm-exporter')
    assert len(pods) == 3
    for pod in pods:
        assert pod['status']['phase'] == 'Running' and pod['spec']['nodeName'] in NODES
        assert pod['metadata']['ownerReferences'][0]['kind'] == 'ReplicaSet'
        # The LimitRange defaults and the ResourceQuota were applied by admission, as in production.
        assert pod['spec']['containers'][0]['resources']['requests']['cpu'] == '100m'
    log = real_cluster.api('GET', '/api/v1/namespaces/%s/pods/%s/log' % (namespace, pods[0]['metadata']['name']),
                           params={'container': 'slurm-exporter', 'tailLines': '3'})
    lines = log.splitlines()
    assert len(lines) == 3 and all(json.loads(line)['collector'] for line in lines)
    replicaset = real_cluster.list('apps/v1', 'ReplicaSet', namespace)[0]
    assert replicaset['metadata']['annotations']['deployment.kubernetes.io/revision'] == '1'


def test_pod_security_restricted_is_enforced(real_cluster, real_kube):
    namespace = real_kube.namespace
    real_cluster.api('PATCH', '/api/v1/namespaces/%s' % namespace,
                     {'metadata': {'labels': {'pod-security.kubernetes.io/enforce': 'restricted'}}},
                     content_type='application/merge-patch+json')
    pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'as-root', 'namespace': namespace},
           'spec': {'containers': [{'name': 'c', 'image': 'busybox', 'securityContext': {'allowPrivilegeEscalation': True}}]}}

    def refused_in_a_dry_run():
        # Pod Security admission reads the namespace's labels from its informer: wait until it has seen the patch.
        try:
            real_cluster.api('POST', real_cluster.path_for('v1', 'Pod', namespace), pod, params={'dryRun': 'All'})
        except ApiError as exc:
            return exc.status == 403
        return False

    real_cluster.wait_for('Pod Security admission to see the enforce label', refused_in_a_dry_run, 30)
    with pytest.raises(ApiError) as refused:
        real_cluster.create(pod)
    assert refused.value.status == 403 and 'violates PodSecurity "restricted:latest"' in refused.value.body['message']


def test_the_audit_log_records_writes_and_dry_runs(real_cluster, real_kube):
    namespace = real_kube.namespace
    real_kube.clear_requests()
    body = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'audited', 'namespace': namespace}, 'data': {'a': 'b'}}
    real_cluster.api('POST', '/api/v1/namespaces/%s/configmaps' % namespace, body, params={'dryRun': 'All'})
    real_cluster.api('POST', '/api/v1/namespaces/%s/configmaps' % namespace, body)
    real_cluster.api('GET', '/api/v1/namespaces/%s/configmaps/audited' % namespace)
    writes = [(w['verb'], w['name'] or w['path'].rsplit('/', 1)[-1], w['dry_run'], w['status']) for w in real_kube.write_requests()]
    assert writes == [('create', 'audited', True, 201), ('create', 'audited', False, 201)]
    assert [w['dry_run'] for w in real_kube.writes()] == [False]
    assert any(r['verb'] == 'get' and r['name'] == 'audited' for r in real_kube.requests)


def test_stop_leaves_a_process_it_did_not_start_alone(tmp_path):
    """`python -m tests.kube down` signals a PID only while it still runs the binary that was started there."""
    sleeper = subprocess.Popen(['sleep', '30'], start_new_session=True)  # pylint: disable=consider-using-with
    try:
        (tmp_path / 'pids.json').write_text(json.dumps({'kube-apiserver': {'pid': sleeper.pid, 'exe': '/nonexistent/kube-apiserver'}}))
        stop_from_pidfile(str(tmp_path), out=open(os.devnull, 'w', encoding='utf-8'))  # pylint: disable=consider-using-with
        assert sleeper.poll() is None, 'a process that is not the cluster was signalled'
    finally:
        sleeper.kill()
        sleeper.wait()


def test_make_cluster_command_line(tmp_path):
    """`python -m tests.kube info` describes the cached build (what `make cluster` starts)."""
    process = subprocess.run([sys.executable, '-m', 'tests.kube', 'info'], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=60, check=False)
    if build.cached() is None:
        assert process.returncode == 1 and 'no current build' in process.stdout
        return
    info = json.loads(process.stdout)
    assert info['kubernetes'] == build.KUBERNETES_VERSION and info['kwok'] == build.KWOK_VERSION
    assert set(info['sizes']) == set(build.BINARIES) and info['cold_build_seconds'] > 0
