# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Two launcher replicas as real processes sharing the cluster spool and the kubernetes store on the emulated API
server (docs/launcher.md "Several replicas"): every alert sent to both is run once, 16 runs writing the store from
two processes lose nothing (new incidents and updates of one incident); a replica killed with everything it
started, in the middle of its runs, has its accepted alerts finished by the other, each exactly once."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re

import pytest
import requests
import yaml

from tests.alerts import alert, payload
from tests.conftest import REPO_ROOT
from tests.launcher_process import base_config, wait_for
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import kubestore

pytestmark = pytest.mark.integration

NS = 'incident-response'
GROUP = 'launchers'
SPOOL = 'incident-response.slurm-exporter.io/spool=%s' % GROUP


def install(kube):
    with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'), encoding='utf-8') as handle:
        kube.create(yaml.safe_load(handle))
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})


def replica(tmp_path, kube, name, **overrides):
    directory = tmp_path / name
    directory.mkdir()
    overrides.setdefault('workers', {})
    return base_config(directory, spool={'backend': 'kubernetes', 'group': GROUP, 'claim_ttl': 4, 'scan_interval': 0.5},
                       store={'backend': 'kubernetes', 'namespace': NS, 'kubeconfig': kube.kubeconfig}, **overrides)


def spooled(kube):
    """``[(state, entry)]`` of every alert in the cluster spool."""
    return [(obj['metadata']['labels']['incident-response.slurm-exporter.io/spool-state'], json.loads(obj['data']['entry']))
            for obj in kube.list('v1', 'ConfigMap', NS, SPOOL)]


def incidents(kube):
    return [obj['spec'] for obj in kube.list(kubestore.API_VERSION, 'Incident', NS)]


def test_alerts_sent_to_both_replicas_run_once_and_concurrent_opens_lose_nothing(tmp_path, kube, launchers):
    install(kube)
    # correlation off: one queue per fingerprint, so up to 4 runs at a time in each process write the store together
    first = launchers(tmp_path, replica(tmp_path, kube, 'a', backend='record', correlation={'enabled': False}), name='a').start()
    second = launchers(tmp_path, replica(tmp_path, kube, 'b', backend='record', correlation={'enabled': False}), name='b').start()
    fingerprints = ['%04x' % number for number in range(1, 17)]
    # Alertmanager sends every alert to every replica behind the Service (here: to both, at the same time)
    posts = [(launcher, fingerprint) for fingerprint in fingerprints for launcher in (first, second)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda item: item[0].post(payload(alert(item[1], pod='slurm-exporter-%s' % item[1]))).json(), posts))
    assert sum(answer['accepted'] for answer in answers) == 16
    assert sum(answer['deduplicated'] for answer in answers) == 16

    wait_for(lambda: [state for state, _entry in spooled(kube)].count('done') == 16, 90, 'every alert finished')
    entries = [entry for _state, entry in spooled(kube)]
    assert sorted(entry['key'] for entry in entries) == fingerprints
    # each entry started and finished once, by the replica that accepted it
    assert all(entry['starts'] == 1 and not entry.get('takeovers') for entry in entries)
    found = incidents(kube)
    assert len(found) == 16
    numbers = sorted(int(record['id'].rsplit('-', 1)[1]) for record in found)
    assert numbers == list(range(1, 17))        # ids unique and without gaps across the two processes
    assert sorted(item['fingerprint'] for record in found for item in record['alerts']) == fingerprints
    # (a run is counted just after its entry is written done)
    wait_for(lambda: sum(launcher.metrics()['incident_launcher_runs_succeeded_total'] for launcher in (first, second)) == 16, 10,
             'the runs counted')
    # 16 firings of one alert (16 startsAt), each sent to both: 16 updates of one incident by the two processes in turn
    starts = ['2026-12-03T08:%02d:00Z' % minute for minute in range(16)]
    posts = [(launcher, start) for start in starts for launcher in (first, second)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda item: item[0].post(payload(alert('f17e', starts=item[1]))).json(), posts))
    assert sum(answer['accepted'] for answer in answers) == 16
    wait_for(lambda: [state for state, _entry in spooled(kube)].count('done') == 32, 90, 'the 16 firings finished')
    refired = [record for record in incidents(kube) if any(item['fingerprint'] == 'f17e' for item in record['alerts'])]
    assert len(refired) == 1 and refired[0]['revision'] == 16
    for launcher in (first, second):
        assert launcher.metrics().get('incident_launcher_entries_taken_over_total', 0) == 0
        health = requests.get(launcher.url + '/healthz', timeout=10).json()
        assert health['status'] == 'ok', health


def test_a_replica_killed_mid_run_has_its_alerts_finished_by_the_other_once_each(tmp_path, kube, launchers):
    install(kube)
    first = launchers(tmp_path, replica(tmp_path, kube, 'a', runner={'env': {'LAUNCHER_TEST_SLEEP': '30'}}), name='a').start()
    second = launchers(tmp_path, replica(tmp_path, kube, 'b'), name='b').start()
    fingerprints = ['1a', '2b', '3c']
    assert first.post(payload(*[alert(fingerprint) for fingerprint in fingerprints])).json()['accepted'] == 3
    # Alertmanager's resend to the other replica: a duplicate, the first replica holds them
    assert second.post(payload(alert('2b'))).json()['deduplicated'] == 1
    # the first replica's runs have opened their incidents and sleep in the playbook: lose that replica with its runs
    wait_for(lambda: incidents(kube) and first.metrics()['incident_launcher_runs_in_flight'] >= 1, 90, 'a run in progress on the first replica')
    held = {entry['id'] for state, entry in spooled(kube) if state == 'pending'}
    assert len(held) == 3
    first.kill_tree()

    wait_for(lambda: [state for state, _entry in spooled(kube)].count('done') == 3, 120, 'the other replica to finish them')
    entries = [entry for _state, entry in spooled(kube)]
    assert {entry['id'] for entry in entries} == held
    for entry in entries:
        assert entry['finished_by'] == second.events('listening')[0]['replica']
        assert [move["from"] for move in entry.get("takeovers", [])] == [first.events("listening")[0]["replica"]], (entries, second.log()[-3000:])
    # the runs the first replica had started were started again (its start is counted in the entry), never finished twice
    assert max(entry['starts'] for entry in entries) == 2
    assert len(second.events('entry_taken_over')) == 3
    found = incidents(kube)
    assert sorted(item['fingerprint'] for record in found for item in record['alerts']) == sorted(fingerprints)
    assert len(found) == 3
    assert second.metrics()['incident_launcher_entries_taken_over_total'] == 3
    # the lost replica's heartbeat is still there (it could not delete it); nothing of it runs any more
    assert re.search(r'"event": "listening"', first.log())
