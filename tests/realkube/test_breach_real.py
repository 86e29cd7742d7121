# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The security breach end to end on real Deployments, ReplicaSets and Pods, and check mode proven by the audit log.

The attacker's change makes the real Deployment controller roll a second ReplicaSet (revision 2); the response
isolates, captures evidence (pod logs served by kwok through the API server), scales to zero, rotates the
credentials, rolls back to the ReplicaSet of revision 1 (which becomes revision 3), scales back and waits until the
real controllers report the replicas available, then lifts the isolation.
"""

from __future__ import annotations

import base64
import glob
import json
import os


from tests.integration.test_response_playbooks import (UPSTREAM_IMAGE, actions, alert_payload, assert_succeeded, now_ts,
                                                       plant_token, slurm_inventory, tamper_deployment)
from tests.integration.test_response_playbooks import slurm  # noqa: F401  pylint: disable=unused-import


def replicasets(cluster, namespace):
    """name -> (revision, replicas, images) of the exporter's ReplicaSets."""
    return {rs['metadata']['name']: (rs['metadata']['annotations']['deployment.kubernetes.io/revision'], rs['spec']['replicas'],
                                     [c['image'] for c in rs['spec']['template']['spec']['containers']])
            for rs in cluster.list('apps/v1', 'ReplicaSet', namespace, 'app=slurm-exporter')}


def test_security_breach_end_to_end_on_real_workloads(real_cluster, real_kube, real_responder, tmp_path, slurm):  # pylint: disable=redefined-outer-name
    namespace = real_kube.namespace
    responder = real_responder
    responder.inventory = slurm_inventory(tmp_path, slurm)
    plant_token(responder, slurm.leaked)
    original = {name for name, (revision, _r, _i) in replicasets(real_cluster, namespace).items() if revision == '1'}
    payload = alert_payload('security_breach', 'a1b2c3d4e5f6a001', starts_at=now_ts())
    tamper_deployment(responder)
    real_cluster.wait_rollout(namespace, 'slurm-exporter')
    assert {images[-1] for _rev, _r, images in replicasets(real_cluster, namespace).values()} == {UPSTREAM_IMAGE, 'evil.example/shell:1'}
    real_cluster.set_default_log(['{"level": "error", "msg": "unexpected outbound connection", "collector": "jobs"}'] * 5)
    real_kube.clear_requests()

    run = responder.run('security_breach', payload)
    assert_succeeded(run)

    # The Deployment: the known-good template back, rolled out by the real controllers to 3 available replicas.
    deployment = real_cluster.wait_rollout(namespace, 'slurm-exporter')
    containers = deployment['spec']['template']['spec']['containers']
    assert [c['name'] for c in containers] == ['slurm-exporter'] and containers[0]['image'] == UPSTREAM_IMAGE
    assert deployment['spec']['replicas'] == 3 and deployment['status']['availableReplicas'] == 3
    # The rollback reused revision 1's ReplicaSet (now revision 3); the attacker's is scaled to zero.
    sets = replicasets(real_cluster, namespace)
    assert {name for name, (revision, replicas, _i) in sets.items() if revision == '3' and replicas == 3} == original
    assert all(replicas == 0 for name, (_rev, replicas, _i) in sets.items() if name not in original)
    pods = real_cluster.list('v1', 'Pod', namespace, 'app=slurm-exporter')
    running = [p for p in pods if p['status'].get('phase') == 'Running' and not p['metadata'].get('deletionTimestamp')]
    assert len(running) == 3 and {p['metadata']['ownerReferences'][0]['name'] for p in running} == original
    assert all([c['image'] for c in p['spec']['containers']] == [UPSTREAM_IMAGE] for p in running)
    assert real_cluster.get('networking.k8s.io/v1', 'NetworkPolicy', namespace, 'incident-isolation') is None
    secret = real_cluster.get('v1', 'Secret', namespace, 'slurm-credentials')
    token = base64.b64decode(secret['data']['jwt-token']).decode()
    assert token != slurm.leaked and slurm.verify(token) == (True, 'slurm-exporter')

    # Isolation first, scale to zero only after the evidence, isolation lifted last (the audit log's order).
    writes = [(w['method'], w['path'], w['subresource']) for w in real_kube.writes()]
    assert all('/namespaces/%s/' % namespace in path for _m, path, _s in writes), writes
    isolate = writes.index(('POST', '/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies' % namespace, None))
    scale = writes.index(('PUT', '/apis/apps/v1/namespaces/%s/deployments/slurm-exporter' % namespace, None))
    lift = writes.index(('DELETE', '/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/incident-isolation' % namespace, None))
    reads = real_kube.requests
    first_log = next(i for i, r in enumerate(reads) if r['subresource'] == 'log')
    first_scale = next(i for i, r in enumerate(reads) if r['verb'] == 'update' and r['path'].endswith('/deployments/slurm-exporter'))
    assert isolate < scale < lift and first_log < first_scale
    # Every write of the workload happened while this incident held the workload's Lease (a real coordination.k8s.io Lease).
    leases = [i for i, (_m, path, _s) in enumerate(writes) if '/leases' in path]
    assert leases and leases[0] < isolate and leases[-1] > lift

    # The record and the evidence: every container's log as kwok served it through the API server.
    record = responder.record()
    assert record['status'] == 'monitoring'  # a P1 security breach waits for a person to resolve it
    assert [a['name'] for a in record['actions']] == [
        'isolate_pods', 'capture_evidence', 'scale_down', 'rotate_credentials', 'rotate_tls', 'restore_known_good',
        'scale_restore', 'wait_available', 'lift_isolation']
    assert all(a['result'] == 'success' for a in record['actions'])
    assert actions(record)[('restore_known_good', 'eradication')]['details']['revision'] in (1, '1')
    bundle = record['evidence'][0]['path']
    logs = glob.glob(os.path.join(bundle, 'logs', '*', 'slurm-exporter.log'))
    assert len(logs) == 3
    for path in logs:
        with open(path, encoding='utf-8') as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
        assert lines and all('unexpected outbound connection' in line for line in lines), path
    assert token not in run.stdout + run.stderr and slurm.leaked not in run.stdout + run.stderr

    # Resent alert: nothing is written.
    real_kube.clear_requests()
    assert_succeeded(responder.run('security_breach', payload))
    assert real_kube.writes() == []


def test_check_mode_persists_nothing(real_kube, real_responder):
    """--check: the API server persisted nothing (no write request outside a server-side dry run), no record written."""
    real_kube.clear_requests()
    before = {(kind, o['metadata']['name']): o['metadata']['resourceVersion']
              for kind in ('Deployment', 'ReplicaSet') for o in real_kube.list('apps/v1', kind, real_kube.namespace)}
    run = real_responder.run('security_breach', alert_payload('security_breach', 'a1b2c3d4e5f6a002'), check=True)
    assert_succeeded(run)
    assert real_kube.writes() == [], 'check mode persisted writes: %s' % [(w['method'], w['path']) for w in real_kube.writes()]
    assert not os.path.exists(real_responder.store)
    after = {(kind, o['metadata']['name']): o['metadata']['resourceVersion']
             for kind in ('Deployment', 'ReplicaSet') for o in real_kube.list('apps/v1', kind, real_kube.namespace)}
    assert after == before


def test_check_mode_sends_no_write_request_of_any_kind(real_kube, real_responder):
    """--check: the audit log shows not one write request from the playbook, server-side dry runs included."""
    real_kube.clear_requests()
    run = real_responder.run('security_breach', alert_payload('security_breach', 'a1b2c3d4e5f6a003'), check=True)
    assert_succeeded(run)
    sent = [(w['method'], w['path'], 'dryRun' if w['dry_run'] else 'persisted') for w in real_kube.write_requests()]
    assert sent == [], json.dumps(sent)
