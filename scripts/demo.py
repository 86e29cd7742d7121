# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one-command demo (``make demo``): a security breach from Alertmanager's webhook to the report.

1. starts the emulated Kubernetes cluster seeded with the real slurm-exporter manifests
   (``python -m tests.emulator``, loopback, a free port) and writes its kubeconfig;
2. starts the webhook launcher (``python -m incident_launcher``, loopback, a random bearer token) with
   the first response on and the runner backend running ``slurm_exporter.incident_response.security_breach``
   against that cluster, notifications to the local outbox;
3. posts a security-breach alert to ``/webhook`` as Alertmanager does (payload version 4, bearer token);
4. waits for the response to finish and prints the incident ID, what was done, and where the record,
   the evidence bundle, the outbox notifications and the report are.

Everything lives under ``--workdir``, emptied at the start: by default ``.cache/demo`` in a checkout, and the
user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``slurm_exporter.incident_response/demo``) when this script
runs from an installed collection, which is never written to (no bytecode either). Both services are stopped at
the end, also on failure or Ctrl-C. Exit status 0 only when the response completed (no action failed; the incident in
monitoring, resolved, or open for a person where an action needs one).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

# Nothing is written into the collection, installed or not: no bytecode next to its sources.
sys.dont_write_bytecode = True
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from tests.collection_path import link_collection  # noqa: E402  pylint: disable=wrong-import-position

PLAYBOOK = 'slurm_exporter.incident_response.security_breach'
# An installed collection (ansible-galaxy collection install) carries MANIFEST.json; a checkout has galaxy.yml.
INSTALLED = os.path.isfile(os.path.join(REPO_ROOT, 'MANIFEST.json'))


def default_workdir():
    """``.cache/demo`` in a checkout; the user's cache for an installed collection."""
    if not INSTALLED:
        return os.path.join(REPO_ROOT, '.cache', 'demo')
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(cache, 'slurm_exporter.incident_response', 'demo')


def collections_roots():
    """Where the runs find this collection and the ones it needs: the installed collection's own root (or a private
    root linking this checkout), then ANSIBLE_COLLECTIONS_PATH's."""
    if INSTALLED:
        # <root>/ansible_collections/slurm_exporter/incident_response
        own = os.path.dirname(os.path.dirname(os.path.dirname(REPO_ROOT)))
    else:
        own = link_collection()
    roots = [own]
    for path in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        if path and os.path.abspath(os.path.expanduser(path)) not in roots:
            roots.append(os.path.abspath(os.path.expanduser(path)))
    return roots


class DemoError(Exception):
    pass


class Service:
    """A background process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name, command, log_path, env):
        self.name = name
        self.log_path = log_path
        with open(log_path, 'wb') as log:
            self.popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,  # pylint: disable=consider-using-with
                                          cwd=os.path.dirname(log_path), start_new_session=True)

    def log(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as handle:
            return handle.read()

    def check(self):
        if self.popen.poll() is not None:
            raise DemoError('%s exited with status %s; its log (%s) ends with:\n%s'
                            % (self.name, self.popen.returncode, self.log_path, self.log()[-3000:]))

    def stop(self):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


def wait_for(what, check, timeout, services):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for service in services:
            service.check()
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise DemoError('timed out after %ds waiting for %s' % (timeout, what))


def write_secret(path, text):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w', encoding='utf-8') as handle:
        handle.write(text)
    return path


def write_json(path, data):
    return write_secret(path, json.dumps(data, indent=1))


def alert_payload():
    """The collection's sample security-breach payload, starting now (a new alert, not a resend of an earlier demo's)."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import detection
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f000Z')
    return detection.sample_payload(load_catalog(), 'security_breach', now)


def post(url, token, payload):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method='POST',
                                     headers={'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token,
                                              'User-Agent': 'Alertmanager/0.27.0'})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # nosec: loopback URL built here
            return response.status, json.loads(response.read() or b'{}')
    except urllib.error.HTTPError as exc:
        raise DemoError('the launcher refused the alert: HTTP %d %s' % (exc.code, exc.read()[:500].decode(errors='replace'))) from exc


def spool_state(spool):
    counts = {}
    for state in ('pending', 'done', 'failed'):
        directory = os.path.join(spool, state)
        counts[state] = len([n for n in os.listdir(directory) if n.endswith('.json')]) if os.path.isdir(directory) else 0
    return counts


def finished(spool):
    """The spool's counts once no alert is pending and the run ended (done or failed), else None."""
    state = spool_state(spool)
    return state if not state['pending'] and (state['done'] or state['failed']) else None


def listening_port(launcher):
    for line in launcher.log().splitlines():
        if line.startswith('{') and '"event": "listening"' in line:
            return json.loads(line)['port']
    return None


def run(workdir, timeout):
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir, mode=0o700)
    store = os.path.join(workdir, 'incident-response')
    spool = os.path.join(workdir, 'spool')
    kubeconfig = os.path.join(workdir, 'kubeconfig')
    roots = collections_roots()
    if roots[0] not in sys.path:
        sys.path.insert(0, roots[0])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO_ROOT, 'extensions', 'launcher'), REPO_ROOT]),
               ANSIBLE_CONFIG=os.path.join(REPO_ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1', PYTHONDONTWRITEBYTECODE='1',
               ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(roots))
    env.pop('INCIDENT_RESPONSE_STORE', None)
    services = []
    try:
        print('1. Starting the emulated cluster (slurm-exporter manifests from tests/fixtures) ...')
        cluster = Service('the Kubernetes emulator', [sys.executable, '-m', 'tests.emulator', '--kubeconfig', kubeconfig],
                          os.path.join(workdir, 'emulator.log'), env)
        services.append(cluster)
        wait_for('the emulator', lambda: os.path.exists(kubeconfig) and 'kube emulator:' in cluster.log(), 30, services)
        print('   ' + cluster.log().splitlines()[0])

        token = secrets.token_urlsafe(24)
        inventory = {'all': {'hosts': {'localhost': {
            'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
            'incident_kubeconfig': kubeconfig, 'incident_namespace': 'slurm-exporter',
            'incident_wait_timeout': 120}}}}
        config = {
            'listen': {'address': '127.0.0.1', 'port': 0},
            'auth': {'bearer_token_file': write_secret(os.path.join(workdir, 'launcher-token'), token)},
            'spool': {'dir': spool},
            'incident_store': store,
            'incident_namespace': 'slurm-exporter',
            'backend': 'runner',
            'runner': {'playbook': PLAYBOOK, 'inventory': write_json(os.path.join(workdir, 'inventory.json'), inventory),
                       'timeout': timeout, 'env': {'ANSIBLE_PYTHON_INTERPRETER': sys.executable, 'PYTHONDONTWRITEBYTECODE': '1'}},
            'workers': {'concurrency': 2, 'max_attempts': 1},
            'first_response': {'enabled': True, 'kubeconfig': kubeconfig},
            'collections_path': roots,
        }
        print('2. Starting the webhook launcher (first response on, runner backend: %s) ...' % PLAYBOOK)
        command = [sys.executable, '-m', 'incident_launcher', '--config', write_json(os.path.join(workdir, 'launcher.json'), config)]
        launcher = Service('the webhook launcher', command, os.path.join(workdir, 'launcher.log'), env)
        services.append(launcher)
        port = wait_for('the launcher to listen', lambda: listening_port(launcher), 30, services)
        webhook = 'http://127.0.0.1:%d/webhook' % port
        print('   listening on %s' % webhook)

        print('3. Posting a security-breach alert as Alertmanager does ...')
        started = time.monotonic()
        status, answer = post(webhook, token, alert_payload())
        print('   HTTP %d %s' % (status, json.dumps(answer)))

        print('4. Waiting for the response (isolate, capture evidence, rotate credentials, restore, report) ...')
        state = wait_for('the response to finish', lambda: finished(spool), timeout, services)
        elapsed = time.monotonic() - started
        return summarize(store, workdir, state, elapsed)
    finally:
        for service in reversed(services):
            service.stop()


def summarize(store, workdir, state, elapsed):
    records = sorted(glob.glob(os.path.join(store, 'incident-INC-*.json')))
    if len(records) != 1:
        raise DemoError('expected one incident, found %d; see %s' % (len(records), os.path.join(workdir, 'launcher.log')))
    with open(records[0], encoding='utf-8') as handle:
        record = json.load(handle)
    # The response completed when its run did and no action failed; it then leaves the incident in monitoring (security
    # incidents wait for a person to resolve them, docs/response.md), resolved, or open for a person where an action
    # needs one (the demo has no SLURM controller: the JWT key rotation is handed to a person, nothing is invented).
    for_a_person = [action['name'] for action in record['actions'] if action['result'] == 'needs_person']
    completed = not state['failed'] and not any(action['result'] in ('failed', 'blocked') for action in record['actions']) and \
        (record['status'] in ('monitoring', 'resolved') or (record['status'] == 'investigating' and for_a_person))
    print()
    print('Incident %s (%s, %s) is %s after %.1f s%s' % (
        record['id'], record['type'], record['priority'], record['status'], elapsed,
        ' -- the response FAILED, see %s' % os.path.join(workdir, 'launcher.log') if not completed
        else (' (waits for a person: %s)' % ', '.join(for_a_person) if for_a_person
              else ' (a person resolves it)' if record['status'] == 'monitoring' else '')))
    print('Actions:')
    for action in record['actions']:
        print('  %-14s %-26s %-8s %s' % (action['phase'], action['name'], action['result'], action['time']))
    print('Record:         %s' % os.path.join(store, 'incident-%s.json' % record['id']))
    for item in record['evidence']:
        print('Evidence:       %s (sha256 %s)' % (item['path'], item['sha256'][:16]))
    templates = ', '.join(item['template'] for item in record['notifications'])
    print('Notifications:  %s (%d sent: %s)' % (os.path.join(store, 'outbox', 'notifications.jsonl'), len(record['notifications']), templates))
    for item in record.get('reports', []):
        print('Report:         %s' % item['path'])
    print('Audit log:      %s' % os.path.join(store, 'audit.log'))
    print('Launcher log:   %s' % os.path.join(workdir, 'launcher.log'))
    return 0 if completed else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--workdir', default=default_workdir(),
                        help='where the cluster config, spool, store and logs go (emptied first; default %(default)s)')
    parser.add_argument('--timeout', type=int, default=300, help='seconds to wait for the response (default 300)')
    args = parser.parse_args(argv)
    try:
        return run(os.path.abspath(args.workdir), args.timeout)
    except DemoError as exc:
        sys.stderr.write('demo failed: %s\n' % exc)
        return 1


if __name__ == '__main__':
    sys.exit(main())
