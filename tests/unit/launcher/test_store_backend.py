# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher with ``store.backend: kubernetes``: its own writes (record backend, first response) and the playbooks it
runs use the cluster store."""

from __future__ import annotations

import io
import os

import pytest
import yaml

from incident_launcher import LauncherError
from incident_launcher.backends import RecordBackend, store_environment
from incident_launcher.config import build
from incident_launcher.first_response import FirstResponder
from incident_launcher.log import JsonLogger
from tests.conftest import REPO_ROOT
from tests.unit.launcher.test_first_response import entry, spooled
from tests.alerts import alert
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import kubestore
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog

NS = 'incident-response'


def config_for(tmp_path, kube, **extra):
    with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'), encoding='utf-8') as handle:
        kube.create(yaml.safe_load(handle))
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    return build(dict({'auth': {'allow_anonymous': True}, 'backend': 'record', 'incident_store': str(tmp_path / 'local'),
                       'store': {'backend': 'kubernetes', 'namespace': NS, 'kubeconfig': kube.kubeconfig}}, **extra))


def test_record_backend_and_first_response_share_the_cluster_store(tmp_path, kube):
    config = config_for(tmp_path, kube, first_response={'enabled': True, 'kubeconfig': kube.kubeconfig})
    catalog = load_catalog(config['catalog'])
    item = entry(catalog, namespace='kube-system')
    summary = FirstResponder(config, catalog, JsonLogger(stream=io.StringIO())).run(item)
    assert summary['result'] == 'success'
    backend = RecordBackend(config)
    backend.run(item, None)
    incidents = kube.list(kubestore.API_VERSION, 'Incident', NS)
    assert [obj['spec']['id'] for obj in incidents] == [summary['incident']]
    assert [action['name'] for action in incidents[0]['spec']['actions']] == ['isolate_pods']
    assert not os.path.exists(str(tmp_path / 'local' / ('incident-%s.json' % summary['incident'])))
    backend.run(spooled(catalog, alert('0be1')), None)
    assert len(kube.list(kubestore.API_VERSION, 'Incident', NS)) == 2
    # the playbooks the runner backend starts reach the same store
    assert store_environment(config) == {'INCIDENT_RESPONSE_STORE_BACKEND': 'kubernetes', 'INCIDENT_RESPONSE_STORE_NAMESPACE': NS,
                                         'INCIDENT_RESPONSE_STORE_KUBECONFIG': kube.kubeconfig}


@pytest.mark.parametrize('store, words', [
    ({'backend': 'etcd'}, 'store.backend'),
    ({'backend': 'kubernetes', 'namespace': 'Not_A_Namespace'}, 'store.namespace'),
])
def test_store_settings_are_checked(tmp_path, store, words):
    with pytest.raises(LauncherError, match=words):
        build({'auth': {'allow_anonymous': True}, 'incident_store': str(tmp_path), 'store': store})


def test_file_store_is_the_default(tmp_path):
    config = build({'auth': {'allow_anonymous': True}, 'incident_store': str(tmp_path)})
    assert config['store']['backend'] == 'file' and store_environment(config) == {}
