# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher in-process with a scripted backend: spool before answer, dedup, rejections, retries, failed/."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import pytest

from incident_launcher.backends import RunResult
from incident_launcher.config import build
from incident_launcher.log import JsonLogger
from incident_launcher.server import Launcher

from tests.alerts import alert, payload

TOKEN = 'unit-test-token-4f1c'


class ScriptedBackend:
    name = 'scripted'

    def __init__(self, results=None, gate=None):
        self.results = list(results or [])
        self.gate = gate
        self.calls = []
        self.alert_files = []

    def run(self, entry, context):
        self.calls.append(entry['id'])
        with open(context.alert_path, encoding='utf-8') as handle:
            self.alert_files.append((context.alert_path, json.load(handle)))
        if self.gate is not None:
            self.gate.wait(10)
        return self.results.pop(0) if self.results else RunResult(True)


def make(tmp_path, backend, **overrides):
    data = {'auth': {'bearer_token': TOKEN}, 'spool': {'dir': str(tmp_path / 'spool')}, 'incident_store': str(tmp_path / 'store'),
            'backend': 'record', 'workers': {'concurrency': 2, 'max_attempts': 3, 'backoff_initial': 0.01, 'backoff_max': 0.05}}
    for key, value in overrides.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    stream = io.StringIO()
    launcher = Launcher(build(data, base_dir=str(tmp_path)), JsonLogger(stream=stream), backend=backend)
    launcher.log_stream = stream
    return launcher


def body(*alerts):
    return json.dumps(payload(*alerts)).encode()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def listing(launcher, state):
    return sorted(os.listdir(os.path.join(launcher.spool.root, state)))


def test_alerts_are_spooled_before_the_answer_and_deduplicated(tmp_path):
    gate = threading.Event()
    backend = ScriptedBackend(gate=gate)
    launcher = make(tmp_path, backend)
    status, answer = launcher.intake(body(alert('aa01'), alert('bb02'), alert('aa01')), '127.0.0.1')
    assert status == 200 and answer['accepted'] == 2 and answer['deduplicated'] == 1
    assert listing(launcher, 'pending') == sorted(entry_id + '.json' for entry_id in answer['ids'])
    status, answer = launcher.intake(body(alert('aa01')), '127.0.0.1')
    assert (status, answer['accepted'], answer['deduplicated']) == (200, 0, 1)
    # a resolution and a new firing (new startsAt) of the same alert are not duplicates
    status, answer = launcher.intake(body(alert('aa01', status='resolved'), alert('aa01', starts='2026-11-24T11:00:00Z')), '127.0.0.1')
    assert answer['accepted'] == 2
    assert launcher.metrics.get('incident_launcher_alerts_deduplicated_total') == 2
    assert launcher.metrics.get('incident_launcher_alerts_received_total') == 6
    launcher.dispatcher.start()
    gate.set()
    assert wait_for(lambda: not listing(launcher, 'pending'))
    launcher.dispatcher.stop(5)
    assert len(listing(launcher, 'done')) == 4
    # the backend got a one-alert v4 payload in a file inside the spool's work dir, removed afterwards
    path, document = backend.alert_files[0]
    assert path.startswith(os.path.join(launcher.spool.root, 'work')) and not os.path.exists(path)
    assert document['version'] == '4' and len(document['alerts']) == 1
    assert launcher.metrics.get('incident_launcher_runs_succeeded_total') == 4


def test_unclassified_alerts_are_rejected_with_the_alert_kept(tmp_path):
    launcher = make(tmp_path, ScriptedBackend())
    unknown = alert('cc03', incident_type='no_such_type', alertname='SomethingElse')
    status, answer = launcher.intake(body(alert('aa01'), unknown), '127.0.0.1')
    assert status == 200 and answer['accepted'] == 1 and answer['rejected'] == 1
    status, answer = launcher.intake(body(unknown), '127.0.0.1')
    assert status == 422 and answer['reason'] == 'unclassified'
    lines = [json.loads(line) for line in open(launcher.spool.rejection_log, encoding='utf-8')]
    assert [line['reason'] for line in lines] == ['unclassified', 'unclassified']
    assert lines[0]['alert']['fingerprint'] == 'cc03' and 'cannot classify' in lines[0]['message']


def test_schema_rejections_are_logged_without_secrets(tmp_path):
    launcher = make(tmp_path, ScriptedBackend())
    status, answer = launcher.intake(json.dumps(payload(version='3')).encode(), '10.0.0.9')
    assert status == 422 and answer['reason'] == 'version'
    status, _answer = launcher.intake(b'{"broken', '10.0.0.9')
    assert status == 400
    log = open(launcher.spool.rejection_log, encoding='utf-8').read()
    assert TOKEN not in log and TOKEN not in launcher.log_stream.getvalue()
    assert launcher.metrics.get('incident_launcher_alerts_rejected_total', reason='bad_json') == 1


def test_spool_full_answers_503_and_keeps_nothing(tmp_path):
    launcher = make(tmp_path, ScriptedBackend(), spool={'max_pending': 2})
    assert launcher.intake(body(alert('aa01'), alert('bb02')), '127.0.0.1')[0] == 200
    status, answer = launcher.intake(body(alert('cc03')), '127.0.0.1')
    assert status == 503 and answer['reason'] == 'spool_full'
    assert len(listing(launcher, 'pending')) == 2
    launcher.dispatcher.start()
    # the files go first, then the count: wait for both
    assert wait_for(lambda: not listing(launcher, 'pending') and launcher.spool.pending_count == 0)
    # Alertmanager retries the 503: the alert was not remembered as seen, so it is accepted now
    assert launcher.intake(body(alert('cc03')), '127.0.0.1')[1]['accepted'] == 1
    launcher.dispatcher.stop(5)


def test_a_failed_run_is_retried_then_done(tmp_path):
    backend = ScriptedBackend([RunResult(False, 'ansible-runner status failed, rc 2')])
    launcher = make(tmp_path, backend)
    launcher.dispatcher.start()
    launcher.intake(body(alert('aa01')), '127.0.0.1')
    assert wait_for(lambda: listing(launcher, 'done'))
    launcher.dispatcher.stop(5)
    done = launcher.spool.read('done', listing(launcher, 'done')[0][:-5])
    assert done['attempts'] == 1 and done['starts'] == 2 and done['errors'][0]['reason'].startswith('ansible-runner status failed')
    assert launcher.metrics.get('incident_launcher_runs_failed_total') == 1
    assert launcher.metrics.get('incident_launcher_runs_retried_total') == 1


@pytest.mark.parametrize('results, attempts', [
    ([RunResult(False, 'boom %d' % number) for number in range(5)], 3),
    ([RunResult(False, 'AWX: 404 template', retryable=False)], 1),
])
def test_the_last_failure_moves_the_alert_to_failed_with_its_reason(tmp_path, results, attempts):
    launcher = make(tmp_path, ScriptedBackend(results))
    launcher.dispatcher.start()
    launcher.intake(body(alert('aa01')), '127.0.0.1')
    assert wait_for(lambda: listing(launcher, 'failed'))
    launcher.dispatcher.stop(5)
    failed = launcher.spool.read('failed', listing(launcher, 'failed')[0][:-5])
    assert failed['attempts'] == attempts and failed['failed_reason'] == results[attempts - 1].reason
    assert len(failed['errors']) == attempts and not listing(launcher, 'pending')
    assert launcher.metrics.get('incident_launcher_alerts_failed_total') == 1


def test_an_alert_that_keeps_crashing_the_launcher_ends_in_failed(tmp_path):
    launcher = make(tmp_path, ScriptedBackend())
    launcher.intake(body(alert('aa01')), '127.0.0.1')
    entry_id = listing(launcher, 'pending')[0][:-5]
    entry = launcher.spool.read('pending', entry_id)
    entry['starts'] = 3  # three runs began and none finished: the launcher died during each
    launcher.spool.update(entry)
    assert launcher._process(launcher.spool.read('pending', entry_id)) is None  # pylint: disable=protected-access
    assert 'stopped during 3 runs' in launcher.spool.read('failed', entry_id)['failed_reason']


def test_an_interrupted_run_stays_pending(tmp_path):
    launcher = make(tmp_path, ScriptedBackend([RunResult(False, 'canceled', interrupted=True)]))
    launcher.intake(body(alert('aa01')), '127.0.0.1')
    entry_id = listing(launcher, 'pending')[0][:-5]
    delay = launcher._process(launcher.spool.read('pending', entry_id))  # pylint: disable=protected-access
    assert delay is not None
    entry = launcher.spool.read('pending', entry_id)
    assert entry['starts'] == 0 and entry['attempts'] == 0
