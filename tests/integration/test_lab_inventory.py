# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plans that look up inventory hosts run with inventories/lab exactly as shipped (an empty slurm_controllers group).

Only the emulated cluster's kubeconfig (K8S_AUTH_KUBECONFIG, which the lab inventory reads) and a store path are
given; the cluster's own Secret points slurmrestd at a loopback fake, and its JWT is valid for 30 days.
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
import yaml

from tests.conftest import REPO_ROOT, run_playbook
from tests.fakes.endpoints import Endpoints
from tests.integration.test_response_playbooks import NS, Responder, actions, alert_payload, assert_scoped, expiring_jwt, failures

LAB = os.path.join(REPO_ROOT, 'inventories', 'lab', 'hosts.yml')


@pytest.fixture
def slurmrestd():
    server = Endpoints()
    yield server
    server.stop()


def test_the_lab_inventory_has_an_empty_controller_group():
    """The premise: the shipped lab inventory declares slurm_controllers without a host."""
    with open(LAB, encoding='utf-8') as handle:
        inventory = yaml.safe_load(handle)
    assert inventory['all']['children']['slurm_controllers']['hosts'] == {}


@pytest.mark.parametrize('playbook,incident_type', [('api_failure', 'api_failure'), ('network_partition', 'network_partition'),
                                                    ('respond', 'api_failure')])
def test_plan_runs_with_the_lab_inventory_as_shipped(kube, tmp_path, slurmrestd, playbook, incident_type):
    responder = Responder(kube, tmp_path)
    responder.api('PATCH', '/api/v1/namespaces/%s/secrets/slurm-credentials' % NS, {'data': {
        'rest-url': base64.b64encode(slurmrestd.url.encode()).decode(),
        'jwt-token': base64.b64encode(expiring_jwt(int(time.time()) + 86400 * 30).encode()).decode()}})
    alert = tmp_path / 'alert.json'
    alert.write_text(json.dumps(alert_payload(incident_type, 'b1b2c3d4e5f6%04d' % len(playbook))))
    kube.clear_requests()
    run = run_playbook(os.path.join(REPO_ROOT, 'playbooks', playbook + '.yml'),
                       {'alert_file': str(alert), 'incident_store': responder.store},
                       env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig}, inventory=LAB, timeout=600)
    assert run.rc == 0, '\n'.join(failures(run)) or run
    record = responder.record()
    probe = actions(record)[('check_slurmrestd', 'investigation')]
    assert probe['result'] == 'success'
    assert probe['details']['status'] in (200, '200')
    # Where the probe ran from, and why: the controller group has no host.
    assert probe['details']['probed_from'] == 'localhost'
    assert 'slurm_controllers' in probe['details']['probe_host_reason']
    assert slurmrestd.received('/openapi/v3')
    summary = [entry['message'] for entry in record['timeline'] if entry.get('message', '').startswith('slurmrestd ')]
    assert len(summary) == 1 and ' from localhost (no host in group slurm_controllers' in summary[0], record['timeline']
    assert_scoped(kube)


@pytest.mark.parametrize('controller,reachable', [({'ansible_connection': 'local'}, True),
                                                  # nothing listens on loopback port 9: the controller is unreachable
                                                  ({'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': 9,
                                                    'ansible_ssh_common_args': '-o ConnectTimeout=5 -o BatchMode=yes'}, False)])
def test_probe_runs_from_the_first_controller(kube, tmp_path, slurmrestd, controller, reachable):
    """With a controller in the group the probe runs there; an unreachable controller is recorded, not fatal."""
    responder = Responder(kube, tmp_path)
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(json.dumps({'all': {
        'hosts': {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}'}},
        'children': {'slurm_controllers': {'hosts': {'slurmctld-1': dict(controller, ansible_python_interpreter='{{ ansible_playbook_python }}')}}}}}))
    responder.inventory = str(inventory)
    run = responder.run('network_partition', alert_payload('network_partition', 'b2b2c3d4e5f6%04d' % reachable),
                        extra={'incident_slurmrestd_url': slurmrestd.url})
    assert run.rc == 0, '\n'.join(failures(run)) or run
    probe = actions(responder.record())[('check_slurmrestd', 'investigation')]
    assert probe['result'] == 'success' and probe['details']['probed_from'] == 'slurmctld-1'
    assert probe['details']['probe_host_reason'] == 'first host of group slurm_controllers'
    assert bool(slurmrestd.received('/openapi/v3')) == reachable
    assert (str(probe['details']['status']) == '200') == reachable
    if not reachable:
        assert probe['details']['status'] == 'no answer'
        assert 'host slurmctld-1 unreachable' in json.dumps(responder.record()['timeline'])
