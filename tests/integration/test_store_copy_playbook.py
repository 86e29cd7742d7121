# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/store_copy.yml (issue #18, "Migration") as real ansible-playbook processes against the emulated API server:
a file store into the cluster store and back with equal digests, a second run that changes nothing, check mode that
writes nothing, a record that differs in the destination (refused, then replaced with store_copy_overwrite), and bad
input stopped with a clear message before any request."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import kubestore
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore, record_digest
from tests.alerts import alert, security_alert
from tests.conftest import REPO_ROOT, run_playbook, snapshot

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'store_copy.yml')
NS = 'ir-moved'
COPY = 'Copy every record, each read back and verified by its SHA-256'
SUMMARY = "Summary - each record's outcome and SHA-256"
VERIFY = 'Verify - every record has the same digest in both stores'


@pytest.fixture
def cluster(kube):
    """The emulated cluster with the Incident CRD and the store's namespace (what the deploy role installs)."""
    with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'), encoding='utf-8') as handle:
        kube.create(yaml.safe_load(handle))
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    kube.clear_requests()
    return kube


def seed(directory):
    """Two incidents in a file store (one resolved, with its audit trail); their digests by id."""
    service = IncidentService(IncidentStore(directory), load_catalog(), actor='seed')
    first = service.open(alerts=[alert('0e1a2b3c4d5e6f01')]).after['id']
    service.resolve(first, resolution='restarted')
    service.open(alerts=[security_alert('0e1a2b3c4d5e6f02')])
    return digests(directory)


def digests(directory):
    store = IncidentStore(directory, read_only=True)
    return {record['id']: record_digest(record) for record, _error in store.records()}


def copy(kube, check=False, **variables):
    return run_playbook(PLAYBOOK, extra_vars=dict({'store_copy_kubeconfig': kube.kubeconfig}, **variables), check=check)


def summary(run):
    return run.result(SUMMARY)['msg']


def test_file_store_to_the_cluster_and_back(cluster, tmp_path):
    files, back = str(tmp_path / 'files'), str(tmp_path / 'back')
    expected = seed(files)
    before = snapshot(files)
    to_cluster = {'store_copy_from_dir': files, 'store_copy_to': 'kubernetes', 'store_copy_to_namespace': NS}

    planned = copy(cluster, check=True, **to_cluster)
    assert planned.rc == 0, planned
    assert cluster.writes() == [] and cluster.list(kubestore.API_VERSION, 'Incident', NS) == []
    assert summary(planned)[0] == '%s -> kubernetes://%s: 2 to copy, 0 unchanged, 0 to replace, 0 unreadable (check mode: nothing written)' % (files, NS)
    assert sorted(line.split()[0] for line in summary(planned)[1:]) == sorted(expected)
    assert all('would be copied' in line for line in summary(planned)[1:])

    copied = copy(cluster, **to_cluster)
    assert copied.rc == 0, copied
    assert copied.result(COPY)['digests'] == expected and sorted(copied.result(COPY)['copied']) == sorted(expected)
    assert summary(copied) == ['%s -> kubernetes://%s: 2 copied, 0 unchanged, 0 replaced, 0 unreadable' % (files, NS)] + [
        '%s  %-18s sha256:%s' % (key, 'copied', expected[key]) for key in sorted(expected)]
    assert copied.result(VERIFY)['msg'].startswith('2 record(s) with the same SHA-256')
    objects = cluster.list(kubestore.API_VERSION, 'Incident', NS)
    assert {obj['spec']['id']: record_digest(obj['spec']) for obj in objects} == expected
    assert snapshot(files) == before

    again = copy(cluster, **to_cluster)
    assert again.rc == 0, again
    assert again.json['stats']['localhost']['changed'] == 0
    assert sorted(again.result(COPY)['unchanged']) == sorted(expected) and again.result(COPY)['copied'] == []

    returned = copy(cluster, store_copy_from='kubernetes', store_copy_from_namespace=NS, store_copy_to='file', store_copy_to_dir=back)
    assert returned.rc == 0, returned
    assert returned.result(COPY)['digests'] == expected and digests(back) == expected
    # the audit trails came along: every entry of the source is in the copy
    with open(os.path.join(files, 'audit.log'), encoding='utf-8') as source, open(os.path.join(back, 'audit.log'), encoding='utf-8') as copied_back:
        assert sorted(json.loads(line)['revision'] for line in source) == sorted(json.loads(line)['revision'] for line in copied_back)


def test_a_record_that_differs_is_refused_then_replaced_with_overwrite(cluster, tmp_path):
    files, other = str(tmp_path / 'files'), str(tmp_path / 'other')
    expected = seed(files)
    to_other = {'store_copy_from_dir': files, 'store_copy_to': 'file', 'store_copy_to_dir': other}
    assert copy(cluster, **to_other).rc == 0
    changed_id = sorted(expected)[0]
    path = os.path.join(other, 'incident-%s.json' % changed_id)
    with open(path, encoding='utf-8') as handle:
        record = json.load(handle)
    record['title'] = 'edited in the destination'
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(record, handle)

    refused = copy(cluster, **to_other)
    assert refused.rc != 0
    message = refused.result(COPY)['msg']
    assert changed_id in message and 'other content' in message and 'overwrite' in message, message
    assert json.load(open(path, encoding='utf-8'))['title'] == 'edited in the destination'  # pylint: disable=consider-using-with

    replaced = copy(cluster, store_copy_overwrite=True, **to_other)
    assert replaced.rc == 0, replaced
    assert replaced.result(COPY)['replaced'] == [changed_id] and digests(other) == expected
    assert '%s  %-18s sha256:%s' % (changed_id, 'replaced', expected[changed_id]) in summary(replaced)


@pytest.mark.parametrize('variables, task, words', [
    ({}, 'Check the settings', ['store_copy_to', "got ''"]),
    ({'store_copy_to': 'file'}, 'Check the settings', ['store_copy_to_dir']),
    ({'store_copy_to': 'kubernetes', 'store_copy_from_dir': '/nonexistent/incident-response'}, 'Stop when the source directory does not exist',
     ['/nonexistent/incident-response', 'not a directory']),
])
def test_bad_input_stops_before_any_request(cluster, variables, task, words):
    run = copy(cluster, **variables)
    assert run.rc != 0
    message = run.result(task)['msg']
    assert all(word in message for word in words), message
    assert cluster.requests == []
