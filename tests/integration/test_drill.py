# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drills (playbooks/drill.yml) against the emulated cluster: no write outside a drill namespace, only [DRILL]
messages to the drill channel, nobody paged, a scored report, and drills left out of the trends."""

from __future__ import annotations

import glob
import json
import os
import urllib.parse

import pytest

from tests.conftest import REPO_ROOT, run_playbook
from tests.fakes.services import Services

NS = 'slurm-exporter'


@pytest.fixture
def services():
    fake = Services()
    yield fake
    fake.stop()


def drill(kube, tmp_path, services, scenario, extra=None):
    store = str(tmp_path / 'store')
    if scenario == 'data_loss':
        live = kube.get('v1', 'ConfigMap', NS, 'slurm-exporter-config')
        kube.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'data': dict(live['data']),
                     'metadata': {'name': 'slurm-exporter-config-known-good', 'namespace': NS}})
    variables = {
        'incident_store': store, 'incident_wait_timeout': 20, 'drill_scenario': scenario,
        'incident_drill_slack': {'webhook_url': services.slack_webhook_url},
        # Configured for real incidents: a drill must never use them.
        'incident_pagerduty': {'routing_key': 'a' * 32, 'url': services.url + '/v2/enqueue'},
        'incident_slack': {'webhook_url': services.url + '/services/T0001/B0001/REALCHANNEL'},
    }
    variables.update(extra or {})
    run = run_playbook(os.path.join(REPO_ROOT, 'playbooks', 'drill.yml'), variables, env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig},
                       inventory=os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'), timeout=600)
    records = []
    for path in glob.glob(os.path.join(store, 'incident-*.json')):
        with open(path, encoding='utf-8') as handle:
            records.append(json.load(handle))
    return run, store, records


@pytest.mark.parametrize('scenario', ['security_breach', 'service_outage', 'data_loss', 'performance_degradation'])
def test_drill_dry_run_writes_nothing_and_pages_nobody(kube, tmp_path, services, scenario):
    kube.clear_requests()
    run, store, records = drill(kube, tmp_path, services, scenario)
    assert run.rc == 0, run
    assert kube.writes() == []
    assert len(records) == 1
    record = records[0]
    assert record['drill'] is True and record['type'] == scenario and record['status'] == 'resolved'
    assert record['acknowledged_at'] and record['actions']
    # Only the drill channel, only [DRILL] messages; PagerDuty and the real channel never called.
    assert services.received('/v2/enqueue') == []
    assert services.received('/services/T0001/B0001/REALCHANNEL') == []
    drill_messages = services.received(urllib.parse.urlsplit(services.slack_webhook_url).path)
    assert len(drill_messages) >= 3
    assert all('[DRILL]' in json.dumps(message['body']) for message in drill_messages)
    # The scored drill report.
    result = run.result('Drill - score it against the catalog\'s targets')['ansible_facts']['drill_result']
    stages = ['detection to acknowledgement', 'detection to mitigation', 'detection to resolution']
    assert [stage['stage'] for stage in result['stages']] == stages
    assert result['passed'] and result['met'] == 3
    report = run.result('Drill - write the drill report')['markdown']
    with open(report, encoding='utf-8') as handle:
        text = handle.read()
    assert '[DRILL]' in text and '## Drill score' in text and 'dry run' in text


def test_drill_in_a_drill_namespace_writes_only_there(kube, tmp_path, services):
    drill_ns = 'slurm-exporter-drill'
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': drill_ns}})
    deployment = kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')
    deployment['metadata'] = {'name': 'slurm-exporter', 'namespace': drill_ns, 'labels': deployment['metadata'].get('labels', {})}
    deployment.pop('status', None)
    kube.create(deployment)
    kube.clear_requests()
    run, _store, records = drill(kube, tmp_path, services, 'service_outage', extra={'drill_namespace': drill_ns})
    assert run.rc == 0, run
    writes = kube.writes()
    assert writes and all('/namespaces/%s/' % drill_ns in w['path'] for w in writes), [w['path'] for w in writes]
    restarted = kube.get('apps/v1', 'Deployment', drill_ns, 'slurm-exporter')['spec']['template']['metadata']['annotations']
    assert 'kubectl.kubernetes.io/restartedAt' in restarted
    assert records[0]['drill'] is True


def test_drills_are_left_out_of_the_trends(kube, tmp_path, services):
    run, store, _records = drill(kube, tmp_path, services, 'data_loss')
    assert run.rc == 0, run
    playbook = tmp_path / 'trends.yml'
    playbook.write_text(json.dumps([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'name': 'trends', 'slurm_exporter.incident_response.incident_report': {'kind': 'trends', 'store': store}, 'register': 'out'}]}]))
    done = run_playbook(str(playbook), inventory=os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'))
    assert done.rc == 0, done
    with open(done.result('trends')['markdown'], encoding='utf-8') as handle:
        text = handle.read()
    assert 'Real incidents: 0. Drills (counted apart, not in the figures below): 1.' in text
