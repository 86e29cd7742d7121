# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""k8s_evidence against a kubernetes.core.k8s_info + k8s_log loop, on the emulated cluster.

Usage: python benchmarks/bench_k8s_evidence.py [--sizes 50,200,1000] [--baseline-sizes 50,200]
                                               [--log-mib 1] [--memory-check-pods 50 --memory-check-mib 16]

Each size starts the emulator in its own process (python -m tests.emulator) with that many
pods of 2 containers (an init container and the exporter), every log generated at the given
size. Both sides run as real ansible-playbook processes; the table gives wall time, the peak
RSS of the largest process of the run (ansible-playbook or a module), and the speed-up
against the loop at the same size, measured in the same run. The loop keeps every log in its
registered results (that is what a playbook loop does), so it runs at the smaller sizes only.
The last rows repeat one size with much larger logs: k8s_evidence's memory must not grow.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from _common import REPO_ROOT, print_table, use_checkout

COLLECTIONS = use_checkout()
NS = 'slurm-exporter'

MEASURE = r'''
import resource, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], 'wb') as out:
    done = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.PIPE, text=True)
elapsed = time.perf_counter() - start
print('%d %.3f %d' % (done.returncode, elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.stderr.write(done.stderr[-3000:] if done.returncode else '')
'''


def playbook(path, tasks):
    play = [{'name': 'bench', 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
             'vars': {'ansible_python_interpreter': sys.executable}, 'tasks': tasks}]
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(play, handle)
    return path


def measure(playbook_path, kubeconfig, timeout, callback='ansible.builtin.default'):
    """``(seconds, peak RSS MB, path of the run's stdout)`` of one ansible-playbook run."""
    output = playbook_path + '.out'
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK=callback,
               ANSIBLE_COLLECTIONS_PATH=COLLECTIONS + os.pathsep + os.path.expanduser('~/.ansible/collections'),
               K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR='1',
               ANSIBLE_CONFIG=os.path.join(REPO_ROOT, 'ansible.cfg'))
    done = subprocess.run([sys.executable, '-c', MEASURE, output, 'ansible-playbook', '-i', 'localhost,', playbook_path],
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)
    fields = done.stdout.split()
    if len(fields) != 3 or fields[0] != '0':
        raise RuntimeError('run failed: %s %s' % (done.stdout, done.stderr[-3000:]))
    return float(fields[1]), int(fields[2]) / 1024.0, output


class EmulatorProcess:
    def __init__(self, pods, log_bytes, workdir):
        self.kubeconfig = os.path.join(workdir, 'kubeconfig')
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'tests.emulator', '--kubeconfig', self.kubeconfig, '--pods', str(max(pods - 3, 0)),
             '--log-bytes', str(log_bytes)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith('kube emulator:'):
            raise RuntimeError('the emulator did not start: %s %s' % (line, self.process.stderr.read()))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def evidence_run(workdir, kubeconfig, timeout):
    store = os.path.join(workdir, 'store')
    path = playbook(os.path.join(workdir, 'evidence.yml'), [{
        'name': 'capture', 'slurm_exporter.incident_response.k8s_evidence': {
            'namespace': NS, 'label_selectors': ['app=slurm-exporter'], 'store': store, 'archive': True}}])
    try:
        seconds, rss, output = measure(path, kubeconfig, timeout, callback='ansible.builtin.json')
        with open(output, encoding='utf-8') as handle:
            text = handle.read()
        result = json.loads(text[text.find('{'):])['plays'][0]['tasks'][0]['hosts']['localhost']
        counts = result['counts']
        return seconds, rss, '%d pods, %d logs, %d errors' % (counts.get('pods', 0), counts.get('logs', 0), len(result['errors']))
    finally:
        shutil.rmtree(store, ignore_errors=True)


def loop_run(workdir, kubeconfig, timeout):
    path = playbook(os.path.join(workdir, 'loop.yml'), [
        {'name': 'pods', 'kubernetes.core.k8s_info': {'kind': 'Pod', 'namespace': NS, 'label_selectors': ['app=slurm-exporter']},
         'register': 'pods'},
        {'name': 'logs', 'kubernetes.core.k8s_log': {'namespace': NS, 'name': '{{ item.0 }}', 'container': '{{ item.1 }}'},
         'loop': "{{ pods.resources | map(attribute='metadata.name') | product(['connectivity-check', 'slurm-exporter']) | list }}",
         'register': 'logs'},
    ])
    seconds, rss, output = measure(path, kubeconfig, timeout)
    logs = 0
    with open(output, encoding='utf-8', errors='replace') as handle:
        for line in handle:
            logs += line.startswith('ok: [localhost] => (item=')
    pods = logs // 2
    return seconds, rss, '%d pods, %d logs' % (pods, logs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='50,200,1000')
    parser.add_argument('--baseline-sizes', default='50,200')
    parser.add_argument('--log-mib', type=float, default=1.0)
    parser.add_argument('--memory-check-pods', type=int, default=50)
    parser.add_argument('--memory-check-mib', type=float, default=16.0)
    parser.add_argument('--timeout', type=int, default=1800, help='seconds allowed for one playbook run')
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(',') if size]
    baseline_sizes = {int(size) for size in args.baseline_sizes.split(',') if size}
    rows = []
    workdir = tempfile.mkdtemp(prefix='bench-evidence-')
    try:
        runs = [(size, args.log_mib) for size in sizes]
        if args.memory_check_pods:
            runs.append((args.memory_check_pods, args.memory_check_mib))
        for pods, mib in runs:
            emulator = EmulatorProcess(pods, int(mib * 1024 * 1024), workdir)
            try:
                seconds, rss, captured = evidence_run(workdir, emulator.kubeconfig, args.timeout)
                loop = None
                if pods in baseline_sizes and mib == args.log_mib:
                    loop = loop_run(workdir, emulator.kubeconfig, args.timeout)
                    rows.append([pods, '%g MiB' % mib, 'k8s_info + k8s_log loop (baseline)', '%.1f' % loop[0], '%.0f' % loop[1],
                                 '1.0x', loop[2]])
                rows.append([pods, '%g MiB' % mib, 'k8s_evidence', '%.1f' % seconds, '%.0f' % rss,
                             '%.1fx' % (loop[0] / seconds) if loop else '-', captured])
                sys.stderr.write('done: %d pods, %g MiB\n' % (pods, mib))
            finally:
                emulator.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table('Evidence capture: %s pods x 2 containers; wall time and peak RSS of the largest process (same run)'
                % '/'.join(str(size) for size in sizes),
                ['pods', 'log per container', 'method', 'seconds', 'peak RSS MB', 'speed-up vs loop', 'captured'], rows)


if __name__ == '__main__':
    main()
