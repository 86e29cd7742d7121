# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Event-Driven Ansible end to end: exporter -> Prometheus -> Alertmanager -> ansible-rulebook -> playbook -> incident.

Real processes on free loopback ports: a small HTTP server that serves the exporter's real metric
names, Prometheus (Debian's package) with the collection's detection rule, Alertmanager with the
collection's configuration, and ansible-rulebook running extensions/eda/rulebooks/alertmanager.yml
with the collection's alertmanager source. The playbook it runs (tests/playbooks/eda/record_alert.yml)
reads the alert as the response playbook does and opens or attaches the incident in a temporary store.

Timings are shortened for the test only: the authentication-failure rule is the collection's own
expression with a 10 s window instead of 5 m (through the catalog override the module supports),
Prometheus scrapes and evaluates every second, and the incident-response route's group_interval is
1 s instead of 30 s (the module's response_timing option).
"""

from __future__ import annotations

import base64
import copy
import glob
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import detection
from tests.conftest import REPO_ROOT, ansible_env, run_playbook, write_playbook
from tests.fakes.awx_controller import FakeController

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULEBOOK = os.path.join(REPO_ROOT, 'extensions', 'eda', 'rulebooks', 'alertmanager.yml')
RECORD_PLAYBOOK = os.path.join(REPO_ROOT, 'tests', 'playbooks', 'eda', 'record_alert.yml')
TOKEN = 'eda-test-token-7c1f'
ALERT = 'SlurmExporterAuthenticationFailures'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def need(*binaries):
    for binary in binaries:
        if not shutil.which(binary):
            pytest.skip('%s is not installed (make setup installs it: bindep.txt, requirements-test.txt)' % binary)


def call(url, data=None, token=None, timeout=5):
    """(status, body) of a GET, or of a POST of ``data`` as JSON."""
    headers = {'Content-Type': 'application/json'}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers, method='POST' if data is not None else 'GET')
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(what, check, timeout, processes=()):
    """Poll ``check`` until it returns something truthy; fail with the processes' logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                pytest.fail('%s exited with %s while waiting for %s\n%s' % (process.name, process.returncode, what, process.log_tail()))
        try:
            value = check()
        except (OSError, ValueError):
            value = None
        if value:
            return value
        time.sleep(0.25)
    pytest.fail('timed out after %ss waiting for %s\n%s' % (timeout, what, '\n'.join(p.log_tail() for p in processes)))


class Process:
    """A background process with its output in a log file; stopped by its own pid."""

    def __init__(self, name, command, log_path, env=None, cwd=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, 'w', encoding='utf-8')  # pylint: disable=consider-using-with
        self.popen = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,  # pylint: disable=consider-using-with
                                      start_new_session=True)

    @property
    def returncode(self):
        return self.popen.returncode

    def poll(self):
        return self.popen.poll()

    def log_tail(self, size=6000):
        with open(self.log_path, encoding='utf-8', errors='replace') as handle:
            return '--- %s log ---\n%s' % (self.name, handle.read()[-size:])

    def stop(self):
        if self.popen.poll() is None:
            # its own process group (start_new_session): ansible-rulebook's playbook runs go with it
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self.log.close()


class FakeExporter:
    """/metrics with the exporter's real metric names; the authentication error counter grows while attacked."""

    def __init__(self):
        self.attacked = False
        self.auth_errors = 0
        self.scrapes = 0
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
                if self.path != '/metrics':
                    self.send_error(404)
                    return
                body = exporter.metrics().encode()
                self.send_response(200)
                self.send_header('Content-Type', 'text/plain; version=0.0.4')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def metrics(self):
        self.scrapes += 1
        if self.attacked:
            self.auth_errors += 5
        lines = [
            '# HELP slurm_exporter_collector_errors_total Total number of collection errors',
            '# TYPE slurm_exporter_collector_errors_total counter',
            'slurm_exporter_collector_errors_total{collector="jobs",error_type="authentication"} %d' % self.auth_errors,
            'slurm_exporter_collector_errors_total{collector="jobs",error_type="timeout"} 0',
            '# HELP slurm_exporter_collector_up Whether the collector is up',
            '# TYPE slurm_exporter_collector_up gauge',
            'slurm_exporter_collector_up{collector="jobs"} 1',
            '# HELP slurm_exporter_last_collection_timestamp_seconds Time of the last successful collection',
            '# TYPE slurm_exporter_last_collection_timestamp_seconds gauge',
            'slurm_exporter_last_collection_timestamp_seconds %.3f' % time.time(),
            '# HELP slurm_exporter_http_requests_total HTTP requests served',
            '# TYPE slurm_exporter_http_requests_total counter',
            'slurm_exporter_http_requests_total{method="GET",path="/metrics",status="200"} %d' % self.scrapes,
        ]
        return '\n'.join(lines) + '\n'

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def incidents(store):
    records = []
    for path in sorted(glob.glob(os.path.join(store, 'incident-INC-*.json'))):
        with open(path, encoding='utf-8') as handle:
            records.append(json.load(handle))
    return records


def read_if(path, condition):
    """The text of ``path`` when ``condition(text)`` holds, else None."""
    with open(path, encoding='utf-8', errors='replace') as handle:
        text = handle.read()
    return text if condition(text) else None


def write_yaml(path, data):
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return str(path)


def start_rulebook(tmp_path, store, rulebook='slurm_exporter.incident_response.alertmanager', name='rulebook', playbook=RECORD_PLAYBOOK,
                   arguments=(), host_vars=None):
    """ansible-rulebook with the collection's rulebook and source; returns (process, webhook URL)."""
    port = free_port()
    inventory = write_yaml(tmp_path / ('%s-inventory.yml' % name), {'all': {'hosts': {'localhost': dict({
        'ansible_connection': 'local', 'incident_store': store}, **(host_vars or {}))}}})
    rulebook_vars = write_yaml(tmp_path / ('%s-vars.yml' % name), {
        'incident_webhook_port': port, 'incident_webhook_token': TOKEN, 'incident_response_playbook': playbook})
    process = Process(name, ['ansible-rulebook', '-r', rulebook, '-i', inventory, '-e', rulebook_vars, '-v'] + list(arguments),
                      str(tmp_path / ('%s.log' % name)), env=ansible_env(), cwd=str(tmp_path))
    base = 'http://127.0.0.1:%d' % port
    wait_for('the rulebook source to listen', lambda: call(base + '/healthz')[0] == 200, 60, [process])
    return process, base + '/webhook'


def generate_configs(tmp_path, webhook_url):
    """The collection's detection rules and Alertmanager configuration, through ansible-playbook."""
    rule = copy.deepcopy(next(r for r in detection.DEFAULT_DETECTION['security_breach'] if r['alert'] == ALERT))
    assert '[5m]' in rule['expr']
    rule['expr'] = rule['expr'].replace('[5m]', '[10s]')
    rules_file, am_file = tmp_path / 'rules.yml', tmp_path / 'alertmanager.yml'
    tasks = [
        {'name': 'rules', 'slurm_exporter.incident_response.detection_rules': {
            'format': 'rules', 'dest': str(rules_file), 'catalog': {'types': {'security_breach': {'detection': [rule]}}}}},
        {'name': 'alertmanager', 'slurm_exporter.incident_response.alertmanager_config': {
            'webhook_url': webhook_url, 'bearer_token': TOKEN, 'dest': str(am_file), 'response_timing': {'group_interval': '1s'}}},
    ]
    run = run_playbook(write_playbook(tmp_path, tasks, name='configs.yml'))
    assert run.rc == 0, run
    config = yaml.safe_load(am_file.read_text())
    incident_route = next(r for r in config['route']['routes'] if r['receiver'] == 'incident-response')
    assert incident_route['group_wait'] == '0s' and config['receivers'][0]['webhook_configs'][0]['send_resolved'] is True
    assert incident_route['group_interval'] == '1s'
    return str(rules_file), str(am_file)


def start_stack(tmp_path, cleanup, rules_file, am_file, exporter):
    """Alertmanager and Prometheus (scrape and evaluate every second) on free loopback ports, ready; returns the processes."""
    am_port, prom_port = free_port(), free_port()
    alertmanager = Process('alertmanager', [
        'prometheus-alertmanager', '--config.file=' + am_file, '--storage.path=' + str(tmp_path / 'am-data'),
        '--web.listen-address=127.0.0.1:%d' % am_port, '--cluster.listen-address='], str(tmp_path / 'alertmanager.log'))
    cleanup.append(alertmanager)
    prometheus_config = write_yaml(tmp_path / 'prometheus.yml', {
        'global': {'scrape_interval': '1s', 'evaluation_interval': '1s'},
        'rule_files': [rules_file],
        'alerting': {'alertmanagers': [{'static_configs': [{'targets': ['127.0.0.1:%d' % am_port]}]}]},
        'scrape_configs': [{'job_name': 'slurm-exporter', 'static_configs': [{'targets': ['127.0.0.1:%d' % exporter.port]}]}],
    })
    prometheus = Process('prometheus', [
        'prometheus', '--config.file=' + prometheus_config, '--storage.tsdb.path=' + str(tmp_path / 'prom-data'),
        '--web.listen-address=127.0.0.1:%d' % prom_port], str(tmp_path / 'prometheus.log'))
    cleanup.append(prometheus)
    processes = [alertmanager, prometheus]
    wait_for('Alertmanager ready', lambda: call('http://127.0.0.1:%d/-/ready' % am_port)[0] == 200, 30, processes)
    wait_for('Prometheus ready', lambda: call('http://127.0.0.1:%d/-/ready' % prom_port)[0] == 200, 30, processes)
    return processes


@pytest.fixture
def cleanup():
    items = []
    yield items
    for item in reversed(items):
        item.stop()


def test_prometheus_alertmanager_rulebook_incident(tmp_path, cleanup):
    """A firing authentication-failure alert opens one incident; its resolution updates the same incident."""
    need('prometheus', 'prometheus-alertmanager', 'ansible-rulebook', 'java')
    started = time.monotonic()
    store = str(tmp_path / 'store')
    exporter = FakeExporter()
    cleanup.append(exporter)
    rulebook, webhook_url = start_rulebook(tmp_path, store)
    cleanup.append(rulebook)
    rules_file, am_file = generate_configs(tmp_path, webhook_url)

    processes = [rulebook] + start_stack(tmp_path, cleanup, rules_file, am_file, exporter)
    ready = time.monotonic()

    # healthy for a few scrapes: nothing fires
    wait_for('three healthy scrapes', lambda: exporter.scrapes >= 3, 20, processes)
    assert incidents(store) == []

    exporter.attacked = True
    opened = wait_for('the incident', lambda: incidents(store), 40, processes)
    fired = time.monotonic()
    assert len(opened) == 1
    incident = opened[0]
    assert incident['type'] == 'security_breach' and incident['severity'] == 'critical'
    assert [a['labels']['alertname'] for a in incident['alerts']] == [ALERT]
    alert = incident['alerts'][0]
    assert alert['status'] == 'firing' and alert['labels']['component'] == 'incident-response'

    exporter.attacked = False

    def resolved():
        records = incidents(store)
        if records and records[0]['alerts'][0]['status'] == 'resolved':
            return records
        return None

    records = wait_for('the resolved alert in the incident', resolved, 60, processes)
    done = time.monotonic()
    assert len(records) == 1, 'a second incident was opened: %s' % [r['id'] for r in records]
    assert records[0]['id'] == incident['id']
    assert records[0]['alerts'][0]['fingerprint'] == alert['fingerprint']
    assert len(records[0]['alerts']) == 1
    log = wait_for('both playbook runs to finish', lambda: read_if(rulebook.log_path, lambda text: text.count('PLAY RECAP') >= 2),
                   30, processes)
    assert log.count('PLAY [Record the alert from the rulebook]') == 2 and 'failed=1' not in log
    assert TOKEN not in log
    print('timings: start %.1fs, attack to incident %.1fs, heal to resolved %.1fs, total %.1fs'
          % (ready - started, fired - ready, done - fired, done - started))


def hostile_payload(marker, status='firing'):
    lookup = "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % marker
    return {
        'version': '4', 'status': status, 'receiver': 'incident-response', 'externalURL': 'http://alertmanager.example',
        'groupKey': '{}:{alertname="%s"}' % ALERT,
        'alerts': [{
            'status': status, 'fingerprint': '5ca1ab1e0ddba11e',
            'labels': {'alertname': ALERT, 'incident_type': 'security_breach', 'severity': 'critical',
                       'component': 'incident-response', 'collector': lookup, 'instance': '{% raw %}' + lookup},
            'annotations': {'summary': lookup, 'description': '{{ 7 * 7 }}'},
            'startsAt': '2026-11-24T10:00:00Z', 'endsAt': '0001-01-01T00:00:00Z' if status == 'firing' else '2026-11-24T10:05:00Z',
        }],
    }


def test_hostile_labels_are_never_templated(tmp_path, cleanup):
    """Template text in labels and annotations reaches the record literally through the rulebook; nothing runs."""
    need('ansible-rulebook', 'java')
    store = str(tmp_path / 'store')
    marker = tmp_path / 'MARKER'
    rulebook, webhook_url = start_rulebook(tmp_path, store)
    cleanup.append(rulebook)

    assert call(webhook_url, hostile_payload(marker), token='wrong')[0] == 401
    assert call(webhook_url, hostile_payload(marker))[0] == 401
    status, body = call(webhook_url, hostile_payload(marker), token=TOKEN)
    assert (status, json.loads(body)) == (202, {'accepted': 1})
    records = wait_for('the incident', lambda: incidents(store), 60, [rulebook])
    status, _body = call(webhook_url, hostile_payload(marker, 'resolved'), token=TOKEN)
    assert status == 202
    records = wait_for('the resolved alert', lambda: [r for r in incidents(store) if r['alerts'][0]['status'] == 'resolved'],
                       60, [rulebook])
    assert len(incidents(store)) == 1
    labels = records[0]['alerts'][0]['labels']
    assert labels['collector'] == "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % marker
    assert records[0]['alerts'][0]['annotations']['description'] == '{{ 7 * 7 }}'
    assert not marker.exists(), 'a label was templated: the marker file was created'
    log = wait_for('both playbook runs to finish', lambda: read_if(rulebook.log_path, lambda text: text.count('PLAY RECAP') == 2),
                   30, [rulebook])
    assert 'failed=0' in log and 'failed=1' not in log and TOKEN not in log


LABEL_PLAYBOOK = """
- name: Read the alert's label from an extra var
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Show the label
      ansible.builtin.debug:
        msg: "{{ alert_collector }}"
"""


@pytest.mark.parametrize('variant', ['raw ansible_eda', 'label as a string extra var'])
def test_controls_the_unsafe_ways_run_the_label(tmp_path, cleanup, variant):
    """Controls: the ways the rulebooks avoid do run a hostile label (and so the marker check above can fail).

    - the same rulebook without var_root: run_playbook always adds ansible_eda with the raw event (it has no
      include_events option), and printing it runs the label, because ansible-core 2.19 treats extra vars as
      trusted templates;
    - a label as a plain string extra var (``{{ event.alert.labels.collector }}``): reading it runs it. (The alert as
      JSON text, ``{{ event.alert | tojson }}``, does not even reach the playbook with ansible-rulebook 1.3: tojson
      gives a Markup that ansible-runner writes with a Python YAML tag, which ansible-playbook refuses.)
    """
    need('ansible-rulebook', 'java')
    with open(RULEBOOK, encoding='utf-8') as handle:
        rulesets = yaml.safe_load(handle)
    playbook = RECORD_PLAYBOOK
    for rule in rulesets[0]['rules']:
        action = rule['action']['run_playbook']
        del action['var_root']
        if variant == 'label as a string extra var':
            action['extra_vars'] = {'alert_collector': '{{ event.alert.labels.collector }}'}
            playbook = str(tmp_path / 'label-playbook.yml')
            (tmp_path / 'label-playbook.yml').write_text(LABEL_PLAYBOOK)
        else:
            action['extra_vars']['alert_payload_b64'] = '{{ event.response.alert_payload_b64 }}'
    unsafe_rulebook = write_yaml(tmp_path / 'unsafe-rulebook.yml', rulesets)
    store = str(tmp_path / 'store')
    marker = tmp_path / 'MARKER'
    rulebook, webhook_url = start_rulebook(tmp_path, store, rulebook=unsafe_rulebook, playbook=playbook)
    cleanup.append(rulebook)
    assert call(webhook_url, hostile_payload(marker), token=TOKEN)[0] == 202
    wait_for('the playbook run', lambda: read_if(rulebook.log_path, lambda text: 'PLAY RECAP' in text), 60, [rulebook])
    assert marker.exists(), 'expected the hostile label to be templated'


def test_awx_rulebook_launches_the_respond_job_template(tmp_path, cleanup):
    """alertmanager_awx.yml: one launch of "slurm-exporter respond" per alert and status, with alert_payload_b64 only."""
    need('ansible-rulebook', 'java')
    awx_token = 'awx-eda-token-40f9'
    controller = FakeController(awx_token).start()
    cleanup.append(controller)
    organizations = [json.loads(call(controller.url + '/api/v2/organizations/', {'name': name}, token=awx_token)[1])['id']
                     for name in ('other', 'slurm-exporter')]
    for organization in organizations:  # the same name in another organization must not be launched
        status, body = call(controller.url + '/api/v2/job_templates/', {
            'name': 'slurm-exporter respond', 'organization': organization, 'playbook': 'playbooks/respond.yml',
            'ask_variables_on_launch': True}, token=awx_token)
        assert status == 201, body
    template = controller.find('job_templates', organization=organizations[1])[0]
    rulebook, webhook_url = start_rulebook(tmp_path, str(tmp_path / 'store'), rulebook='slurm_exporter.incident_response.alertmanager_awx',
                                           arguments=['--controller-url', controller.url, '--controller-token', awx_token])
    cleanup.append(rulebook)
    marker = tmp_path / 'MARKER'
    for status in ('firing', 'firing', 'resolved'):  # Alertmanager repeats a firing alert: throttled
        assert call(webhook_url, hostile_payload(marker, status), token=TOKEN)[0] == 202
    launches = wait_for('two launches', lambda: len(controller.launches()) >= 2 and controller.launches(), 60, [rulebook])
    time.sleep(2)
    launches = controller.launches()
    assert [job['job_template'] for job in launches] == [template['id'], template['id']]
    statuses = []
    for job in launches:
        assert set(job['extra_vars']) == {'alert_payload_b64'}, 'the raw event must not reach the job'
        payload = json.loads(base64.b64decode(job['extra_vars']['alert_payload_b64']))
        assert payload['alerts'][0]['labels'] == hostile_payload(marker)['alerts'][0]['labels']
        statuses.append(payload['alerts'][0]['status'])
    assert statuses == ['firing', 'resolved']
    assert not marker.exists()
    assert all(r['authorization'] == 'Bearer ' + awx_token for r in controller.requests)
