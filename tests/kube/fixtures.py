# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest fixtures and hooks of the real-cluster tier (imported by tests/conftest.py).

- ``real_cluster`` (session): the control plane of tests/kube, built or taken from the cache, started once per test
  process; skipped with the reason only when the binaries cannot be had (no Go, no module proxy, a failed build).
- ``real_namespace``: a namespace of its own for one test, seeded with the slurm-exporter manifests (the Deployment
  rolled out, its pods Running on kwok's nodes); deleted afterwards.
- ``real_kube``: a :class:`~tests.kube.view.KubeView` of the admin in that namespace (the emulator's interface).

Every test that used the real cluster is counted; the count is written to ``.cache/realkube-summary.txt`` (or
``$REALKUBE_SUMMARY``) and printed at the end of the run, and by ``make test``.
"""

from __future__ import annotations

import itertools
import os
import sys

import pytest

from tests.kube import build
from tests.kube.cluster import NAMESPACE, Cluster, ClusterError
from tests.kube.view import KubeView

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUMMARY = os.environ.get('REALKUBE_SUMMARY') or os.path.join(REPO_ROOT, '.cache', 'realkube-summary.txt')
PROPERTY = 'real_api_server'
_COUNTER = itertools.count(1)
_OUTCOMES = {}


@pytest.fixture(scope='session')
def real_cluster(tmp_path_factory):
    """The running real control plane (one per test process)."""
    try:
        bin_dir = build.ensure_binaries(out=sys.stderr)
    except build.BuildError as error:
        pytest.skip('the real control plane (Kubernetes %s) cannot be built here: %s' % (build.KUBERNETES_VERSION, error))
    try:
        cluster = Cluster.start(workdir=str(tmp_path_factory.mktemp('real-cluster')), bin_dir=bin_dir, out=sys.stderr)
    except ClusterError as error:
        pytest.fail('the real control plane did not start: %s' % error)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def real_namespace(real_cluster, request):
    """A fresh namespace seeded with the slurm-exporter manifests; its name."""
    request.node.user_properties.append((PROPERTY, True))
    namespace = '%s-%d' % (NAMESPACE, next(_COUNTER))
    real_cluster.seed(namespace)
    try:
        yield namespace
    finally:
        real_cluster.delete_namespace(namespace)


@pytest.fixture
def real_kube(real_cluster, real_namespace, tmp_path):
    """The admin's view (kubeconfig in the test's namespace, the audit log as the request log)."""
    kubeconfig = real_cluster.write_kubeconfig(str(tmp_path / 'kubeconfig-admin'), namespace=real_namespace)
    view = KubeView(real_cluster, kubeconfig)
    view.namespace = real_namespace
    return view


@pytest.fixture
def uses_real_cluster(real_cluster, request):
    """Count a test that uses ``real_cluster`` without a seeded namespace."""
    request.node.user_properties.append((PROPERTY, True))
    return real_cluster


def pytest_runtest_logreport(report):
    """Count the tests that ran against the real API server (xdist: reports reach the controller)."""
    if PROPERTY not in dict(report.user_properties):
        return
    if report.when == 'call' or (report.when == 'setup' and report.outcome != 'passed'):
        outcome = 'xfailed' if hasattr(report, 'wasxfail') and report.outcome == 'skipped' else report.outcome
        _OUTCOMES[report.nodeid] = outcome


def summary_line():
    counts = {}
    for outcome in _OUTCOMES.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    ran = sum(count for outcome, count in counts.items() if outcome != 'skipped')
    details = ', '.join('%s %d' % (outcome, counts[outcome]) for outcome in sorted(counts))
    return 'tests against the real API server (Kubernetes %s): %d (%s)' % (build.KUBERNETES_VERSION, ran, details or 'none')


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, 'workerinput') or not _OUTCOMES:
        return
    line = summary_line()
    terminalreporter.write_line(line)
    os.makedirs(os.path.dirname(SUMMARY), exist_ok=True)
    with open(SUMMARY, 'a', encoding='utf-8') as handle:
        handle.write(line + '\n')
