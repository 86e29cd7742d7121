# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The response under the deployed ServiceAccount, judged by the real authoriser (RBAC of kube-apiserver).

The deploy role installs the framework once (module fixture); each scenario of tests/integration/test_rbac.py runs in
a freshly seeded namespace that gets the deploy role's Role and RoleBinding (as the role writes them for each response
namespace, with the rules read back from the installed Role), with a token of the deployed ServiceAccount from the
TokenRequest API. The API server's audit log is the request log: not one request may be refused (403), and every
permission the rules grant must be used by some scenario. Then each rule is taken away in turn, and the scenario that
used it fails.
"""

from __future__ import annotations

import io
import itertools
import time

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from tests.conftest import REPO_ROOT, launcher_module, run_playbook
from tests.fakes.endpoints import Endpoints
from tests.integration.test_escalate import INVENTORY as ESCALATE_INVENTORY, seed as seed_overdue
from tests.integration.test_rbac import SCENARIOS, expand, fingerprint, prepare, usage
from tests.integration.test_response_playbooks import alert_payload, failures
from tests.realkube.conftest import (CLUSTER_ROLE_RULES, DEPLOY_NAME, ROLE_RULES, RealResponder, deploy, grant,
                                     service_account_view)

DEPLOY_NAMESPACE = 'ir-rbac'
BASE_TARGET = 'slurm-exporter-rbac'
USED = {}          # (scope, group, resource, verb) -> the scenarios that used it
DURATIONS = {}     # scenario -> seconds its run took
_NUMBER = itertools.count(1)


class Deployed:  # pylint: disable=too-few-public-methods
    """What the deploy role installed: its namespace, and the rules as the API server stores them."""

    def __init__(self, cluster, role_rules, cluster_role_rules):
        self.cluster = cluster
        self.namespace = DEPLOY_NAMESPACE
        self.role_rules = role_rules
        self.cluster_role_rules = cluster_role_rules


@pytest.fixture(scope='module')
def deployed(real_cluster, tmp_path_factory):
    real_cluster.seed(BASE_TARGET)
    kubeconfig = real_cluster.write_kubeconfig(str(tmp_path_factory.mktemp('rbac') / 'kubeconfig'), namespace=BASE_TARGET)
    run = deploy(real_cluster, kubeconfig, DEPLOY_NAMESPACE, BASE_TARGET)
    assert run.rc == 0, run
    role = real_cluster.get('rbac.authorization.k8s.io/v1', 'Role', BASE_TARGET, DEPLOY_NAME)
    cluster_role = real_cluster.get('rbac.authorization.k8s.io/v1', 'ClusterRole', None, '%s-%s' % (DEPLOY_NAMESPACE, DEPLOY_NAME))
    assert role['rules'] == ROLE_RULES and cluster_role['rules'] == CLUSTER_ROLE_RULES
    yield Deployed(real_cluster, role['rules'], cluster_role['rules'])
    for namespace in (DEPLOY_NAMESPACE, BASE_TARGET):
        real_cluster.delete_namespace(namespace)
    for kind in ('ClusterRoleBinding', 'ClusterRole'):
        real_cluster.delete('rbac.authorization.k8s.io/v1', kind, None, '%s-%s' % (DEPLOY_NAMESPACE, DEPLOY_NAME))


def wait_authorised(cluster, user, namespace, resource='pods', verb='list', group=''):
    """RBAC's caches follow new bindings within moments: wait until the authoriser sees this one."""
    review = {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SubjectAccessReview',
              'spec': {'user': user, 'groups': ['system:serviceaccounts', 'system:authenticated'],
                       'resourceAttributes': {'namespace': namespace, 'verb': verb, 'resource': resource, 'group': group}}}
    cluster.wait_for('%s allowed to %s %s in %s' % (user, verb, resource, namespace),
                     lambda: cluster.api('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', review)['status'].get('allowed'), 30)


def run_scenario(cluster, view, namespace, tmp_path, playbook):
    """One scenario of test_rbac: set up as the admin, then the playbook with ``view``'s token; returns the run."""
    responder = RealResponder(view, tmp_path, namespace)
    endpoints = Endpoints()
    try:
        kind, labels, extra = prepare(playbook, view, responder, tmp_path, endpoints, namespace)
        view.clear_requests()
        started = time.monotonic()
        run = responder.run(playbook.replace('_wiped', ''), alert_payload(kind, fingerprint(playbook), labels=labels), extra=extra)
        run.seconds = time.monotonic() - started
        run.record = responder.records()
    finally:
        endpoints.stop()
    return run


def record_usage(view, namespace, scenario):
    for request in view.requests:
        used = usage(request)
        if used is None:
            continue
        group, resource, verb, request_namespace = used
        scope = 'cluster' if request_namespace is None else 'namespace' if request_namespace == namespace else 'elsewhere'
        USED.setdefault((scope, group, resource, verb), set()).add(scenario)


@pytest.mark.parametrize('playbook', sorted(SCENARIOS))
def test_playbook_under_the_service_account(real_cluster, deployed, real_namespace, tmp_path, playbook):
    grant(real_cluster, real_namespace, deployed.namespace, deployed.role_rules)
    view = service_account_view(real_cluster, deployed.namespace, str(tmp_path / 'kubeconfig-sa'), target_namespace=real_namespace)
    wait_authorised(real_cluster, view.user, real_namespace)
    run = run_scenario(real_cluster, view, real_namespace, tmp_path, playbook)
    assert run.rc == 0, '\n'.join(failures(run)) or run
    forbidden = [(r['method'], r['path'], r['message']) for r in view.forbidden()]
    assert forbidden == [], 'the real authoriser refused: %s' % forbidden
    assert view.requests, 'the playbook made no API request under the ServiceAccount'
    record_usage(view, real_namespace, playbook)
    DURATIONS[playbook] = run.seconds


def test_launcher_first_response_under_the_service_account(real_cluster, deployed, real_namespace, tmp_path):
    """The launcher's in-process isolation (its own code, in this process) with the ServiceAccount's token."""
    grant(real_cluster, real_namespace, deployed.namespace, deployed.role_rules)
    view = service_account_view(real_cluster, deployed.namespace, str(tmp_path / 'kubeconfig-sa'), target_namespace=real_namespace)
    wait_authorised(real_cluster, view.user, real_namespace)
    config = launcher_module('config').build({
        'backend': 'record', 'auth': {'bearer_token': 'x' * 32}, 'incident_store': str(tmp_path / 'store'),
        'incident_namespace': real_namespace, 'spool': {'dir': str(tmp_path / 'spool')},
        'first_response': {'enabled': True, 'kubeconfig': view.kubeconfig}})
    responder = launcher_module('first_response').FirstResponder(
        config, load_catalog({}), launcher_module('log').JsonLogger(stream=io.StringIO()))
    view.clear_requests()
    outcome = responder.run({'id': 'rbac-real-1', 'category': 'security', 'payload': alert_payload('security_breach', 'f1a57ae5b0c5e0a1')})
    assert outcome['result'] == 'success' and outcome['changed'], outcome
    assert real_cluster.get('networking.k8s.io/v1', 'NetworkPolicy', real_namespace, 'incident-isolation') is not None
    assert view.forbidden() == [] and view.writes()
    record_usage(view, real_namespace, 'launcher_first_response')


def test_escalation_under_the_service_account(real_cluster, deployed, tmp_path):
    """The escalation CronJob's playbook with the ServiceAccount's token: it escalates, and needs no API call at all."""
    view = service_account_view(real_cluster, deployed.namespace, str(tmp_path / 'kubeconfig-sa'))
    store = str(tmp_path / 'store')
    ids = seed_overdue(store)
    view.clear_requests()
    run = run_playbook(REPO_ROOT + '/playbooks/escalate.yml', {'incident_store': store}, inventory=ESCALATE_INVENTORY,
                       env={'K8S_AUTH_KUBECONFIG': view.kubeconfig})
    assert run.rc == 0, run
    escalated = {item['id'] for item in run.result('Escalation - raise every overdue incident by one level')['escalated']}
    assert {ids['p1_overdue'], ids['p2_overdue']} <= escalated and ids['drill'] not in escalated
    assert view.requests == [] and view.forbidden() == []


def test_the_rules_allow_nothing_unused():
    """Runs after the scenarios: every permission the rules grant was used by some scenario, in that scope."""
    if not USED:
        pytest.skip('the scenarios did not run in this process (run the whole module)')
    granted = {('namespace',) + rule for rule in expand(ROLE_RULES)} | {('cluster',) + rule for rule in expand(CLUSTER_ROLE_RULES)}
    assert not [key for key in USED if key[0] == 'elsewhere'], 'requests outside the response namespace'
    unused = sorted(granted - set(USED))
    assert not unused, 'the rules allow calls no playbook makes: %s' % unused


RULES = [('namespace', index) for index in range(len(ROLE_RULES))] + [('cluster', index) for index in range(len(CLUSTER_ROLE_RULES))]


def rule_id(rule):
    scope, index = rule
    entry = (ROLE_RULES if scope == 'namespace' else CLUSTER_ROLE_RULES)[index]
    return '%s-%s-%s' % (scope, '+'.join(entry['resources']).replace('/', '_'), '+'.join(entry['verbs']))


@pytest.mark.parametrize('rule', RULES, ids=[rule_id(rule) for rule in RULES])
def test_removing_a_rule_makes_a_playbook_fail(real_cluster, deployed, real_namespace, tmp_path, rule):
    """Without any one rule, the (quickest) scenario that used it is refused by the API server and fails."""
    if not USED:
        pytest.skip('the scenarios did not run in this process (run the whole module)')
    scope, index = rule
    rules = {'namespace': list(deployed.role_rules), 'cluster': list(deployed.cluster_role_rules)}
    removed = rules[scope].pop(index)
    permissions = {(scope,) + item for item in expand([removed])}
    users = sorted(set().union(*(USED.get(p, set()) for p in permissions)) - {'launcher_first_response'},
                   key=lambda name: DURATIONS.get(name, 1e9))
    assert users, 'no scenario used %s' % removed
    name = 'exp-%d' % next(_NUMBER)
    real_cluster.create({'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': {'name': name, 'namespace': deployed.namespace}})
    grant(real_cluster, real_namespace, deployed.namespace, rules['namespace'], name=name, service_account=name)
    cluster_name = '%s-%s' % (name, real_namespace)
    real_cluster.create({'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRole', 'metadata': {'name': cluster_name},
                         'rules': rules['cluster']})
    real_cluster.create({'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRoleBinding', 'metadata': {'name': cluster_name},
                         'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': cluster_name},
                         'subjects': [{'kind': 'ServiceAccount', 'name': name, 'namespace': deployed.namespace}]})
    try:
        view = service_account_view(real_cluster, deployed.namespace, str(tmp_path / 'kubeconfig-exp'), name=name,
                                    target_namespace=real_namespace)
        for scope_name, remaining in rules.items():
            group, resource, verb = min(item for item in expand(remaining) if '/' not in item[1])
            wait_authorised(real_cluster, view.user, real_namespace if scope_name == 'namespace' else None, resource, verb, group)
        run = run_scenario(real_cluster, view, real_namespace, tmp_path, users[0])
        forbidden = view.forbidden()
        assert forbidden, 'nothing was refused without %s in %s' % (removed, users[0])
        # The refusal is never silent: the run fails, or its record shows what could not be done (an action failed,
        # was blocked or needs a person, or the evidence capture names what it could not read).
        noticed = [a['name'] for record in run.record for a in record['actions']
                   if a['result'] in ('failed', 'blocked', 'needs_person')
                   or any(((a.get('details') or {}).get('gaps') or {}).get(kind) for kind in ('logs', 'previous_logs', 'other'))]
        assert run.rc != 0 or noticed, '%s succeeded without %s, and its record does not show the refusal' % (users[0], removed)
    finally:
        for kind in ('ClusterRoleBinding', 'ClusterRole'):
            real_cluster.delete('rbac.authorization.k8s.io/v1', kind, None, cluster_name)
