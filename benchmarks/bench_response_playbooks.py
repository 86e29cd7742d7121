# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wall time of every response playbook on the emulated cluster (seeded with slurm-exporter), run and check mode.

Usage: python benchmarks/bench_response_playbooks.py [--repeat 1] [--only security_breach,service_outage]

Each playbook runs as a real ansible-playbook process against a fresh emulator, with the
scenario its plan expects (a known-good ConfigMap for data_loss, a backup directory for
disaster_recovery, ...), then once more in check mode on another fresh emulator. The baseline,
measured in the same run, is one ansible-playbook process running a single
kubernetes.core.k8s_info task against the same emulator: the fixed cost every playbook pays.
The table gives the wall time, the number of actions the plan ran, the write requests the API
server received (0 in check mode), and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _common import REPO_ROOT, baseline_playbook, playbook_environment, print_table, use_checkout

COLLECTIONS = use_checkout()

from tests.emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position

NS = 'slurm-exporter'
FIXTURES = os.path.join(REPO_ROOT, 'tests', 'fixtures', 'slurm-exporter', 'kubernetes-ha')
PLAYBOOKS = ['security_breach', 'vulnerability_exploit', 'malware_detection', 'compliance_violation', 'service_outage',
             'performance_degradation', 'data_loss', 'api_failure', 'resource_exhaustion', 'network_partition', 'cluster_failure',
             'disaster_recovery']
BASELINE = baseline_playbook('slurm-exporter')


def environment(kubeconfig):
    return playbook_environment(COLLECTIONS, kubeconfig)


def prepare(kube, playbook, workdir):
    """The scenario the plan expects; returns extra vars."""
    extra = {}
    if playbook == 'data_loss':
        live = kube.get('v1', 'ConfigMap', NS, 'slurm-exporter-config')
        kube.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'slurm-exporter-config-known-good', 'namespace': NS},
                     'data': dict(live['data'])})
    elif playbook == 'disaster_recovery':
        backup = os.path.join(workdir, 'backup')
        os.makedirs(backup, exist_ok=True)
        for name in ('configmap', 'deployment', 'service', 'secrets', 'networkpolicy'):
            shutil.copy(os.path.join(FIXTURES, name + '.yaml.upstream'), os.path.join(backup, name + '.yaml'))
        extra['incident_backup_dir'] = backup
    elif playbook == 'network_partition':
        extra['incident_known_good_network_policy'] = os.path.join(FIXTURES, 'networkpolicy.yaml.upstream')
        extra['incident_slurmrestd_url'] = 'http://127.0.0.1:9'
    elif playbook == 'api_failure':
        extra['incident_slurmrestd_url'] = 'http://127.0.0.1:9'
    return extra


def run_one(playbook, workdir, check):
    kube = Emulator.start(seed=True)
    try:
        kubeconfig = kube.write_kubeconfig(os.path.join(workdir, 'kubeconfig'))
        store = os.path.join(workdir, 'store-%s-%s' % (playbook, 'check' if check else 'run'))
        alert = os.path.join(workdir, 'alert-%s.json' % playbook)
        kind = 'cluster_failure' if playbook == 'disaster_recovery' else playbook
        moment = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
        with open(alert, 'w', encoding='utf-8') as handle:
            json.dump({'version': '4', 'status': 'firing', 'receiver': 'bench', 'alerts': [{
                'status': 'firing', 'labels': {'alertname': 'Bench', 'incident_type': kind}, 'annotations': {},
                'startsAt': moment, 'fingerprint': hashlib.sha256(playbook.encode()).hexdigest()[:16]}]}, handle)
        extra = {'alert_file': alert, 'incident_store': store, 'incident_wait_timeout': 30, 'incident_actor': 'bench'}
        extra.update(prepare(kube, playbook, workdir))
        kube.clear_requests()
        command = ['ansible-playbook', '-i', os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'),
                   os.path.join(REPO_ROOT, 'playbooks', playbook + '.yml'), '-e', json.dumps(extra)] + (['--check'] if check else [])
        start = time.perf_counter()
        done = subprocess.run(command, env=environment(kubeconfig), capture_output=True, text=True, timeout=900, cwd=REPO_ROOT, check=False)
        elapsed = time.perf_counter() - start
        actions = 0
        if not check:
            records = [name for name in os.listdir(store) if name.startswith('incident-')] if os.path.isdir(store) else []
            for name in records:
                with open(os.path.join(store, name), encoding='utf-8') as handle:
                    actions = len(json.load(handle)['actions'])
        return {'rc': done.returncode, 'seconds': elapsed, 'writes': len(kube.writes()), 'actions': actions,
                'stderr': done.stderr[-400:]}
    finally:
        kube.stop()


def baseline(workdir, repeat):
    kube = Emulator.start(seed=True)
    try:
        kubeconfig = kube.write_kubeconfig(os.path.join(workdir, 'kubeconfig-baseline'))
        path = os.path.join(workdir, 'baseline.yml')
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(BASELINE)
        samples = []
        for _attempt in range(max(repeat, 3)):
            start = time.perf_counter()
            subprocess.run(['ansible-playbook', '-i', os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'), path],
                           env=environment(kubeconfig), capture_output=True, check=True, timeout=300, cwd=REPO_ROOT)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)
    finally:
        kube.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=1, help='runs per playbook and mode (median reported)')
    parser.add_argument('--only', default='', help='comma-separated playbooks (default: all 12)')
    args = parser.parse_args()
    playbooks = [name for name in args.only.split(',') if name] or PLAYBOOKS
    workdir = tempfile.mkdtemp(prefix='bench-response-')
    try:
        base = baseline(workdir, args.repeat)
        rows = []
        for playbook in playbooks:
            runs = [run_one(playbook, workdir, check=False) for _attempt in range(args.repeat)]
            checks = [run_one(playbook, workdir, check=True) for _attempt in range(args.repeat)]
            run_time = statistics.median(r['seconds'] for r in runs)
            check_time = statistics.median(r['seconds'] for r in checks)
            status = 'ok' if all(r['rc'] == 0 for r in runs + checks) else 'FAILED rc=%s' % [r['rc'] for r in runs + checks]
            rows.append([playbook, runs[-1]['actions'], '%.1f' % run_time, '%.1f' % check_time, runs[-1]['writes'], checks[-1]['writes'],
                         '%.1fx' % (run_time / base), status])
            print('%s: %s' % (playbook, status), file=sys.stderr)
        print_table('Response playbooks on the emulated cluster (baseline: one k8s_info playbook, %.2f s, same run)' % base,
                    ['playbook', 'actions', 'run s', 'check s', 'writes', 'check writes', 'run / baseline', 'status'], rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
