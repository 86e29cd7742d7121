# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the workload's Lease costs the security breach response, with the Lease versus without, same run.

Usage: python benchmarks/bench_lease.py [--cycles 20] [--playbooks 2]

1. The breach's workload steps (isolate, scale to 0, rotate the JWT and TLS Secrets, restore the template, scale
   back, lift the isolation) through module_utils/workload.py against the emulated cluster, as k8s_workload runs
   them: with the Lease (acquire, renew thread, release; 2-3 extra requests per step) and, as the baseline, the very
   same handlers and guards without it (a subclass that skips the Lease: benchmark code only).
2. The whole security_breach playbook (ansible-playbook) with the Lease, for scale: the Lease's share of its wall time.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import tempfile
import time

from _common import REPO_ROOT, print_table, use_checkout

COLLECTIONS = use_checkout()

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import workload  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes  # noqa: E402
from tests.emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position

NS = 'slurm-exporter'
SECRET = {'jwt-token': base64.b64encode(b'x' * 40).decode()}
TLS = {'tls.crt': base64.b64encode(b'cert').decode(), 'tls.key': base64.b64encode(b'key').decode()}


class WithoutLease(workload.Workload):
    """The same steps and guards, without the workload's Lease and the flapping guard's memory kept on it (the baseline
    of this benchmark only)."""

    def perform(self, action, params=None, secret_data=None):
        handler = getattr(self, '_do_' + action)
        params = dict(params or {})
        outcome = handler(params, secret_data) if secret_data is not None else handler(params)
        outcome.setdefault('result', 'success')
        return outcome


def breach_steps(kube, cls, number):
    incident = {'id': 'INC-20261202-%04d' % number, 'category': 'security',
                'actions': [{'name': 'capture_evidence', 'result': 'success', 'details': {'gaps': {'logs': []}}}]}
    target = cls(kube, NS, 'slurm-exporter', incident, {'app': 'slurm-exporter'}, 'slurm-exporter',
                 workload.Settings(min_interval={kind: 0 for kind in workload.KINDS}, wait_timeout=30))
    template = target.deployment()['spec']['template']
    for action, params, secret in (('isolate_pods', {}, None), ('scale_down', {}, None),
                                   ('rotate_credentials', {'name': 'slurm-credentials'}, SECRET),
                                   ('rotate_tls', {'name': 'slurm-exporter-tls'}, TLS),
                                   ('restore_known_good', {'template': template}, None), ('scale_restore', {}, None),
                                   ('lift_isolation', {}, None)):
        outcome = target.perform(action, params, secret)
        assert outcome['result'] == 'success', outcome


def in_process(cycles):
    rows = {}
    with Emulator.start(seed=True) as emulator:
        with tempfile.TemporaryDirectory() as tmp:
            kube = Kubernetes({'kubeconfig': emulator.write_kubeconfig(os.path.join(tmp, 'kubeconfig'))},
                              retry={'total': 2, 'backoff_factor': 0.05})
            try:
                for cls, name in ((WithoutLease, 'without'), (workload.Workload, 'with')):
                    breach_steps(kube, cls, 9999)  # warm up connections and caches
                samples = {'without': [], 'with': []}
                requests = {}
                for cycle in range(cycles):
                    # Alternate, so that drift of a noisy machine hits both variants alike.
                    for cls, name in ((WithoutLease, 'without'), (workload.Workload, 'with')):
                        emulator.clear_requests()
                        start = time.perf_counter()
                        breach_steps(kube, cls, cycle + 1)
                        samples[name].append(time.perf_counter() - start)
                        requests[name] = len(emulator.requests)
                for name in ('without', 'with'):
                    rows[name] = (statistics.median(samples[name]), min(samples[name]), requests[name])
            finally:
                kube.close()
    return rows


def playbook(runs):
    times = []
    for _run in range(runs):
        with Emulator.start(seed=True) as emulator, tempfile.TemporaryDirectory() as tmp:
            alert = {'version': '4', 'status': 'firing', 'alerts': [{
                'status': 'firing', 'fingerprint': 'be0c%04d' % _run, 'startsAt': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                'labels': {'alertname': 'SlurmExporterSuspiciousAccess', 'incident_type': 'security_breach'}, 'annotations': {}}]}
            path = os.path.join(tmp, 'alert.json')
            with open(path, 'w', encoding='utf-8') as handle:
                json.dump(alert, handle)
            env = dict(os.environ, K8S_AUTH_KUBECONFIG=emulator.write_kubeconfig(os.path.join(tmp, 'kubeconfig')),
                       ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([COLLECTIONS, os.path.expanduser('~/.ansible/collections')]),
                       ANSIBLE_CONFIG=os.path.join(REPO_ROOT, 'ansible.cfg'))
            start = time.perf_counter()
            done = subprocess.run(['ansible-playbook', os.path.join(REPO_ROOT, 'playbooks', 'security_breach.yml'),
                                   '-i', os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'),
                                   '-e', json.dumps({'alert_file': path, 'incident_store': os.path.join(tmp, 'store'),
                                                     'incident_wait_timeout': 60})],
                                  env=env, capture_output=True, text=True, check=False, timeout=900)
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit('security_breach failed:\n%s' % done.stdout[-3000:])
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cycles', type=int, default=20, help='breach step sequences per variant (default 20)')
    parser.add_argument('--playbooks', type=int, default=2, help='security_breach playbook runs (default 2; 0 to skip)')
    options = parser.parse_args()
    rows = in_process(options.cycles)
    base = rows['without'][0]
    print_table('The breach\'s 7 workload steps through module_utils/workload.py, %d runs each (median s)' % options.cycles,
                ['variant', 'median s', 'min s', 'API requests', 'vs without the Lease'],
                [['without the Lease (baseline)', '%.3f' % rows['without'][0], '%.3f' % rows['without'][1], rows['without'][2], '1.00x'],
                 ['with the Lease', '%.3f' % rows['with'][0], '%.3f' % rows['with'][1], rows['with'][2],
                  '%.2fx' % (rows['with'][0] / base)]])
    if options.playbooks:
        wall = playbook(options.playbooks)
        overhead = rows['with'][0] - rows['without'][0]
        print_table('The security_breach playbook with the Lease (median of %d runs)' % options.playbooks,
                    ['playbook', 'wall s', 'Lease overhead s', 'Lease share of the wall time'],
                    [['security_breach', '%.1f' % wall, '%.3f' % overhead, '%.1f%%' % (100.0 * overhead / wall)]])


if __name__ == '__main__':
    main()
