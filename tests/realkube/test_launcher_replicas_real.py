# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Two launcher replicas against the real kube-apiserver, as the deployed ServiceAccount with exactly the deploy role's
store and spool Roles: every alert sent to both replicas is run once, 16 runs of two processes writing the store
together lose nothing (16 new incidents: ids 1-16, no gap, no duplicate; 16 firings of one alert: one incident at
revision 16), and a replica killed with its queue full has every alert it
accepted finished by the other, each exactly once. The real authoriser refuses nothing, and every spool verb is used."""

from __future__ import annotations

import concurrent.futures
import json
import os

import pytest
import yaml

from tests.alerts import alert, payload
from tests.conftest import REPO_ROOT
from tests.integration.test_rbac import expand
from tests.launcher_process import base_config, wait_for
from tests.realkube.test_rbac_real import wait_authorised
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import kubestore

NS = 'ir-replicas-real'
GROUP = 'launchers'
SA = 'incident-response'
USER = 'system:serviceaccount:%s:%s' % (NS, SA)
with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'vars', 'main.yml'), encoding='utf-8') as _vars:
    _RULES = yaml.safe_load(_vars)
STORE_RULES, SPOOL_RULES = _RULES['_deploy_store_rules'], _RULES['_deploy_spool_rules']


@pytest.fixture
def service_account_kubeconfig(uses_real_cluster, tmp_path):
    cluster = uses_real_cluster
    cluster.install_crd(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'))
    cluster.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    cluster.create({'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': {'name': SA, 'namespace': NS}})
    # the deploy role's two Roles in its namespace (roles/deploy/templates/objects.yaml.j2), as it writes them
    for suffix, rules in (('-store', STORE_RULES), ('-spool', SPOOL_RULES)):
        cluster.create({'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'Role', 'metadata': {'name': SA + suffix, 'namespace': NS},
                        'rules': rules})
        cluster.create({'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'RoleBinding',
                        'metadata': {'name': SA + suffix, 'namespace': NS},
                        'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': SA + suffix},
                        'subjects': [{'kind': 'ServiceAccount', 'name': SA, 'namespace': NS}]})
    token = cluster.service_account_token(NS, SA)
    kubeconfig = cluster.write_kubeconfig(str(tmp_path / 'kubeconfig-launcher'), token=token, user=SA, namespace=NS)
    wait_authorised(cluster, USER, NS, 'configmaps', 'list')
    try:
        yield cluster, kubeconfig
    finally:
        cluster.delete_namespace(NS, wait=True)
        cluster.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', None, kubestore.CRD_NAME)


def replica(tmp_path, kubeconfig, name, **overrides):
    directory = tmp_path / name
    directory.mkdir()
    return base_config(directory, backend='record', correlation={'enabled': False},
                       spool={'backend': 'kubernetes', 'group': GROUP, 'claim_ttl': 4, 'scan_interval': 0.5},
                       store={'backend': 'kubernetes', 'namespace': NS, 'kubeconfig': kubeconfig}, **overrides)


def spooled(cluster):
    return [(obj['metadata']['labels']['incident-response.slurm-exporter.io/spool-state'], json.loads(obj['data']['entry']))
            for obj in cluster.list('v1', 'ConfigMap', NS, 'incident-response.slurm-exporter.io/spool=%s' % GROUP)]


def done(cluster):
    return [state for state, _entry in spooled(cluster)].count('done')


def test_two_replicas_share_the_spool_and_survive_the_loss_of_one(service_account_kubeconfig, tmp_path, launchers):
    cluster, kubeconfig = service_account_kubeconfig
    mark = cluster.audit_mark()
    first = launchers(tmp_path, replica(tmp_path, kubeconfig, 'a', workers={'concurrency': 1}), name='a').start()
    second = launchers(tmp_path, replica(tmp_path, kubeconfig, 'b'), name='b').start()

    # 16 alerts, each sent to both replicas at once: 16 runs across the two processes
    fingerprints = ['%04x' % number for number in range(1, 17)]
    posts = [(launcher, fingerprint) for fingerprint in fingerprints for launcher in (first, second)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda item: item[0].post(payload(alert(item[1]))).json(), posts))
    assert sum(answer['accepted'] for answer in answers) == 16 and sum(answer['deduplicated'] for answer in answers) == 16
    wait_for(lambda: done(cluster) == 16, 120, 'the 16 alerts finished')
    assert all(entry['starts'] == 1 for _state, entry in spooled(cluster))

    # 16 firings of one alert (one fingerprint, 16 startsAt), each sent to both: 16 updates of one incident written by
    # the two processes in turn (each reads, changes and writes with the resourceVersion it read): none is lost
    starts = ['2026-12-03T08:%02d:00Z' % minute for minute in range(16)]
    posts = [(launcher, start) for start in starts for launcher in (first, second)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda item: item[0].post(payload(alert('f17e', starts=item[1]))).json(), posts))
    assert sum(answer['accepted'] for answer in answers) == 16
    wait_for(lambda: done(cluster) == 32, 120, 'the 16 firings finished')
    refired = [obj['spec'] for obj in cluster.list(kubestore.API_VERSION, 'Incident', NS)
               if any(item['fingerprint'] == 'f17e' for item in obj['spec']['alerts'])]
    assert len(refired) == 1 and refired[0]['id'].endswith('-0017')
    assert refired[0]['revision'] == 16, refired[0]['revision']

    # 30 more to the first replica only (one run at a time there), which is lost right after acknowledging them
    more = ['%04x' % number for number in range(18, 48)]
    answer = first.post(payload(*[alert(fingerprint) for fingerprint in more])).json()
    assert answer['accepted'] == 30
    first.kill_tree()
    wait_for(lambda: done(cluster) == 62, 180, 'the other replica to finish what the lost one accepted')

    entries = [entry for _state, entry in spooled(cluster) if entry['key'] != 'f17e']
    assert sorted(entry['key'] for entry in entries) == sorted(fingerprints + more)
    lost, survivor = first.events('listening')[0]['replica'], second.events('listening')[0]['replica']
    taken = [entry for entry in entries if entry.get('takeovers')]
    assert taken, 'the lost replica had finished all 30 alerts before it was killed: nothing was taken over'
    for entry in taken:
        assert [move['from'] for move in entry['takeovers']] == [lost] and entry['finished_by'] == survivor
    assert len(second.events('entry_taken_over')) == len(taken)
    records = [obj['spec'] for obj in cluster.list(kubestore.API_VERSION, 'Incident', NS)]
    assert sorted(int(record['id'].rsplit('-', 1)[1]) for record in records) == list(range(1, 48))
    assert sorted(item['fingerprint'] for record in records for item in record['alerts']) == sorted(fingerprints + ['f17e'] + more)

    # a replica that stops deletes its heartbeat (the others take over at once)
    second.stop()
    events = cluster.audit_events(mark, user=USER)
    refused = [(event['verb'], event['requestURI'], event['responseStatus']['code']) for event in events
               if event['responseStatus']['code'] in (401, 403)]
    assert not refused, refused
    used = {('', event['objectRef']['resource'], event['verb']) for event in events
            if event.get('objectRef', {}).get('resource') == 'configmaps' and event['responseStatus']['code'] < 400}
    assert used >= expand(SPOOL_RULES), expand(SPOOL_RULES) - used
