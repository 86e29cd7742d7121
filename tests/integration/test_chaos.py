# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/chaos.yml for real: rendered experiments validate against Chaos Mesh's CRD schemas, the experiment is
applied and always deleted, and the verdict says whether an incident and its response arrived in time."""

from __future__ import annotations

import copy
import datetime
import glob
import json
import os
import threading
import time

import jsonschema
import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore
from tests.conftest import REPO_ROOT, run_playbook

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'chaos.yml')
INVENTORY = os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml')
CRDS = os.path.join(REPO_ROOT, 'tests', 'fixtures', 'chaos-mesh')
NS = 'slurm-exporter'
RENDER = 'Chaos - the manifest'


def strict(schema):
    """The CRD schema with unknown fields refused: the API server would silently prune them, which hides mistakes
    such as Chaos Mesh 1.x's ``scheduler:`` field in a 2.x experiment."""
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get('type') == 'object' and 'properties' in node and not node.get('x-kubernetes-preserve-unknown-fields'):
                node.setdefault('additionalProperties', False)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


def crd_schema(kind):
    with open(os.path.join(CRDS, 'chaos-mesh.org_%s.yaml' % kind.lower()), encoding='utf-8') as handle:
        crd = yaml.safe_load(handle)
    assert crd['spec']['names']['kind'] == kind
    version = next(v for v in crd['spec']['versions'] if v['name'] == 'v1alpha1')
    return strict(version['schema']['openAPIV3Schema'])


def validate(manifest):
    """Validate a rendered manifest; a Schedule's embedded experiment against its kind's spec schema."""
    if manifest['kind'] == 'Schedule':
        spec = manifest['spec']
        assert set(spec) <= {'schedule', 'type', 'historyLimit', 'concurrencyPolicy', 'startingDeadlineSeconds', 'podChaos', 'networkChaos'}
        assert spec['concurrencyPolicy'] in ('Forbid', 'Allow') and isinstance(spec['historyLimit'], int)
        field = spec['type'][0].lower() + spec['type'][1:]
        assert set(spec) & {'podChaos', 'networkChaos'} == {field}
        jsonschema.validate(spec[field], crd_schema(spec['type'])['properties']['spec'])
        return
    jsonschema.validate(manifest, crd_schema(manifest['kind']))


def render(kube, tmp_path, **extra):
    """The manifest the playbook renders, in check mode (no write request)."""
    extra = dict({'incident_kubeconfig': kube.kubeconfig, 'incident_store': str(tmp_path / 'store')}, **extra)
    before = len(kube.writes())
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=True, inventory=INVENTORY)
    assert run.rc == 0, run
    assert len(kube.writes()) == before, 'check mode sent a write request'
    assert not os.path.exists(str(tmp_path / 'store'))
    return run.result(RENDER)['ansible_facts']['chaos_manifest']


@pytest.mark.parametrize('experiment, schedule', [('pod_kill', False), ('network_delay', False), ('network_partition', False),
                                                  ('pod_kill', True), ('network_partition', True)])
def test_rendered_manifests_validate_against_the_crds(kube, tmp_path, experiment, schedule):
    manifest = render(kube, tmp_path, chaos_experiment=experiment, chaos_schedule=schedule,
                      chaos_partition_hosts=['slurmrestd.example.org'])
    validate(manifest)
    assert manifest['metadata']['namespace'] == NS
    spec = manifest['spec']['podChaos' if experiment == 'pod_kill' else 'networkChaos'] if schedule else manifest['spec']
    assert spec['selector'] == {'namespaces': [NS], 'labelSelectors': {'app': 'slurm-exporter'}}
    if experiment == 'pod_kill':
        assert (spec['action'], spec['mode']) == ('pod-kill', 'one')
    if schedule:
        assert manifest['kind'] == 'Schedule' and manifest['spec']['schedule'] == '@weekly'


def test_validation_catches_bad_manifests(kube, tmp_path):
    manifest = render(kube, tmp_path, chaos_experiment='pod_kill')
    bogus = copy.deepcopy(manifest)
    bogus['spec']['mode'] = 'bogus'
    with pytest.raises(jsonschema.ValidationError, match='bogus'):
        validate(bogus)
    seed_style = copy.deepcopy(manifest)
    seed_style['spec']['scheduler'] = {'cron': '@weekly'}  # Chaos Mesh 1.x; pruned silently by a 2.x API server
    with pytest.raises(jsonschema.ValidationError, match='scheduler'):
        validate(seed_style)
    # and the playbook refuses an experiment it does not know, before rendering anything
    run = run_playbook(PLAYBOOK, extra_vars={'chaos_experiment': 'cpu_burn', 'incident_kubeconfig': kube.kubeconfig},
                       check=True, inventory=INVENTORY)
    assert run.rc != 0 and 'chaos_experiment must be one of pod_kill, network_delay, network_partition' in run.stdout


def chaos_objects(kube, kind='PodChaos'):
    return kube.list('chaos-mesh.org/v1alpha1', kind, NS)


def verdicts(store):
    found = []
    for path in sorted(glob.glob(os.path.join(store, 'chaos', '*.json'))):
        with open(path, encoding='utf-8') as handle:
            found.append(json.load(handle))
    return found


def test_detected_and_responded_in_time(kube, tmp_path):
    """The framework's part is played by a thread that, once the PodChaos reaches the API server, opens a
    service_outage incident and records a successful action, as the launcher's run would; the playbook polls the
    real store."""
    store = str(tmp_path / 'store')
    stop = threading.Event()

    def framework():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            if any(w['resource'] == 'podchaos' and w['verb'] == 'create' for w in kube.writes()):
                svc = IncidentService(IncidentStore(store), load_catalog(), actor='incident-launcher')
                opened = svc.open(type_name='service_outage', fingerprint='c0ffee')
                svc.update(opened.after['id'], {'actions': [{'name': 'restart_deployment', 'phase': 'recovery', 'changed': True}]})
                return
            time.sleep(0.1)

    thread = threading.Thread(target=framework, daemon=True)
    thread.start()
    try:
        run = run_playbook(PLAYBOOK, inventory=INVENTORY, extra_vars={
            'incident_kubeconfig': kube.kubeconfig, 'incident_store': store, 'chaos_experiment': 'pod_kill',
            'chaos_timeout': 40, 'chaos_poll_interval': 1, 'chaos_detect_within': '1m', 'chaos_respond_within': '2m'})
    finally:
        stop.set()
        thread.join(10)
    assert run.rc == 0, run
    [verdict] = verdicts(store)
    assert verdict['passed'] and verdict['detected'] and verdict['responded'] and verdict['incident_id'] == 'INC-%s-0001' % (
        verdict['experiment_started_at'][:10].replace('-', ''))
    assert verdict['detected_in_seconds'] <= 60 and verdict['experiment'] == 'pod_kill' and verdict['kind'] == 'PodChaos'
    verbs = [w['verb'] for w in kube.writes() if w['resource'] == 'podchaos']
    assert verbs == ['create', 'delete'] and chaos_objects(kube) == []


def test_missed_targets_fail_and_the_experiment_is_still_deleted(kube, tmp_path):
    store = str(tmp_path / 'store')
    # an incident that does not count: opened before the experiment
    earlier = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    earlier_service = IncidentService(IncidentStore(store), load_catalog(), actor='earlier', clock=lambda: earlier)
    earlier_service.open(type_name='service_outage', fingerprint='01d')
    run = run_playbook(PLAYBOOK, inventory=INVENTORY, extra_vars={
        'incident_kubeconfig': kube.kubeconfig, 'incident_store': store, 'chaos_experiment': 'network_delay',
        'chaos_incident_type': 'service_outage', 'chaos_timeout': 3, 'chaos_poll_interval': 1})
    assert run.rc != 0
    assert 'missed its targets: no service_outage incident was opened after the experiment started' in run.stdout
    [verdict] = verdicts(store)
    assert not verdict['passed'] and verdict['incident_id'] is None and verdict['kind'] == 'NetworkChaos'
    assert [w['verb'] for w in kube.writes() if w['resource'] == 'networkchaos'] == ['create', 'delete']
    assert chaos_objects(kube, 'NetworkChaos') == []


def test_schedule_mode_applies_a_weekly_schedule(kube, tmp_path):
    run = run_playbook(PLAYBOOK, inventory=INVENTORY, extra_vars={
        'incident_kubeconfig': kube.kubeconfig, 'incident_store': str(tmp_path / 'store'), 'chaos_schedule': True})
    assert run.rc == 0, run
    [schedule] = chaos_objects(kube, 'Schedule')
    assert schedule['metadata']['name'] == 'incident-response-pod-kill' and schedule['spec']['type'] == 'PodChaos'
    validate(schedule)
    again = run_playbook(PLAYBOOK, inventory=INVENTORY, extra_vars={
        'incident_kubeconfig': kube.kubeconfig, 'incident_store': str(tmp_path / 'store'), 'chaos_schedule': True})
    assert again.rc == 0 and len(chaos_objects(kube, 'Schedule')) == 1
    assert again.result('Chaos - apply the Schedule')['changed'] is False
