# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The safety guarantees that rest on the workload's Lease, with real coordination.k8s.io/v1 Leases: the real API
server's optimistic concurrency (resourceVersion, 409 Conflict) is what keeps two holders apart.

- holders in threads of this process: never two inside, every one gets through, the transitions are counted;
- two security incidents (other fingerprints, no correlation) running their breach playbooks at the same time while a
  third responder holds the Lease: both wait for it (their timelines say so), isolation stays until the last lift,
  the Deployment ends at its original 3 replicas and the real controllers report them available.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import lease as lease_mod
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes
from tests.conftest import finish
from tests.integration.test_response_playbooks import actions, alert_payload
from tests.integration.test_response_playbooks import slurm  # noqa: F401  pylint: disable=unused-import
from tests.integration.test_safety import NO_CORRELATION, lease_waits, started
from tests.launcher_process import wait_for

LEASE = 'incident-response-slurm-exporter'


def test_holders_exclude_each_other_on_the_real_api_server(real_kube):
    namespace = real_kube.namespace
    client = Kubernetes({'kubeconfig': real_kube.kubeconfig})
    inside, most, done = [0], [0], []
    guard = threading.Lock()

    def worker(number):
        lease = lease_mod.WorkloadLease(client, namespace, 'slurm-exporter', 'INC-20260131-%04d/host/%d' % (number, number),
                                        wait_timeout=120, poll=0.05)
        with lease.held():
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.1)
            with guard:
                inside[0] -= 1
        done.append(number)

    try:
        threads = [threading.Thread(target=worker, args=(number,)) for number in range(1, 7)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(150)
    finally:
        client.close()
    assert sorted(done) == list(range(1, 7)) and most[0] == 1
    stored = real_kube.get('coordination.k8s.io/v1', 'Lease', namespace, LEASE)
    assert stored['spec']['holderIdentity'] == '' and stored['spec']['leaseTransitions'] >= 5


def test_concurrent_breaches_take_turns_on_the_real_lease(real_cluster, real_kube, real_responder, tmp_path, slurm):  # pylint: disable=redefined-outer-name
    namespace = real_kube.namespace
    responder = real_responder
    responder.inventory = slurm.inventory(tmp_path / 'hosts.yml')
    real_kube.clear_requests()
    client = Kubernetes({'kubeconfig': real_kube.kubeconfig})
    other = lease_mod.WorkloadLease(client, namespace, 'slurm-exporter', 'INC-20260101-0001/another-responder/1').acquire()
    extra = dict(NO_CORRELATION, incident_namespace=namespace, incident_wait_timeout=120)
    try:
        runs = [started(responder, 'security_breach', alert_payload('security_breach', 'c0ffee%04d' % number), extra=extra)
                for number in range(2)]
        # Both incidents are open (their first step waits for the Lease) before the other responder lets go.
        wait_for(lambda: len(responder.records()) == 2, 600, 'both incidents to open')
        time.sleep(10)
    finally:
        other.release()
        client.close()
    results = [finish(run, timeout=900) for run in runs]
    assert all(result.rc == 0 for result in results), results

    records = responder.records()
    assert len(records) == 2 and all(record['status'] == 'monitoring' for record in records)
    deployment = real_cluster.wait_rollout(namespace, 'slurm-exporter')
    assert deployment['spec']['replicas'] == 3 and deployment['status']['availableReplicas'] == 3
    assert 'incident-response/holds' not in (deployment['metadata'].get('annotations') or {})
    assert real_cluster.get('networking.k8s.io/v1', 'NetworkPolicy', namespace, 'incident-isolation') is None
    lifts = sorted((actions(record)[('lift_isolation', 'recovery')] for record in records), key=lambda action: action['time'])
    assert [lift['details']['operation'] for lift in lifts] == ['released', 'deleted']
    rotations = sorted(actions(record)[('rotate_credentials', 'eradication')]['result'] for record in records)
    assert rotations == ['success', 'suppressed']
    for record in records:
        assert lease_waits(record), record['id']
        assert any('waited' in entry['message'] and 'for the Lease held by' in entry['message'] for entry in record['timeline'])
    # Every write to the workload was made while its writer held the Lease: the Lease was written before the first
    # write and after the last one (the audit log's order).
    writes = real_kube.writes()
    workload = [i for i, entry in enumerate(writes) if '/deployments/' in entry['path'] or '/networkpolicies' in entry['path']]
    leases = [i for i, entry in enumerate(writes) if '/leases' in entry['path']]
    assert workload and leases[0] < workload[0] and leases[-1] > workload[-1]
