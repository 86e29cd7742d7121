# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The webhook launcher as a real process for the tests (the ``launchers`` fixture in tests/conftest.py makes them):
``python -m incident_launcher`` with a configuration written from a dict, on a free loopback port."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import requests

from tests.conftest import REPO_ROOT, ansible_env

LAUNCHER_DIR = os.path.join(REPO_ROOT, 'extensions', 'launcher')
PLAYBOOK = os.path.join(REPO_ROOT, 'tests', 'playbooks', 'launcher', 'open_incident.yml')
INVENTORY = os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml')
TOKEN = 'launcher-integration-token-7d2e9'


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError('timed out after %ss waiting for %s' % (timeout, message))


class LauncherProcess:
    """``python -m incident_launcher`` with a config written from a dict; the port is read from its 'listening' log line."""

    def __init__(self, tmp_path, config, name='launcher', env=None):
        self.tmp_path = tmp_path
        self.config = config
        self.config_path = tmp_path / ('%s.yml' % name)
        self.log_path = tmp_path / ('%s.log' % name)
        self.env = env or {}
        self.process = None
        self.url = None
        self.config_path.write_text(json.dumps(config, indent=1))

    def start(self):
        env = ansible_env(dict({'PYTHONPATH': LAUNCHER_DIR}, **self.env))
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen([sys.executable, '-m', 'incident_launcher', '--config', str(self.config_path)],
                                            env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0

        def listening():
            if self.process.poll() is not None:
                raise AssertionError('the launcher exited with %s:\n%s' % (self.process.returncode, self.log()))
            for line in self.log().splitlines():
                if '"event": "listening"' in line and json.loads(line)['port'] and self.process.pid:
                    self.port = json.loads(line)['port']
                    return True
            return False

        del offset
        wait_for(listening, 30, 'the launcher to listen')
        scheme = 'https' if self.config.get('tls') else 'http'
        self.url = '%s://127.0.0.1:%d' % (scheme, self.port)
        return self

    def restart_log(self):
        self.log_path.write_text('')

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ''

    def events(self, name):
        return [json.loads(line) for line in self.log().splitlines() if line.startswith('{') and '"event": "%s"' % name in line]

    def post(self, body, token=TOKEN, headers=None, **kwargs):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers = {'Content-Type': 'application/json'}
        if token:
            all_headers['Authorization'] = 'Bearer %s' % token
        all_headers.update(headers or {})
        return requests.post(self.url + '/webhook', data=data, headers=all_headers, timeout=30, **kwargs)

    def metrics(self, **kwargs):
        text = requests.get(self.url + '/metrics', timeout=10, **kwargs).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith('#'):
                name, value = line.rsplit(' ', 1)
                values[name] = float(value)
        return values

    def spool(self, state):
        directory = os.path.join(self.config['spool']['dir'], state)
        return sorted(name for name in os.listdir(directory) if name.endswith('.json')) if os.path.isdir(directory) else []

    def spool_entry(self, state, name):
        with open(os.path.join(self.config['spool']['dir'], state, name), encoding='utf-8') as handle:
            return json.load(handle)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def kill_tree(self):
        """SIGKILL the launcher and every process it started (ansible-runner, ansible-playbook): a replica's pod lost with
        its node, nothing of it left running."""
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                os.kill(pid, signal.SIGSTOP)    # stopped before its children are listed: it starts no more
            except ProcessLookupError:
                continue
            children = subprocess.run(['pgrep', '-P', str(pid)], capture_output=True, text=True, check=False).stdout.split()
            todo.extend(int(child) for child in children)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def base_config(tmp_path, **overrides):
    config = {
        'listen': {'address': '127.0.0.1', 'port': 0},
        'auth': {'bearer_token': TOKEN},
        'spool': {'dir': str(tmp_path / 'spool')},
        'incident_store': str(tmp_path / 'store'),
        'backend': 'runner',
        'runner': {'playbook': PLAYBOOK, 'inventory': INVENTORY, 'timeout': 120, 'env': {}},
        'workers': {'concurrency': 2, 'max_attempts': 3, 'backoff_initial': 0.5, 'backoff_max': 2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = dict(config[key], **value)
        else:
            config[key] = value
    return config


def records(store):
    found = []
    if not os.path.isdir(store):
        return found
    for name in sorted(os.listdir(store)):
        if re.match(r'^incident-INC-\d{8}-\d+\.json$', name):
            with open(os.path.join(store, name), encoding='utf-8') as handle:
                found.append(json.load(handle))
    return found
