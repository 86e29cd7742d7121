# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster spool (extensions/launcher/incident_launcher/clusterspool.py) of two replicas against the emulated API
server over HTTP: dedup across replicas by create-if-absent, one holder per entry, take-over of a lost replica's
entries (judged on the observer's clock), a lost claim never written again, a finished entry written exactly once."""

from __future__ import annotations

import pytest

from incident_launcher import LauncherError
from incident_launcher.clusterspool import HOLDER, ClaimLost, ClusterSpool
from incident_launcher.config import build
from incident_launcher.spool import Spool
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes

NS = 'incident-response'


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def replicas(tmp_path, kube):
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    client = Kubernetes({'kubeconfig': kube.kubeconfig})

    def make(name, clock=None, wall=None):
        local = Spool(str(tmp_path / name))
        return ClusterSpool(local, client, NS, 'launchers', claim_ttl=9.0, dedup_window=300.0, holder='pod-%s/1/abcd' % name,
                            clock=wall or Clock(5000.0), monotonic=clock or Clock())
    try:
        yield make
    finally:
        client.close()


def entry(spool, fingerprint='0a1b', starts='2026-12-03T07:00:00Z', received=5000.0):
    return {'spool_version': 1, 'id': spool.new_id(fingerprint), 'key': fingerprint, 'dedup_key': '%s|firing|%s' % (fingerprint, starts),
            'received_unix': received, 'attempts': 0, 'starts': 0, 'errors': [], 'payload': {'alerts': [{'fingerprint': fingerprint}]}}


def test_one_replica_takes_an_alert_the_other_is_told_it_is_a_duplicate(replicas, kube):
    first, second = replicas('a'), replicas('b')
    assert first.heartbeat() and second.heartbeat()
    mine = entry(first)
    assert first.add([mine]) == [mine]
    # the same alert (same fingerprint and startsAt) sent by Alertmanager to the other replica
    assert second.add([entry(second)]) == []
    # the client's retry of this replica's own create after it landed is recognised as this create
    first.versions.clear()
    assert first.add([mine]) == [mine]
    objects = kube.list('v1', 'ConfigMap', NS, 'incident-response.slurm-exporter.io/spool=launchers')
    assert len(objects) == 1 and objects[0]['metadata']['annotations'][HOLDER] == 'pod-a/1/abcd'
    # the live holder keeps it: the other replica neither queues nor claims it
    assert second.scan() == []
    assert second.claim(mine) is None


def test_a_lost_replica_s_entries_are_taken_over_and_finished_once(replicas):
    clock = Clock()
    first, second = replicas('a'), replicas('b', clock=clock)
    first.heartbeat()
    second.heartbeat()
    entries = [entry(first, fingerprint) for fingerprint in ('01', '02', '03')]
    assert first.add(entries) == entries
    running = first.claim(entries[0])
    running['starts'] = 1
    first.update(running)
    assert second.scan() == []          # first's heartbeat seen now: alive for claim_ttl on second's clock
    clock.now += 8.0
    assert second.scan() == []
    clock.now += 2.0                    # first has not renewed for 10 s > claim_ttl 9 s: lost
    found = second.scan()
    assert [item['id'] for item in found] == [item['id'] for item in entries]
    assert second.scan() == []          # queued once
    taken = second.claim(found[0])
    assert taken['starts'] == 1 and taken['takeovers'][0]['from'] == 'pod-a/1/abcd'
    # the lost replica comes back: every write of the entry it lost is refused, it never finishes it
    with pytest.raises(ClaimLost):
        first.update(running)
    with pytest.raises(ClaimLost):
        first.finish(running, 'done')
    assert first.claim(entries[0]) is None      # held by a live replica now
    second.finish(taken, 'done')
    for item in found[1:]:
        second.finish(second.claim(item), 'done')
    done = second.entries('done')
    assert sorted(item['id'] for item in done) == sorted(item['id'] for item in entries)
    assert {item['finished_by'] for item in done} == {'pod-b/1/abcd'}
    assert second.count('pending') == 0


def test_max_pending_counts_what_a_replica_holds_and_frees_what_it_lost(replicas):
    """spool.max_pending per replica: the alerts it holds, taken-over ones included; a claim it loses frees its room."""
    clock = Clock()
    first, second = replicas('a'), replicas('b', clock=clock)
    first.max_pending = second.max_pending = 2
    first.heartbeat()
    second.heartbeat()
    entries = [entry(first, fingerprint) for fingerprint in ('01', '02')]
    assert first.reserve(2)
    assert first.add(entries) == entries
    first.release(0)                    # the request's room not used by duplicates (none here)
    assert first.pending_count == 2 and not first.reserve(1)
    assert second.scan() == []
    clock.now += 10.0                   # first lost on second's clock
    taken = [second.claim(item) for item in second.scan()]
    assert second.pending_count == 2 and not second.reserve(1)
    # the lost replica finds out: what it held is no longer counted
    assert first.claim(entries[0]) is None
    with pytest.raises(ClaimLost):
        first.finish(entries[1], 'done')
    assert first.pending_count == 0 and first.reserve(2)
    for item in taken:
        second.finish(item, 'done')
    assert second.pending_count == 0 and second.reserve(2)


def test_a_stopped_replica_hands_over_at_once_and_a_new_occurrence_replaces_a_finished_entry(replicas):
    wall = Clock(5000.0)
    first, second = replicas('a', wall=wall), replicas('b', wall=wall)
    first.heartbeat()
    second.heartbeat()
    item = entry(first)
    first.add([item])
    first.stop_heartbeat()
    found = second.scan()
    assert [found_item['id'] for found_item in found] == [item['id']]
    second.finish(second.claim(found[0]), 'done')
    # resent within the dedup window: a duplicate; after it: a new occurrence of the alert
    assert second.add([entry(second, received=5100.0)]) == []
    wall.now = 5000.0 + 301
    again = entry(second, received=wall.now)
    assert second.add([again]) == [again]
    assert second.count('pending') == 1 and second.count('done') == 0


def test_prune_deletes_old_done_entries_and_stale_heartbeats(replicas, kube):
    clock, wall = Clock(), Clock(5000.0)
    first, second = replicas('a', wall=wall), replicas('b', clock=clock, wall=wall)
    first.heartbeat()
    second.heartbeat()
    item = entry(second)
    second.add([item])
    second.finish(second.claim(item), 'done')
    second.observe()
    assert second.prune(3600) == 0
    wall.now += 3601
    clock.now += 10 * 9.0 + 1
    assert second.prune(3600) == 1
    heartbeats = kube.list('v1', 'ConfigMap', NS, 'incident-response.slurm-exporter.io/spool-replica=launchers')
    assert [obj['data']['holder'] for obj in heartbeats] == ['pod-b/1/abcd']


def test_prune_keeps_a_new_occurrence_that_replaced_a_listed_done_entry(replicas, kube):
    """The alert comes again between prune's listing and its delete: the pending entry that replaced the done one is
    kept (the delete's resourceVersion precondition fails), so an acknowledged alert is never deleted."""
    wall = Clock(5000.0)
    first, second = replicas('a', wall=wall), replicas('b', wall=wall)
    first.heartbeat()
    second.heartbeat()
    old = entry(second)
    second.add([old])
    second.finish(second.claim(old), 'done')
    wall.now += 3601
    again = entry(first, received=wall.now)
    listing = second._list  # pylint: disable=protected-access

    def list_then_the_alert_comes_again(selector, metadata_only=True):
        items = listing(selector, metadata_only)
        if 'spool-state=done' in selector and items:
            assert first.add([again]) == [again]      # a new occurrence replaces the done entry (another replica)
        return items

    second._list = list_then_the_alert_comes_again  # pylint: disable=protected-access
    assert second.prune(3600) == 0
    second._list = listing  # pylint: disable=protected-access
    assert [item['id'] for item in second.entries('pending')] == [again['id']]
    assert first.claim(again)['id'] == again['id']


def test_claims_are_invalid_without_a_recent_heartbeat(replicas):
    clock = Clock()
    spool = replicas('a', clock=clock)
    assert not spool.claims_valid()
    spool.heartbeat()
    assert spool.claims_valid()
    clock.now += 4.6
    assert not spool.claims_valid()


@pytest.mark.parametrize('spool, store, words', [
    ({'backend': 'kubernetes'}, {'backend': 'file'}, 'spool.backend: kubernetes (several replicas) needs'),
    ({'backend': 'nfs'}, {'backend': 'file'}, 'spool.backend: expected file or kubernetes'),
    ({'backend': 'kubernetes', 'group': 'Not_A_Name'}, {'backend': 'kubernetes'}, 'spool.group'),
    ({'backend': 'kubernetes', 'claim_ttl': 10, 'scan_interval': 20}, {'backend': 'kubernetes'}, 'spool.scan_interval'),
    ({'backend': 'kubernetes', 'claim_ttl': 1}, {'backend': 'kubernetes'}, 'spool.claim_ttl'),
])
def test_bad_spool_settings_are_refused_with_the_key(spool, store, words):
    with pytest.raises(LauncherError) as caught:
        build({'auth': {'allow_anonymous': True}, 'backend': 'record', 'spool': spool, 'store': store})
    assert words in str(caught.value)
