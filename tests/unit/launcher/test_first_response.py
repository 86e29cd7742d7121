# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""First response in-process against the Kubernetes API emulator: isolate, record, fail softly, check at start-up;
only for alerts raised by the collection's security detection rules (forged labels do not isolate)."""

from __future__ import annotations

import io

import pytest

from incident_launcher import LauncherError
from incident_launcher.config import build
from incident_launcher.first_response import FirstResponder
from incident_launcher.log import JsonLogger
from tests.alerts import alert, payload, security_alert
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.alertmanager import one_alert_payload, validate_payload
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore


def responder(tmp_path, kubeconfig, catalog=None, **first):
    config = build({'auth': {'allow_anonymous': True}, 'backend': 'record', 'incident_store': str(tmp_path / 'store'),
                    'catalog': catalog or {}, 'first_response': dict({'enabled': True, 'kubeconfig': kubeconfig}, **first)})
    catalog = load_catalog(config['catalog'])
    return FirstResponder(config, catalog, JsonLogger(stream=io.StringIO())), catalog


def spooled(catalog, item):
    """The spool entry the launcher makes of one alert (validated, classified, as a one-alert payload)."""
    envelope, (clean,) = validate_payload(payload(item))
    type_name, _reason = catalog.classify(clean)
    return {'id': '%020d-000000-%s' % (1, clean['fingerprint']), 'category': catalog.types[type_name]['category'],
            'payload': one_alert_payload(envelope, clean)}


def entry(catalog, fingerprint='5ec0', status='firing', **labels):
    return spooled(catalog, security_alert(fingerprint, status=status, **labels))


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
    assert first.applies(entry(catalog))
    assert not first.applies(entry(catalog, status='resolved'))
    assert not first.applies(spooled(catalog, alert('0bad')))


SECURITY_LABELS = {'incident_type': 'security_breach', 'component': 'incident-response', 'severity': 'critical'}


@pytest.mark.parametrize('labels', [
    # any alert can be labelled as a security breach (the labels of a scraped series reach its alerts)
    dict(SECURITY_LABELS, alertname='Watchdog'),
    dict(SECURITY_LABELS, alertname='SecurityIncidentDetected'),
    # the name of an operational detection rule, relabelled
    dict(SECURITY_LABELS, alertname='SlurmExporterDown'),
    # a security rule's name without the labels its rule sets
    {'alertname': 'SlurmExporterAuthenticationFailures', 'incident_type': 'security_breach'},
    dict(SECURITY_LABELS, alertname='SlurmExporterAuthenticationFailures', component='scraped-target'),
    dict(SECURITY_LABELS, alertname='SlurmExporterAuthenticationFailures', incident_type='malware_detection'),
])
def test_forged_labels_do_not_isolate(tmp_path, kube, labels):
    first, catalog = responder(tmp_path, kube.kubeconfig)
    item = alert('f0f0')
    item['labels'] = labels
    assert not first.applies(spooled(catalog, item))


@pytest.mark.parametrize('alertname', ['SlurmExporterAuthenticationFailures', 'SlurmExporterUnauthorizedRequests',
                                       'SlurmExporterFalcoCriticalEvent', 'SlurmExporterExploitSignature', 'SlurmExporterMalwareSignature',
                                       'SlurmExporterUnapprovedImage'])
def test_every_security_detection_rule_isolates(tmp_path, kube, alertname):
    first, catalog = responder(tmp_path, kube.kubeconfig)
    type_name = next(name for name, info in catalog.types.items() if alertname in [rule['alert'] for rule in info['detection']])
    assert first.applies(spooled(catalog, security_alert('5ec1', alertname=alertname, incident_type=type_name)))


def test_more_alert_names_from_the_configuration_and_the_catalog(tmp_path, kube):
    seed = dict(SECURITY_LABELS, alertname='SecurityIncidentDetected')
    first, catalog = responder(tmp_path, kube.kubeconfig, alertnames=['SecurityIncidentDetected'])
    assert first.applies(spooled(catalog, security_alert('5ec2', **seed)))
    assert not first.applies(spooled(catalog, security_alert('5ec3', **dict(seed, component='other'))))
    # the catalog's detection rules (as overridden in inventory and the launcher's catalog) are the list
    override = {'types': {'security_breach': {'detection': [{'alert': 'SiteSpecificBreach', 'expr': 'vector(1) > 0'}]}}}
    first, catalog = responder(tmp_path, kube.kubeconfig, catalog=override)
    assert first.applies(spooled(catalog, security_alert('5ec4', alertname='SiteSpecificBreach')))
    assert not first.applies(spooled(catalog, security_alert('5ec5')))


def test_checked_at_start_up(tmp_path, kube):
    with pytest.raises(LauncherError, match='first_response: cannot load the kubeconfig'):
        responder(tmp_path, str(tmp_path / 'missing-kubeconfig'))
    with pytest.raises(LauncherError, match='allow_ingress'):
        responder(tmp_path, kube.kubeconfig, allow_ingress=[{'from': []}])
