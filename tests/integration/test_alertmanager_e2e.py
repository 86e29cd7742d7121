# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole chain, unattended: exporter metrics -> Prometheus rule -> Alertmanager -> the launcher AND ansible-rulebook
-> the real security-breach response against the emulated cluster -> resolving the alert updates the same incident.

Real processes on free loopback ports: a metrics endpoint with the exporter's real metric names, Prometheus and
Alertmanager (Debian's packages) with the collection's detection rule and Alertmanager configuration, the webhook
launcher (runner backend, first response on) and ansible-rulebook (the collection's rulebook and source), each
running ``slurm_exporter.incident_response.respond`` against its own emulated cluster and store (so the two
responses do not race on one Deployment). Timings shortened as in test_eda.py.
"""

from __future__ import annotations

import copy
import sys

import pytest
import yaml

from tests.emulator import Emulator
from tests.integration.test_eda import cleanup  # noqa: F401  pylint: disable=unused-import
from tests.integration.test_eda import ALERT, TOKEN, FakeExporter, generate_configs, incidents, need, start_rulebook, start_stack, wait_for, write_yaml
from tests.launcher_process import LauncherProcess

pytestmark = pytest.mark.integration

NS = 'slurm-exporter'
PLAYBOOK = 'slurm_exporter.incident_response.respond'


def host_vars(kubeconfig):
    return {'ansible_python_interpreter': sys.executable, 'incident_kubeconfig': kubeconfig, 'incident_namespace': NS,
            'incident_wait_timeout': 60}


def finished(store):
    """The records once the response's runs have ended (none still running), else None."""
    records = incidents(store)
    runs = records[0].get('runs') if records else None
    return records if runs and all(run['outcome'] != 'running' for run in runs) else None


def assert_responded(kube, record, first_actor):
    # The rotation needs a person (below): the incident stays open for that person.
    assert (record['type'], record['severity'], record['status']) == ('security_breach', 'critical', 'investigating')
    names = [action['name'] for action in record['actions']]
    assert names[0] == 'isolate_pods' and names.count('isolate_pods') == 1
    assert {'capture_evidence', 'rotate_credentials', 'rotate_tls', 'restore_known_good', 'lift_isolation'} <= set(names)
    # No SLURM controller in these inventories: the credential rotation needs a person and the Secret is not touched.
    assert all(action['result'] == ('needs_person' if action['name'] == 'rotate_credentials' else 'success')
               for action in record['actions'])
    assert [entry['actor'] for entry in record['timeline'] if entry['kind'] == 'action'][0] == first_actor
    # through the API: the isolation was created and lifted, the Deployment is back at its replicas and available
    policies = [w for w in kube.writes() if w['resource'] == 'networkpolicies']
    assert [w['verb'] for w in policies][0] == 'create' and policies[-1]['verb'] == 'delete'
    assert kube.get('networking.k8s.io/v1', 'NetworkPolicy', NS, 'incident-isolation') is None
    deployment = kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')
    assert deployment['spec']['replicas'] == 3 and deployment['status'].get('availableReplicas') == 3
    assert not any(w['resource'] == 'secrets' and w['name'] == 'slurm-credentials' for w in kube.writes())


def test_alert_reaches_launcher_and_rulebook_and_both_respond(tmp_path, cleanup):
    need('prometheus', 'prometheus-alertmanager', 'ansible-rulebook', 'java')
    kube_launcher, kube_rulebook = Emulator.start(seed=True), Emulator.start(seed=True)
    cleanup.extend([kube_launcher, kube_rulebook])
    kubeconfig_l = kube_launcher.write_kubeconfig(str(tmp_path / 'kubeconfig-launcher'))
    kubeconfig_r = kube_rulebook.write_kubeconfig(str(tmp_path / 'kubeconfig-rulebook'))
    store_l, store_r = str(tmp_path / 'store-launcher'), str(tmp_path / 'store-rulebook')
    exporter = FakeExporter()
    cleanup.append(exporter)

    inventory = write_yaml(tmp_path / 'launcher-inventory.yml', {'all': {'hosts': {'localhost': dict(
        {'ansible_connection': 'local'}, **host_vars(kubeconfig_l))}}})
    launcher = LauncherProcess(tmp_path, {
        'listen': {'address': '127.0.0.1', 'port': 0}, 'auth': {'bearer_token': TOKEN}, 'spool': {'dir': str(tmp_path / 'spool')},
        'incident_store': store_l, 'incident_namespace': NS, 'backend': 'runner',
        'runner': {'playbook': PLAYBOOK, 'inventory': inventory, 'timeout': 300, 'env': {}},
        'workers': {'concurrency': 2, 'max_attempts': 2, 'backoff_initial': 1, 'backoff_max': 2},
        'first_response': {'enabled': True, 'kubeconfig': kubeconfig_l},
    })
    cleanup.append(launcher.start())
    rulebook, rulebook_url = start_rulebook(tmp_path, store_r, playbook=PLAYBOOK, host_vars=host_vars(kubeconfig_r))
    cleanup.append(rulebook)

    rules_file, am_file = generate_configs(tmp_path, launcher.url + '/webhook')
    config = yaml.safe_load(open(am_file, encoding='utf-8'))  # pylint: disable=consider-using-with
    receiver = next(r for r in config['receivers'] if r['name'] == 'incident-response')
    second = copy.deepcopy(receiver['webhook_configs'][0])
    second['url'] = rulebook_url
    receiver['webhook_configs'].append(second)
    write_yaml(am_file, config)
    processes = [rulebook] + start_stack(tmp_path, cleanup, rules_file, am_file, exporter)

    wait_for('three healthy scrapes', lambda: exporter.scrapes >= 3, 20, processes)
    assert incidents(store_l) == [] and incidents(store_r) == []

    exporter.attacked = True
    launched = wait_for('the launcher path to finish its response', lambda: finished(store_l), 300, processes)
    ruled = wait_for('the rulebook path to finish its response', lambda: finished(store_r), 300, processes)
    for records in (launched, ruled):
        assert len(records) == 1 and [a['labels']['alertname'] for a in records[0]['alerts']] == [ALERT]
        assert records[0]['alerts'][0]['status'] == 'firing'
    assert launched[0]['alerts'][0]['fingerprint'] == ruled[0]['alerts'][0]['fingerprint']
    assert_responded(kube_launcher, launched[0], 'incident-launcher')
    # the playbook that the rulebook ran names the rulebook's ruleset and rule as its actor (plugins/module_utils/people.py)
    assert_responded(kube_rulebook, ruled[0], 'eda:Incident response from Alertmanager/Respond to a firing alert')

    exporter.attacked = False

    def alert_resolved(store):
        records = incidents(store)
        return records if records and records[0]['alerts'][0]['status'] == 'resolved' else None

    for store, first in ((store_l, launched[0]), (store_r, ruled[0])):
        records = wait_for('the resolved alert in %s' % store, lambda s=store: alert_resolved(s), 180, processes)
        assert len(records) == 1 and records[0]['id'] == first['id'], 'a second incident was opened'
        # The alert resolved, and the incident still waits for the person who rotates the JWT key: not resolved.
        assert records[0]['status'] == 'investigating'
        assert 'Alert %s is resolved' % ALERT in [entry['message'] for entry in records[0]['timeline']]
    # nothing was repeated by the resolved alert's runs
    assert [a['name'] for a in incidents(store_l)[0]['actions']] == [a['name'] for a in launched[0]['actions']]
    assert TOKEN not in launcher.log() and TOKEN not in open(rulebook.log_path, encoding='utf-8').read()  # pylint: disable=consider-using-with
