# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Alert to containment: from the webhook POST to the isolation NetworkPolicy arriving at the API server.

Usage: python benchmarks/bench_alert_to_containment.py [--alerts 20]

Two paths, measured in the same run against the same emulated cluster (tests/emulator, loopback):

- launcher: ``python -m incident_launcher`` with the first response on (backend ``record``: the alert is
  spooled, the incident opened and the isolation applied in-process, ``isolate_pods`` recorded; the playbook
  that follows in production does not change when the policy arrives, so it is not started here);
- rulebook (baseline): ansible-rulebook with the collection's ``alertmanager`` rulebook and source,
  ``run_playbook`` of ``benchmarks/playbooks/isolate_k8s.yml``, one ``kubernetes.core.k8s`` task that creates
  the same policy: the plain rulebook -> run_playbook -> kubernetes.core.k8s path.

For each of ``--alerts`` security-breach alerts per path (distinct fingerprints, one after the other): the
policy is deleted, the previous run has finished, then the Alertmanager v4 payload is posted with the bearer
token exactly as Alertmanager's webhook_config sends it (posted by this script rather than a live Alertmanager:
Alertmanager adds the same small, constant hop to both paths); the time is from just before the POST to the
``time`` the emulator logged for the policy's create request. Targets (issue 7): launcher p50 < 1 s, and at
least 2x faster than the rulebook at p50. Every wait is bounded; loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from _common import REPO_ROOT, print_table, use_checkout

COLLECTIONS = use_checkout()

from tests.conftest import ansible_env  # noqa: E402  pylint: disable=wrong-import-position
from tests.emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position

NAMESPACE = 'slurm-exporter'
POLICY_PATH = '/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies' % NAMESPACE
BASELINE_PLAYBOOK = os.path.join(REPO_ROOT, 'benchmarks', 'playbooks', 'isolate_k8s.yml')
ARRIVAL_TIMEOUT = 60.0


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def payload(number):
    now = time.strftime('%Y-%m-%dT%H:%M:%S.000000000Z', time.gmtime())
    labels = {'alertname': 'SlurmExporterAuthenticationFailures', 'component': 'incident-response', 'incident_type': 'security_breach',
              'severity': 'critical', 'job': 'slurm-exporter', 'error_type': 'authentication'}
    alert = {'status': 'firing', 'labels': labels, 'annotations': {'summary': 'authentication failures'}, 'startsAt': now,
             'endsAt': '0001-01-01T00:00:00Z', 'generatorURL': 'http://127.0.0.1:9090/graph', 'fingerprint': '%016x' % (0xc0de0000 + number)}
    return json.dumps({'version': '4', 'groupKey': '{}/{component="incident-response"}:{alertname="SlurmExporterAuthenticationFailures"}',
                       'truncatedAlerts': 0, 'status': 'firing', 'receiver': 'incident-response', 'groupLabels': {},
                       'commonLabels': labels, 'commonAnnotations': {}, 'externalURL': 'http://127.0.0.1:9093',
                       'alerts': [alert]}).encode()


def post(port, path, token, body):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        connection.request('POST', path, body=body, headers={'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token,
                                                             'User-Agent': 'Alertmanager/0.27.0'})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def delete_policy(emulator):
    connection = http.client.HTTPConnection('127.0.0.1', int(emulator.url.rsplit(':', 1)[1]), timeout=10)
    try:
        connection.request('DELETE', POLICY_PATH + '/incident-isolation', headers={'Authorization': 'Bearer ' + emulator.token})
        connection.getresponse().read()
    finally:
        connection.close()


def arrival(emulator, since):
    """The logged time of the first policy create after ``since``, waiting at most ARRIVAL_TIMEOUT."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while time.monotonic() < deadline:
        for entry in emulator.requests:
            if entry['time'] >= since and entry['method'] == 'POST' and entry['path'] == POLICY_PATH and not entry.get('dry_run'):
                return entry['time']
        time.sleep(0.005)
    raise RuntimeError('no NetworkPolicy create within %.0f s' % ARRIVAL_TIMEOUT)


class Service:
    def __init__(self, command, env, log_path, cwd=REPO_ROOT):
        self.log_path = log_path
        with open(log_path, 'wb') as log:
            self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                            start_new_session=True)

    def log(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as handle:
            return handle.read()

    def wait_for(self, what, check, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('exited while waiting for %s:\n%s' % (what, self.log()[-3000:]))
            value = check()
            if value:
                return value
            time.sleep(0.05)
        raise RuntimeError('timed out waiting for %s:\n%s' % (what, self.log()[-3000:]))

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def launcher_path(emulator, workdir, alerts, token):
    spool = os.path.join(workdir, 'spool')
    config = {'listen': {'address': '127.0.0.1', 'port': 0}, 'auth': {'bearer_token': token}, 'backend': 'record',
              'spool': {'dir': spool}, 'incident_store': os.path.join(workdir, 'launcher-store'), 'incident_namespace': NAMESPACE,
              'first_response': {'enabled': True, 'kubeconfig': emulator.kubeconfig}, 'collections_path': [COLLECTIONS],
              'workers': {'concurrency': 2}}
    config_path = os.path.join(workdir, 'launcher.json')
    with open(config_path, 'w', encoding='utf-8') as handle:
        json.dump(config, handle)
    env = ansible_env({'PYTHONPATH': os.path.join(REPO_ROOT, 'extensions', 'launcher')})
    service = Service([sys.executable, '-m', 'incident_launcher', '--config', config_path], env, os.path.join(workdir, 'launcher.log'))

    def port():
        for line in service.log().splitlines():
            if line.startswith('{') and '"event": "listening"' in line:
                return json.loads(line)['port']
        return None

    try:
        listening = service.wait_for('the launcher to listen', port)

        def idle():
            pending = os.path.join(spool, 'pending')
            return not os.path.isdir(pending) or not [n for n in os.listdir(pending) if n.endswith('.json')]

        samples = []
        for number in range(alerts):
            service.wait_for('the previous alert to finish', idle)
            delete_policy(emulator)
            started = time.time()
            status = post(listening, '/webhook', token, payload(number))
            if status != 200:
                raise RuntimeError('launcher answered %d' % status)
            samples.append(arrival(emulator, started) - started)
        return samples
    finally:
        service.stop()


def rulebook_path(emulator, workdir, alerts, token):
    port = free_port()
    inventory = os.path.join(workdir, 'rulebook-inventory.json')
    rulebook_vars = os.path.join(workdir, 'rulebook-vars.json')
    with open(inventory, 'w', encoding='utf-8') as handle:
        json.dump({'all': {'hosts': {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}, handle)
    with open(rulebook_vars, 'w', encoding='utf-8') as handle:
        json.dump({'incident_webhook_port': port, 'incident_webhook_token': token, 'incident_response_playbook': BASELINE_PLAYBOOK}, handle)
    env = ansible_env({'K8S_AUTH_KUBECONFIG': emulator.kubeconfig})
    service = Service(['ansible-rulebook', '-r', 'slurm_exporter.incident_response.alertmanager', '-i', inventory, '-e', rulebook_vars],
                      env, os.path.join(workdir, 'rulebook.log'), cwd=workdir)

    def healthy():
        try:
            connection = http.client.HTTPConnection('127.0.0.1', port, timeout=2)
            connection.request('GET', '/healthz')
            ok = connection.getresponse().status == 200
            connection.close()
            return ok
        except OSError:
            return False

    try:
        service.wait_for('the rulebook source to listen', healthy, timeout=120)
        samples = []
        for number in range(alerts):
            # the previous playbook run has ended when its PLAY RECAP is in the log
            service.wait_for('the previous run to finish', lambda count=number: service.log().count('PLAY RECAP') >= count, timeout=120)
            delete_policy(emulator)
            started = time.time()
            status = post(port, '/webhook', token, payload(1000 + number))
            if status not in (200, 202):
                raise RuntimeError('rulebook source answered %d' % status)
            samples.append(arrival(emulator, started) - started)
        service.wait_for('the last run to finish', lambda: service.log().count('PLAY RECAP') >= alerts, timeout=120)
        return samples
    finally:
        service.stop()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--alerts', type=int, default=20, help='alerts per path (default 20)')
    args = parser.parse_args()
    if not 1 <= args.alerts <= 200:
        parser.error('--alerts: 1 to 200')
    if shutil.which('ansible-rulebook') is None:
        parser.error('ansible-rulebook is not installed (make setup installs it)')
    workdir = tempfile.mkdtemp(prefix='bench-containment-')
    token = secrets.token_urlsafe(24)
    emulator = Emulator.start(seed=True)
    emulator.kubeconfig = emulator.write_kubeconfig(os.path.join(workdir, 'kubeconfig'))
    try:
        launcher = launcher_path(emulator, workdir, args.alerts, token)
        rulebook = rulebook_path(emulator, workdir, args.alerts, token)
    finally:
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    base = percentile(rulebook, 0.5)
    rows = []
    for name, samples in (('rulebook -> run_playbook -> kubernetes.core.k8s (baseline)', rulebook),
                          ('launcher, in-process first response', launcher)):
        p50 = percentile(samples, 0.5)
        rows.append([name, len(samples), '%.3f' % p50, '%.3f' % percentile(samples, 0.95), '%.3f' % max(samples), '%.1fx' % (base / p50)])
    print_table('Alert to containment: webhook POST -> NetworkPolicy create at the API server (seconds; emulated cluster, loopback)',
                ['path', 'alerts', 'p50', 'p95', 'max', 'speed-up vs baseline p50'], rows)
    launcher_p50 = percentile(launcher, 0.5)
    print('targets: launcher p50 < 1 s: %s (%.3f s); >= 2x the baseline at p50: %s (%.1fx)'
          % ('met' if launcher_p50 < 1.0 else 'NOT met', launcher_p50, 'met' if base / launcher_p50 >= 2 else 'NOT met', base / launcher_p50))


if __name__ == '__main__':
    main()
