# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The deployed Role is exactly what the response playbooks use.

Every response playbook (and respond.yml with a custom rule using every extra action, and a disaster
recovery both over damaged objects and into a wiped namespace) runs against the emulated cluster.
Each API request is checked against the rules the deploy role installs (roles/deploy/vars/main.yml),
as the API server would authorise it: a request in the exporter's namespace needs the Role, a
cluster-scoped request (or one across all namespaces) the ClusterRole, a request in any other
namespace is refused (nothing is bound there). The last test fails if a rule allows a verb on a
resource that no playbook used in that scope. The runs share one xdist worker (group ``rbac``) so
that the last test sees them all.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from tests.conftest import REPO_ROOT, launcher_module
from tests.fakes.endpoints import Endpoints
from tests.fakes.slurm import FakeSlurm
from tests.integration.test_response_playbooks import Responder, alert_payload, as_backed_up, failures
from tests.kube import build

NS = 'slurm-exporter'
FIXTURES = os.path.join(REPO_ROOT, 'tests', 'fixtures', 'slurm-exporter', 'kubernetes-ha')
USED = set()

pytestmark = pytest.mark.xdist_group('rbac')

# The real API server is the judge of RBAC: where its tier can run (the control plane is built; scripts/setup.sh builds
# it), tests/realkube/test_rbac_real.py runs every scenario below under the deployed Role with the real authoriser, and
# checks that the rules allow nothing unused. Here, the emulator's model of the authoriser then runs the scenarios of
# ALWAYS only (the launcher's own first response too); on a machine without the real tier, it runs them all.
REAL_TIER = build.cached() is not None
ALWAYS = ('security_breach', 'disaster_recovery_wiped', 'respond')
JUDGED_BY_THE_REAL_TIER = pytest.mark.skipif(
    REAL_TIER, reason='the real API server judges this (tests/realkube/test_rbac_real.py; its control plane is built here)')


def rules():
    with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'vars', 'main.yml'), encoding='utf-8') as handle:
        data = yaml.safe_load(handle)
    return data['_deploy_role_rules'], data['_deploy_cluster_role_rules']


def expand(rule_list):
    allowed = set()
    for rule in rule_list:
        for group in rule['apiGroups']:
            for resource in rule['resources']:
                for verb in rule['verbs']:
                    allowed.add((group, resource, verb))
    return allowed


def usage(request):
    """``(group, resource[/subresource], verb, namespace)`` of one logged API request, or None for discovery."""
    path = request['path']
    if request['resource'] is None:
        return None
    group = '' if path.startswith('/api/') else path.split('/')[2]
    resource = request['resource'] + ('/' + request['subresource'] if request['subresource'] else '')
    return group, resource, request['verb'], request['namespace']


# The plans that rotate the JWT run with a (fake) SLURM controller in the inventory ('slurm'), so the rotation writes the Secret.
SCENARIOS = {
    'security_breach': {'slurm': True}, 'vulnerability_exploit': {'slurm': True}, 'malware_detection': {'labels': {'pod': 'first'}},
    'compliance_violation': {}, 'service_outage': {'health': True}, 'performance_degradation': {}, 'data_loss': {'known_good': True},
    'api_failure': {'expired_jwt': True, 'slurm': True}, 'resource_exhaustion': {'evicted': True}, 'network_partition': {'policy': True},
    'cluster_failure': {}, 'disaster_recovery': {'backup': True}, 'disaster_recovery_wiped': {'backup': True, 'wipe': True},
    'respond': {'rule': True},
}
# What a disaster took from the namespace in the wiped scenario: every object the backup holds.
WIPED = ('/apis/apps/v1/namespaces/%s/deployments/slurm-exporter', '/api/v1/namespaces/%s/services/slurm-exporter',
         '/api/v1/namespaces/%s/configmaps/slurm-exporter-config', '/api/v1/namespaces/%s/configmaps/slurm-exporter-env',
         '/api/v1/namespaces/%s/secrets/slurm-credentials', '/api/v1/namespaces/%s/secrets/slurm-exporter-tls',
         '/api/v1/namespaces/%s/serviceaccounts/slurm-exporter', '/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/slurm-exporter',
         '/apis/policy/v1/namespaces/%s/poddisruptionbudgets/slurm-exporter')


def prepare(playbook, kube, responder, tmp_path, endpoints, namespace=NS):
    """Set up one scenario's cluster state and payload; returns ``(incident_type, labels, extra_vars)``.

    Shared with tests/realkube/test_rbac_real.py: ``kube`` is the emulator or a view of the real cluster, and every
    change goes through the API (``responder.api``) or ``kube.create``, so it is the same on both.
    """
    scenario = SCENARIOS[playbook]
    extra = {'incident_prometheus_url': endpoints.url, 'incident_exporter_health_url': endpoints.url + '/health',
             'incident_slurmrestd_url': endpoints.url}
    endpoints.series['up{job="slurm-exporter"}'] = [({'job': 'slurm-exporter'}, 1)]
    kind = {'disaster_recovery': 'cluster_failure', 'disaster_recovery_wiped': 'cluster_failure', 'respond': 'resource_exhaustion'}.get(playbook, playbook)
    labels = {}
    if scenario.get('slurm'):
        responder.inventory = FakeSlurm(tmp_path / 'slurm').inventory(tmp_path / 'hosts.yml')
    if scenario.get('labels'):
        labels['pod'] = kube.list('v1', 'Pod', namespace, 'app=slurm-exporter')[0]['metadata']['name']
    if scenario.get('known_good'):
        kube.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'data': {'config.yaml': 'known: good\n'},
                     'metadata': {'name': 'slurm-exporter-config-known-good', 'namespace': namespace}})
        endpoints.series['slurm_exporter_last_collection_timestamp_seconds'] = [({}, 3600)]
    if scenario.get('expired_jwt'):
        responder.api('PATCH', '/api/v1/namespaces/%s/secrets/slurm-credentials' % namespace, {'data': {'jwt-token': 'bm90LWEtand0'}})
    if scenario.get('evicted'):
        evicted_pod(kube, responder, namespace)
    if scenario.get('policy'):
        # The partition: the exporter's NetworkPolicy was changed (no ingress allowed); the response restores it.
        responder.api('PATCH', '/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/slurm-exporter' % namespace, {'spec': {'ingress': []}})
        extra['incident_known_good_network_policy'] = copy_manifest('networkpolicy', tmp_path / 'networkpolicy.yaml', namespace)
    if scenario.get('backup'):
        backup = tmp_path / 'backup'
        backup.mkdir()
        for name in ('configmap', 'deployment', 'service', 'serviceaccount', 'secrets', 'networkpolicy'):
            copy_manifest(name, backup / (name + '.yaml'), namespace)
        extra['incident_backup_dir'] = str(backup)
    if scenario.get('wipe'):
        for path in WIPED:
            responder.api('DELETE', path % namespace)
    if scenario.get('rule'):
        labels['response_rule'] = 'everything'
        extra.update({'incident_pprof_base_url': endpoints.url, 'incident_ticket_webhook': {'url': endpoints.url + '/tickets'},
                      'incident_response_rules': [{'name': 'everything', 'trigger': 'up == 0', 'incident_type': 'resource_exhaustion',
                                                   'actions': ['capture_heap_dump', 'increase_logging', 'restart_pod',
                                                               'restart_deployment', 'create_ticket', 'notify_team']}]})
    return kind, labels, extra


def copy_manifest(name, target, namespace=NS):
    """One upstream manifest as a backup holds it (``as_backed_up``; moved into ``namespace`` when that is another one)."""
    source = os.path.join(FIXTURES, name + '.yaml.upstream')
    with open(source, encoding='utf-8') as handle:
        text = as_backed_up(handle.read())
    if namespace == NS:
        target.write_text(text)
        return str(target)
    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    for document in documents:
        if document.get('metadata', {}).get('namespace'):
            document['metadata']['namespace'] = namespace
        for subject in document.get('subjects', []):
            if subject.get('namespace'):
                subject['namespace'] = namespace
    with open(str(target), 'w', encoding='utf-8') as handle:
        yaml.safe_dump_all(documents, handle, sort_keys=False)
    return str(target)


def evicted_pod(kube, responder, namespace=NS):
    """A pod of the exporter's app that the kubelet evicted: created, then its status set through the API.

    An API server ignores the status of a created object; the node selector keeps the scheduler (and kwok) away.
    """
    kube.create({'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'evicted', 'namespace': namespace, 'labels': {'app': 'slurm-exporter'}},
                 'spec': {'containers': [{'name': 'slurm-exporter', 'image': 'x'}], 'nodeSelector': {'incident-test/evicted': 'true'}}})
    responder.api('PATCH', '/api/v1/namespaces/%s/pods/evicted/status' % namespace,
                  {'status': {'phase': 'Failed', 'reason': 'Evicted', 'message': 'The node was low on resource: memory.'}})


def fingerprint(playbook):
    return '%016x' % (int(hashlib.sha256(playbook.encode()).hexdigest(), 16) % (16 ** 16))


@pytest.mark.parametrize('playbook', [name if name in ALWAYS else pytest.param(name, marks=JUDGED_BY_THE_REAL_TIER)
                                      for name in sorted(SCENARIOS)])
def test_playbook_stays_within_the_role(kube, tmp_path, playbook):
    responder = Responder(kube, tmp_path)
    endpoints = Endpoints()
    try:
        kind, labels, extra = prepare(playbook, kube, responder, tmp_path, endpoints)
        kube.clear_requests()
        run = responder.run(playbook.replace('_wiped', ''), alert_payload(kind, fingerprint(playbook), labels=labels), extra=extra)
    finally:
        endpoints.stop()
    assert run.rc == 0, '\n'.join(failures(run)) or run
    assert not authorise(kube), 'calls the deployed Role does not allow: %s' % authorise(kube)


def test_launcher_first_response_stays_within_the_role(kube, tmp_path):
    """The launcher's in-process isolation (its own code, in this process) under the same rules."""
    config = launcher_module('config').build({
        'backend': 'record', 'auth': {'bearer_token': 'x' * 32}, 'incident_store': str(tmp_path / 'store'),
        'spool': {'dir': str(tmp_path / 'spool')}, 'first_response': {'enabled': True, 'kubeconfig': kube.kubeconfig}})
    responder = launcher_module('first_response').FirstResponder(
        config, load_catalog({}), launcher_module('log').JsonLogger(stream=io.StringIO()))
    kube.clear_requests()
    outcome = responder.run({'id': 'rbac-1', 'category': 'security', 'payload': alert_payload('security_breach', 'f1a57ae5b0c5e001')})
    assert outcome['result'] == 'success' and outcome['changed'], outcome
    assert kube.get('networking.k8s.io/v1', 'NetworkPolicy', NS, 'incident-isolation') is not None
    assert not authorise(kube), 'calls the deployed Role does not allow: %s' % authorise(kube)


def authorise(kube, namespace=NS, used=None):
    """Every logged request as the API server would authorise it under the rules; returns the refused ones."""
    role_rules, cluster_rules = rules()
    allowed = {'namespace': expand(role_rules), 'cluster': expand(cluster_rules)}
    refused = []
    for request in kube.requests:
        if usage(request) is None:
            continue
        group, resource, verb, request_namespace = usage(request)
        scope = 'cluster' if request_namespace is None else 'namespace' if request_namespace == namespace else None
        if scope is not None:
            (USED if used is None else used).add((scope, group, resource, verb))
        if scope is None or (group, resource, verb) not in allowed[scope]:
            refused.append((request['method'], request['path'], verb, request_namespace))
    return refused


@JUDGED_BY_THE_REAL_TIER
def test_the_role_allows_nothing_unused():
    """Runs last in the group: every (group, resource, verb) the rules allow was used by some playbook above, in that scope."""
    if not USED:
        pytest.skip('the playbook runs did not happen in this process (run the whole module)')
    if os.environ.get('RBAC_PRINT_USAGE'):
        print('\nUSED:\n' + '\n'.join(map(str, sorted(USED))))
    role_rules, cluster_rules = rules()
    granted = {('namespace',) + rule for rule in expand(role_rules)} | {('cluster',) + rule for rule in expand(cluster_rules)}
    unused = sorted(granted - USED)
    assert not unused, 'the Role allows calls no playbook makes: %s' % unused
