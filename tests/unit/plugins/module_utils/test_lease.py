# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The per-workload Lease against the emulated API server (real HTTP through the kubernetes client)."""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import lease as lease_mod
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes

NS = 'slurm-exporter'


@pytest.fixture
def client(kube):
    api = Kubernetes({'kubeconfig': kube.kubeconfig})
    yield api
    api.close()


def stored(kube, name='incident-response-slurm-exporter'):
    return kube.get('coordination.k8s.io/v1', 'Lease', NS, name)


def make(client, holder, **kwargs):
    kwargs.setdefault('poll', 0.05)
    return lease_mod.WorkloadLease(client, NS, 'slurm-exporter', holder, **kwargs)


def test_acquire_names_the_incident_and_release_clears_it(kube, client):
    first = make(client, 'INC-20260131-0001/host/1')
    with first.held():
        spec = stored(kube)['spec']
        assert spec['holderIdentity'] == 'INC-20260131-0001/host/1' and spec['leaseDurationSeconds'] == 60
        assert stored(kube)['metadata']['labels'][lease_mod.WORKLOAD_LABEL] == 'slurm-exporter'
    spec = stored(kube)['spec']
    assert spec['holderIdentity'] == '' and spec['leaseDurationSeconds'] == 1
    # The next holder takes it over at once, and the transition is counted.
    with make(client, 'INC-20260131-0002/host/2').held():
        assert stored(kube)['spec']['leaseTransitions'] == 1


def test_a_second_holder_waits_and_the_wait_is_recorded(client):
    first = make(client, 'INC-20260131-0001/host/1').acquire()
    second = make(client, 'INC-20260131-0002/host/2', wait_timeout=10)
    timer = threading.Timer(0.4, first.release)
    timer.start()
    second.acquire()
    timer.join()
    assert second.waits and second.waits[0]['holder'] == 'INC-20260131-0001/host/1' and second.waits[0]['seconds'] >= 0.3
    second.release()


def test_waiting_is_bounded(client):
    make(client, 'INC-20260131-0001/host/1').acquire()
    with pytest.raises(lease_mod.LeaseTimeout, match='held by INC-20260131-0001/host/1'):
        make(client, 'INC-20260131-0002/host/2', wait_timeout=0.3).acquire()


def test_a_dead_holder_blocks_only_until_its_lease_expires(kube, client):
    dead = make(client, 'INC-20260131-0001/host/1', duration=5)
    dead.acquire()
    dead._stop_renewing()  # the process died: nobody renews  pylint: disable=protected-access
    # Five seconds later (a clock ahead instead of a sleep), the lease is free for the next responder.
    later = make(client, 'INC-20260131-0002/host/2', wait_timeout=0,
                 clock=lambda: datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=6))
    later.acquire()
    assert stored(kube)['spec']['holderIdentity'] == 'INC-20260131-0002/host/2'
    # The dead holder finds out at its next write.
    assert dead.renew() is False and dead.lost
    with pytest.raises(lease_mod.LeaseLost):
        dead.check()


def test_mutual_exclusion_under_contention(client):
    """Eight threads, each a holder: never two in the critical section, every one gets through."""
    inside, most, done = [0], [0], []
    guard = threading.Lock()

    def worker(number):
        lease = make(client, 'INC-20260131-%04d/host/%d' % (number, number), wait_timeout=60)
        with lease.held():
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with guard:
                inside[0] -= 1
        done.append(number)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(done) == list(range(1, 9)) and most[0] == 1


def test_remember_keeps_the_flapping_memory_on_the_lease(kube, client):
    with make(client, 'INC-20260131-0001/host/1').held() as lease:
        lease.remember('restart', 'INC-20260131-0001', 'rollout_restart')
    changes = make(client, 'x').changes(stored(kube))
    assert changes['restart']['incident'] == 'INC-20260131-0001' and changes['restart']['action'] == 'rollout_restart'
    with make(client, 'INC-20260131-0002/host/2').held() as lease:
        lease.remember('scale', 'INC-20260131-0002', 'scale_down')
    assert set(make(client, 'x').changes(stored(kube))) == {'restart', 'scale'}


def test_a_transient_500_on_the_lease_write_is_retried(kube):
    api = Kubernetes({'kubeconfig': kube.kubeconfig}, retry={'total': 3, 'backoff_factor': 0.01})
    kube.add_fault('POST', r'/leases$', status=500, times=1)
    with make(api, 'INC-20260131-0001/host/1').held():
        pass
    assert api.retries and api.retries[0]['request'].startswith('POST') and api.retries[0]['errors'] == ['500']
    api.close()


def test_long_names_are_hashed():
    name = lease_mod.lease_name('a' * 250)
    assert len(name) <= 253 and name.startswith('incident-response-aaa')
