# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""First response in-process against the Kubernetes API emulator: isolate, record, fail softly, check at start-up."""

from __future__ import annotations

import io

import pytest

from incident_launcher import LauncherError
from incident_launcher.config import build
from incident_launcher.first_response import FirstResponder
from incident_launcher.log import JsonLogger
from incident_launcher.payload import one_alert_payload

from launcher_testlib import alert, payload  # pylint: disable=import-error
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore


def responder(tmp_path, kubeconfig, **first):
    config = build({'auth': {'allow_anonymous': True}, 'backend': 'record', 'incident_store': str(tmp_path / 'store'),
                    'first_response': dict({'enabled': True, 'kubeconfig': kubeconfig}, **first)})
    catalog = load_catalog()
    return FirstResponder(config, catalog, JsonLogger(stream=io.StringIO())), catalog


def entry(catalog, fingerprint='5ec0', status='firing', **labels):
    item = alert(fingerprint, status=status, alertname='SlurmExporterSuspiciousAccess', incident_type='security_breach', **labels)
    type_name, _reason = catalog.classify(item)
    return {'id': '%020d-000000-%s' % (1, fingerprint), 'category': catalog.types[type_name]['category'],
            'payload': one_alert_payload(payload(item), item)}


def test_isolates_and_records_once(tmp_path, kube):
    first, catalog = responder(tmp_path, kube.kubeconfig)
    item = entry(catalog, namespace='kube-system')
    assert first.applies(item)
    summary = first.run(item)
    assert summary['result'] == 'success' and summary['changed']
    policy = kube.get('networking.k8s.io/v1', 'NetworkPolicy', 'slurm-exporter', 'incident-isolation')
    assert policy['metadata']['labels']['incident-response/incident-id'] == summary['incident']
    assert all(write['namespace'] == 'slurm-exporter' for write in kube.writes())
    again = first.run(item)
    assert again['incident'] == summary['incident'] and again['changed'] is False
    record = IncidentStore(str(tmp_path / 'store')).read(summary['incident'])
    assert [(action['name'], action['phase'], action['result']) for action in record['actions']] == [('isolate_pods', 'containment', 'success')]
    assert record['actions'][0]['details']['namespace'] == 'slurm-exporter'


def test_a_kubernetes_failure_is_recorded_not_raised(tmp_path, kube):
    first, catalog = responder(tmp_path, kube.kubeconfig)
    kube.add_fault('POST', '.*networkpolicies.*', status=500)
    summary = first.run(entry(catalog))
    assert summary['result'] == 'failed' and '500' in summary['error']
    record = IncidentStore(str(tmp_path / 'store')).read(summary['incident'])
    assert record['actions'][0]['result'] == 'failed' and '500' in record['actions'][0]['details']['error']


def test_only_firing_security_alerts(tmp_path, kube):
    first, catalog = responder(tmp_path, kube.kubeconfig)
    assert not first.applies(entry(catalog, status='resolved'))
    operational = alert('0bad')
    assert not first.applies({'category': catalog.types[catalog.classify(operational)[0]]['category'],
                              'payload': one_alert_payload(payload(operational), operational)})


def test_checked_at_start_up(tmp_path, kube):
    with pytest.raises(LauncherError, match='first_response: cannot load the kubeconfig'):
        responder(tmp_path, str(tmp_path / 'missing-kubeconfig'))
    with pytest.raises(LauncherError, match='allow_ingress'):
        responder(tmp_path, kube.kubeconfig, allow_ingress=[{'from': []}])
