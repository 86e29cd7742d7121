# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wall time of the security breach response on the real control plane versus the emulator, in the same run.

Usage: python benchmarks/bench_real_vs_emulator.py [--repeat 3]

Each repeat runs playbooks/security_breach.yml as a real ansible-playbook process, with the same scenario (the
attacker's change rolled out as revision 2, then the alert), once against a fresh emulator and once against a
freshly seeded namespace of the real control plane (tests/kube: kube-apiserver, controller manager, scheduler, etcd,
kwok; built or taken from the cache, started once for the whole run). The baseline, measured in the same run on each
target, is one ansible-playbook process running a single kubernetes.core.k8s_info task: the fixed cost every
playbook pays. The table gives medians and the ratio of the real control plane to the emulator.
"""

from __future__ import annotations

import argparse
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
from tests.kube.cluster import Cluster  # noqa: E402  pylint: disable=wrong-import-position

BASELINE = baseline_playbook('"{{ incident_namespace }}"')
TAMPER = [{'op': 'replace', 'path': '/spec/template/spec/containers/0/image', 'value': 'evil.example/miner:latest'},
          {'op': 'add', 'path': '/spec/template/spec/containers/-', 'value': {'name': 'backdoor', 'image': 'evil.example/shell:1'}}]


def environment(kubeconfig):
    return playbook_environment(COLLECTIONS, kubeconfig)


def alert(path, fingerprint):
    moment = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump({'version': '4', 'status': 'firing', 'receiver': 'bench', 'alerts': [{
            'status': 'firing', 'labels': {'alertname': 'Bench', 'incident_type': 'security_breach'}, 'annotations': {},
            'startsAt': moment, 'fingerprint': fingerprint}]}, handle)
    return path


def playbook(path, kubeconfig, extra, timeout=900):
    command = ['ansible-playbook', '-i', os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'), path, '-e', json.dumps(extra)]
    start = time.perf_counter()
    done = subprocess.run(command, env=environment(kubeconfig), capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                          check=False)
    return time.perf_counter() - start, done


class EmulatorTarget:
    name = 'emulator'

    def __init__(self, workdir):
        self.workdir = workdir
        self.emulator = None

    def prepare(self, index):
        """A fresh emulator, tampered with; returns (kubeconfig, namespace)."""
        if self.emulator is not None:
            self.emulator.stop()
        self.emulator = Emulator.start(seed=True)
        kubeconfig = self.emulator.write_kubeconfig(os.path.join(self.workdir, 'kubeconfig-emulator-%d' % index))
        import requests  # pylint: disable=import-outside-toplevel
        requests.patch(self.emulator.url + '/apis/apps/v1/namespaces/slurm-exporter/deployments/slurm-exporter',
                       data=json.dumps(TAMPER), timeout=30,
                       headers={'Authorization': 'Bearer %s' % self.emulator.token, 'Content-Type': 'application/json-patch+json'}
                       ).raise_for_status()
        return kubeconfig, 'slurm-exporter'

    def close(self):
        if self.emulator is not None:
            self.emulator.stop()


class RealTarget:
    name = 'real control plane'

    def __init__(self, workdir):
        self.workdir = workdir
        self.cluster = Cluster.start(workdir=os.path.join(workdir, 'cluster'), out=sys.stderr)
        print('control plane started in %.1f s' % self.cluster.started_seconds, file=sys.stderr)

    def prepare(self, index):
        namespace = 'bench-%d' % index
        self.cluster.seed(namespace)
        self.cluster.api('PATCH', '/apis/apps/v1/namespaces/%s/deployments/slurm-exporter' % namespace, TAMPER,
                         content_type='application/json-patch+json')
        self.cluster.wait_for('revision 2', lambda: self.cluster.get('apps/v1', 'Deployment', namespace, 'slurm-exporter')
                              ['metadata']['annotations'].get('deployment.kubernetes.io/revision') == '2', 60)
        self.cluster.wait_rollout(namespace, 'slurm-exporter')
        return self.cluster.write_kubeconfig(os.path.join(self.workdir, 'kubeconfig-real-%d' % index), namespace=namespace), namespace

    def close(self):
        self.cluster.stop()


def measure(target, workdir, repeat):
    base_path = os.path.join(workdir, 'baseline.yml')
    with open(base_path, 'w', encoding='utf-8') as handle:
        handle.write(BASELINE)
    breach, base, status = [], [], []
    for index in range(repeat):
        kubeconfig, namespace = target.prepare(index)
        time.sleep(1.1)  # the alert starts after the attacker's ReplicaSet (API times have 1 s resolution)
        extra = {'alert_file': alert(os.path.join(workdir, 'alert-%s-%d.json' % (target.name[:4], index)), '%016x' % (0xbe00 + index)),
                 'incident_store': os.path.join(workdir, 'store-%s-%d' % (target.name[:4], index)), 'incident_wait_timeout': 60,
                 'incident_actor': 'bench', 'incident_namespace': namespace}
        seconds, done = playbook(os.path.join(REPO_ROOT, 'playbooks', 'security_breach.yml'), kubeconfig, extra)
        breach.append(seconds)
        status.append(done.returncode)
        if done.returncode:
            print('%s: security_breach rc=%d\n%s' % (target.name, done.returncode, done.stdout[-2000:]), file=sys.stderr)
        seconds, done = playbook(base_path, kubeconfig, {'incident_namespace': namespace}, timeout=300)
        base.append(seconds)
    return statistics.median(breach), statistics.median(base), status


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3, help='runs per target (median reported)')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='bench-real-')
    targets = []
    try:
        targets = [EmulatorTarget(workdir), RealTarget(workdir)]
        results = {target.name: measure(target, workdir, args.repeat) for target in targets}
        emulator_breach = results['emulator'][0]
        rows = []
        for name, (breach, base, status) in results.items():
            rows.append([name, '%.1f' % breach, '%.2f' % base, '%.1fx' % (breach / base), '%.2fx' % (breach / emulator_breach),
                         'ok' if not any(status) else 'FAILED rc=%s' % status])
        print_table('Security breach response, real control plane vs emulator (median of %d, same run)' % args.repeat,
                    ['target', 'breach s', 'baseline s', 'breach / baseline', 'vs emulator', 'status'], rows)
    finally:
        for target in targets:
            target.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
