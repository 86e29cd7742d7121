# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An alert storm against the webhook launcher: 10,000 alerts over 1,000 fingerprints, posted within 60 s.

Usage: python benchmarks/bench_alert_storm.py [--alerts 10000] [--fingerprints 1000] [--batch 10] [--clients 8]
       [--slow 500] [--reconnecting 200] [--paced 30]

The launcher runs as its own process (``python -m incident_launcher``) on a free loopback port with the
``record`` backend: each spooled alert is handled in-process by opening or attaching its incident in a real
incident store (the same ``IncidentService.open`` call the ``incident`` module makes), without starting
ansible-playbook, so the figures are the launcher's (intake, fsync'd spool, dedup, worker pool, store) and not
Ansible's start-up time. Alerts arrive as Alertmanager sends them: payloads of ``--batch`` alerts (one
group), each fingerprint resent ``alerts / fingerprints`` times with the same startsAt.

Rows, measured in this run with the same client and payloads:
- a bare stdlib ThreadingHTTPServer that parses the JSON and answers 200 (no auth, no validation, nothing
  written; TCP_NODELAY like the launcher): the baseline for acknowledgement latency;
- the launcher (bearer auth, v4 validation, dedup, every new alert fsync'd to the spool before the 200), the
  storm posted as fast as the clients go: acknowledgements while the workers are still starting;
- the launcher, the same storm as fast as the clients go while ``--slow`` (500) slow sockets (one header byte
  per second each, slowloris) and ``--reconnecting`` (200) reconnecting sockets (the start of a request line,
  closed and opened again every half second) are open from other loopback addresses (127.0.1.x, 127.0.2.x), in
  two child processes of their own: acknowledgements under attack, to compare with the row above;
- the launcher, the same storm spread evenly over ``--paced`` seconds (default 30): acknowledgements while
  four workers write the incident store;
- the same spread storm with the same attack open for all of it, so that the slow sockets reach their request
  deadline and the reconnecting ones churn through the whole storm (not only its first second).

Afterwards the launcher's spool and store are checked: alerts lost (acknowledged but neither deduplicated nor
finished) must be 0 and incidents opened must equal the distinct fingerprints. Loopback only; every loop is
bounded in count and time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from _common import REPO_ROOT, print_table, use_checkout

COLLECTIONS = use_checkout()
from tests.loadgen import Attack  # noqa: E402  pylint: disable=wrong-import-position

P99_TARGET = 0.100
SLOW_SOURCES = ['127.0.1.%d' % number for number in range(1, 6)]
RECONNECT_SOURCES = ['127.0.2.%d' % number for number in range(1, 3)]
TOKEN = 'bench-token-0f3a9c'
POST_DEADLINE = 60.0
DRAIN_DEADLINE = 600.0

BASELINE_SERVER = r'''
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True
    def log_message(self, *args):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        count = len(json.loads(body)['alerts'])
        data = json.dumps({'status': 'accepted', 'accepted': count, 'deduplicated': 0}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
server.daemon_threads = True
sys.stderr.write(json.dumps({'event': 'listening', 'port': server.server_address[1]}) + '\n')
sys.stderr.flush()
server.serve_forever()
'''


def make_payloads(alerts, fingerprints, batch):
    """Alertmanager-like payloads: alert i has fingerprint i % fingerprints (so each is resent alerts/fingerprints times)."""
    payloads = []
    for start in range(0, alerts, batch):
        group = []
        for number in range(start, min(alerts, start + batch)):
            fingerprint = '%016x' % (0xbe000000 + number % fingerprints)
            group.append({'status': 'firing', 'fingerprint': fingerprint,
                          'labels': {'alertname': 'SlurmExporterDown', 'incident_type': 'service_outage', 'pod': 'slurm-exporter-%d' % (number % fingerprints)},
                          'annotations': {'summary': 'exporter down'}, 'startsAt': '2026-11-24T10:00:00Z', 'endsAt': '0001-01-01T00:00:00Z',
                          'generatorURL': 'http://prometheus:9090/graph'})
        payloads.append(json.dumps({'version': '4', 'groupKey': '{}:{}', 'truncatedAlerts': 0, 'status': 'firing',
                                    'receiver': 'incident-response', 'groupLabels': {}, 'commonLabels': {}, 'commonAnnotations': {},
                                    'externalURL': 'http://alertmanager:9093', 'alerts': group}).encode())
    return payloads


def start(command, env, log_path):
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError('%s exited: %s' % (command[:3], open(log_path, encoding='utf-8').read()[-2000:]))
        with open(log_path, encoding='utf-8') as handle:
            for line in handle:
                if '"listening"' in line:
                    return process, json.loads(line)['port']
        time.sleep(0.05)
    process.kill()
    raise RuntimeError('no listening line within 30 s')


def storm(port, payloads, clients, token, pace=0.0):
    """Post every payload from ``clients`` keep-alive connections, payload i not before ``i * pace / len(payloads)`` s.

    Returns latencies, acked alerts, accepted, deduplicated, errors and seconds.
    """
    lock = threading.Lock()
    cursor = iter(range(len(payloads)))
    results = {'latencies': [], 'acked': 0, 'accepted': 0, 'deduplicated': 0, 'errors': 0}
    deadline = time.monotonic() + POST_DEADLINE
    headers = {'Content-Type': 'application/json', 'Authorization': 'Bearer %s' % token}
    began = time.perf_counter()

    def client():
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            body = payloads[index]
            if pace:
                wait = began + index * pace / len(payloads) - time.perf_counter()
                if wait > 0:
                    time.sleep(min(wait, POST_DEADLINE))
            started = time.perf_counter()
            try:
                connection.request('POST', '/webhook', body=body, headers=headers)
                response = connection.getresponse()
                answer = json.loads(response.read())
            except (OSError, http.client.HTTPException, ValueError):
                connection.close()
                connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
                with lock:
                    results['errors'] += 1
                continue
            elapsed = time.perf_counter() - started
            with lock:
                if response.status == 200:
                    results['latencies'].append(elapsed)
                    results['acked'] += body.count(b'"fingerprint"')
                    results['accepted'] += answer.get('accepted', 0)
                    results['deduplicated'] += answer.get('deduplicated', 0)
                else:
                    results['errors'] += 1
        connection.close()

    threads = [threading.Thread(target=client) for _number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(POST_DEADLINE + 60)
    results['seconds'] = time.perf_counter() - began
    return results


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float('nan')


def peak_rss_mib(pid):
    with open('/proc/%d/status' % pid, encoding='utf-8') as handle:
        for line in handle:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def metrics(port):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    connection.request('GET', '/metrics')
    text = connection.getresponse().read().decode()
    connection.close()
    return {name: float(value) for name, value in (line.rsplit(' ', 1) for line in text.splitlines() if line and not line.startswith('#'))}


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run_launcher(workdir, name, payloads, args, env, pace, attack=False):  # pylint: disable=too-many-arguments,too-many-locals
    """One launcher on fresh spool and store; the storm (under attack if asked), the drain, then what the spool and store hold."""
    spool_dir, store = os.path.join(workdir, name, 'spool'), os.path.join(workdir, name, 'store')
    os.makedirs(os.path.join(workdir, name))
    config = {'listen': {'address': '127.0.0.1', 'port': 0}, 'auth': {'bearer_token': TOKEN}, 'backend': 'record',
              'spool': {'dir': spool_dir, 'max_pending': args.alerts + 1}, 'incident_store': store, 'dedup_window': 300,
              'workers': {'concurrency': args.concurrency}}
    config_path = os.path.join(workdir, name, 'launcher.yml')
    with open(config_path, 'w', encoding='utf-8') as handle:
        json.dump(config, handle)
    launcher, port = start([sys.executable, '-m', 'incident_launcher', '--config', config_path], env, os.path.join(workdir, name, 'launcher.log'))
    attackers = []
    try:
        if attack:
            attackers = [Attack(port, SLOW_SOURCES, args.slow, 'slow', seconds=POST_DEADLINE + 10, interval=1.0, max_connects=20 * args.slow),
                         Attack(port, RECONNECT_SOURCES, args.reconnecting, 'reconnect', seconds=POST_DEADLINE + 10, interval=0.5,
                                max_connects=200 * args.reconnecting)]
            for attacker in attackers:
                attacker.__enter__()
            time.sleep(3.0)  # every attacking socket open before the first alert
            before = metrics(port)
        began = time.monotonic()
        load = storm(port, payloads, args.clients, TOKEN, pace)
        if attack:
            during = metrics(port)
            load['attack'] = {'open': during['incident_launcher_connections_open'], 'peak': during['incident_launcher_connections_open_peak'],
                              'closed': {key.split('"')[1]: during[key] - before.get(key, 0) for key in during
                                         if key.startswith('incident_launcher_connections_closed_total{')},
                              'connects': sum(attacker.connects for attacker in attackers)}
        for attacker in attackers:
            attacker.__exit__(None, None, None)
        attackers = []
        deadline = time.monotonic() + DRAIN_DEADLINE
        while time.monotonic() < deadline:
            values = metrics(port)
            if values['incident_launcher_queue_depth'] == 0 and values['incident_launcher_runs_in_flight'] == 0:
                break
            time.sleep(0.2)
        load['drained'] = time.monotonic() - began
        load['metrics'] = metrics(port)
        load['rss'] = peak_rss_mib(launcher.pid)
    finally:
        for attacker in attackers:
            attacker.__exit__(None, None, None)
        stop(launcher)
    load['done'] = len(os.listdir(os.path.join(spool_dir, 'done')))
    load['failed'] = len(os.listdir(os.path.join(spool_dir, 'failed')))
    load['pending'] = len(os.listdir(os.path.join(spool_dir, 'pending')))
    incidents = {}
    records = 0
    for file_name in os.listdir(store):
        if re.match(r'^incident-INC-\d{8}-\d+\.json$', file_name):
            records += 1
            with open(os.path.join(store, file_name), encoding='utf-8') as handle:
                record = json.load(handle)
            for alert in record['alerts']:
                incidents.setdefault(alert['fingerprint'], []).append(record['id'])
    load['records'] = records
    load['fingerprints'] = len(incidents)
    load['split'] = sum(1 for ids in incidents.values() if len(ids) > 1)
    # acknowledged alerts that were neither deduplicated nor spooled, and spooled alerts neither done nor failed
    load['lost'] = (load['acked'] - load['accepted'] - load['deduplicated']) + (load['accepted'] - load['done'] - load['failed'])
    return load


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--alerts', type=int, default=10000)
    parser.add_argument('--fingerprints', type=int, default=1000)
    parser.add_argument('--batch', type=int, default=10, help='alerts per webhook payload')
    parser.add_argument('--clients', type=int, default=8, help='concurrent keep-alive connections')
    parser.add_argument('--concurrency', type=int, default=4, help="the launcher's workers.concurrency")
    parser.add_argument('--paced', type=float, default=30.0, help='seconds the paced storm is spread over (< 60; 0 skips that row)')
    parser.add_argument('--slow', type=int, default=500, help='slow (slowloris) sockets open during the attacked storm')
    parser.add_argument('--reconnecting', type=int, default=200, help='reconnecting sockets open during the attacked storm (0 and --slow 0 skip that row)')
    args = parser.parse_args()
    if args.paced >= POST_DEADLINE:
        parser.error('--paced must be shorter than the %d s posting deadline' % POST_DEADLINE)
    payloads = make_payloads(args.alerts, args.fingerprints, args.batch)
    workdir = tempfile.mkdtemp(prefix='bench-storm-')
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO_ROOT, 'extensions', 'launcher'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    rows = []
    try:
        baseline_process, port = start([sys.executable, '-c', BASELINE_SERVER], env, os.path.join(workdir, 'baseline.log'))
        try:
            base = storm(port, payloads, args.clients, 'unused', 0)
            base_rss = peak_rss_mib(baseline_process.pid)
        finally:
            stop(baseline_process)
        base_p50, base_p99 = percentile(base['latencies'], 0.5), percentile(base['latencies'], 0.99)
        rows.append(['bare ThreadingHTTPServer, JSON parse only (baseline)', base['acked'], '%.1f' % base['seconds'],
                     '%.2f' % (base_p50 * 1000), '%.2f' % (base_p99 * 1000), '1.00x / 1.00x', '-', '-', '-', '-', '-', '%.0f' % base_rss])
        runs = [('launcher, as fast as the clients go', 'burst', 0.0, False)]
        if args.slow or args.reconnecting:
            runs.append(('launcher, as fast, with %d slow + %d reconnecting sockets open' % (args.slow, args.reconnecting), 'attack', 0.0, True))
        if args.paced:
            runs.append(('launcher, storm spread over %g s' % args.paced, 'paced', args.paced, False))
            if args.slow or args.reconnecting:
                runs.append(('launcher, spread over %g s, with %d slow + %d reconnecting sockets open' % (args.paced, args.slow, args.reconnecting),
                             'paced_attack', args.paced, True))
        ok = not base['errors']
        notes = []
        p99s = {}
        for label, name, pace, attack in runs:
            load = run_launcher(workdir, name, payloads, args, env, pace, attack)
            p50, p99 = percentile(load['latencies'], 0.5), percentile(load['latencies'], 0.99)
            rows.append([label, load['acked'], '%.1f' % load['seconds'], '%.2f' % (p50 * 1000), '%.2f' % (p99 * 1000),
                         '%.2fx / %.2fx' % (p50 / base_p50, p99 / base_p99), '%d / %d' % (load['accepted'], load['deduplicated']),
                         load['lost'], '%d of %d' % (load['records'], args.fingerprints),
                         '%d of %d' % (load['metrics']['incident_launcher_runs_in_flight_peak'], args.concurrency),
                         '%.1f' % load['drained'], '%.0f' % load['rss']])
            p99s[name] = p99
            notes.append('%s: done %d, failed %d, pending %d, HTTP errors %d, fingerprints in more than one incident %d'
                         % (label, load['done'], load['failed'], load['pending'], load['errors'], load['split']))
            if attack:
                notes.append('  attack during the storm: %d attacker connects, %d connections open at the end of the storm (peak %d), '
                             'closed by the launcher: %s' % (load['attack']['connects'], load['attack']['open'], load['attack']['peak'],
                                                             ', '.join('%s %d' % item for item in sorted(load['attack']['closed'].items()))
                                                             or 'none'))
            ok = ok and (load['lost'] == 0 and load['records'] == args.fingerprints == load['fingerprints'] and not load['split']
                         and not load['errors'] and load['acked'] == args.alerts)
        print_table('Alert storm: %d alerts over %d fingerprints, %d per payload, %d client connections, record backend, '
                    '%d workers (posting deadline %d s)'
                    % (args.alerts, args.fingerprints, args.batch, args.clients, args.concurrency, POST_DEADLINE),
                    ['server', 'alerts acked', 'post s', 'ack p50 ms', 'ack p99 ms', 'p50 / p99 vs baseline', 'spooled / dedup', 'lost',
                     'incidents', 'peak runs', 'all handled s', 'peak RSS MiB'], rows)
        print()
        for note in notes:
            print(note)
        print('checks: lost == 0, incidents == distinct fingerprints, every alert acked: %s' % ('PASS' if ok else 'FAIL'))
        for name, what in (('burst', 'without attack'), ('attack', 'under attack'), ('paced', 'spread, without attack'),
                           ('paced_attack', 'spread, under attack')):
            if name in p99s:
                verdict = 'met' if p99s[name] <= P99_TARGET else 'MISSED'
                print('ack p99 %s: %.1f ms (target <= %d ms): %s' % (what, p99s[name] * 1000, P99_TARGET * 1000, verdict))
        return 0 if ok else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
