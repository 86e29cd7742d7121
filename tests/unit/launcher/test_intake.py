# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher's HTTP intake under slow and hostile clients, in-process on loopback ports.

Attackers connect from other loopback addresses (127.0.0.2, ...) than the legitimate sender (127.0.0.1), as an
attacker elsewhere on the network would, and also from the sender's own address. Every load loop is bounded in
count and in time.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from incident_launcher.config import build
from incident_launcher.log import JsonLogger
from incident_launcher.server import Launcher

from tests.alerts import alert, payload
from tests.loadgen import Attack
from tests.conftest import snapshot

TOKEN = 'intake-test-token-5b9e2c'
TIMEOUT = 1.5


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(spool_dir=None, **overrides):
        data = {'listen': {'address': '127.0.0.1', 'port': 0}, 'auth': {'bearer_token': TOKEN}, 'backend': 'record',
                'spool': {'dir': spool_dir or str(tmp_path / 'spool')}, 'incident_store': str(tmp_path / 'store'),
                'limits': {'request_timeout': TIMEOUT}, 'workers': {'concurrency': 1, 'shutdown_grace': 1}}
        for key, value in overrides.items():
            data[key] = dict(data.get(key, {}), **value) if isinstance(value, dict) else value
        stream = io.StringIO()
        launcher = Launcher(build(data, base_dir=str(tmp_path)), JsonLogger(stream=stream))
        launcher.port = launcher.start()[1]
        launcher.log_stream = stream
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.stop()


def post(port, document, token=TOKEN, source='127.0.0.1', timeout=5.0, connection=None):
    """(status, answer, seconds) of one POST /webhook."""
    own = connection is None
    connection = connection or http.client.HTTPConnection('127.0.0.1', port, timeout=timeout, source_address=(source, 0))
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    headers = {'Content-Type': 'application/json'}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    started = time.monotonic()
    try:
        connection.request('POST', '/webhook', body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b'{}'), time.monotonic() - started
    finally:
        if own:
            connection.close()


def metric(launcher, name, **labels):
    return launcher.metrics.get(name, **labels)


def legit_alerts(port, count, prefix, source='127.0.0.1'):
    """Alerts posted one after the other, as Alertmanager would. How fast is the benchmark's business
    (benchmarks/bench_alert_storm.py); here each must be answered 200 within the client's 10 s."""
    results = []
    for number in range(count):
        status, answer, seconds = post(port, payload(alert('%s%04x' % (prefix, number))), source=source, timeout=10.0)
        results.append((status, answer.get('accepted'), seconds))
        time.sleep(0.05)
    return results


ATTACKERS = ['127.0.0.%d' % number for number in range(2, 6)]


@pytest.mark.parametrize('sources', [ATTACKERS, ['127.0.0.1']], ids=['from other addresses', 'from the sender\'s own address'])
def test_slowloris_does_not_stop_intake(serve, sources):
    """64 slow sockets used to take every connection slot: 0 of 20 alerts got a 2xx. Now 100 of them, over the limits."""
    launcher = serve(limits={'max_connections': 64, 'max_connections_per_peer': 64})
    with Attack(launcher.port, sources, 100, 'slow', seconds=8):
        time.sleep(1.0)
        results = legit_alerts(launcher.port, 20, 'a')
    assert [status for status, _accepted, _seconds in results] == [200] * 20
    closed = metric(launcher, 'incident_launcher_connections_closed_total', reason='evicted') + \
        metric(launcher, 'incident_launcher_connections_closed_total', reason='request_timeout')
    assert closed > 0 and metric(launcher, 'incident_launcher_connections_open_peak') <= 64


def test_a_reconnecting_flood_does_not_stop_intake(serve):
    launcher = serve(limits={'max_connections': 64, 'max_connections_per_peer': 32})
    with Attack(launcher.port, ATTACKERS + ['127.0.0.1'], 200, 'reconnect', seconds=8, max_connects=20000) as attack:
        time.sleep(0.5)
        results = legit_alerts(launcher.port, 20, 'b')
    assert [status for status, _accepted, _seconds in results] == [200] * 20, results
    assert attack.connects > 200


def test_an_authenticated_keep_alive_connection_is_never_evicted_for_an_unauthenticated_one(serve):
    launcher = serve(limits={'max_connections': 32, 'max_connections_per_peer': 16})
    keep = http.client.HTTPConnection('127.0.0.1', launcher.port, timeout=5)
    assert post(launcher.port, payload(alert('c001')), connection=keep)[0] == 200
    with Attack(launcher.port, ['127.0.0.1'], 60, 'slow', seconds=4):
        time.sleep(1.0)
        assert post(launcher.port, payload(alert('c002')), connection=keep)[0] == 200
    keep.close()
    assert metric(launcher, 'incident_launcher_connections_closed_total', reason='evicted') > 0


def test_one_deadline_for_headers_and_body(serve):
    launcher = serve()
    # headers that never end: closed at the deadline, whatever trickles in
    # (the margins are wide: the machine may be busy; without a total deadline the trickle would keep it open for ever)
    sock = socket.create_connection(('127.0.0.1', launcher.port), timeout=TIMEOUT + 6)
    started = time.monotonic()
    sock.sendall(b'POST /webhook HTTP/1.1\r\n')
    data = b'x'
    for _step in range(int((TIMEOUT + 6) / 0.2)):
        try:
            sock.sendall(b'X: y\r\n')
            sock.settimeout(0.2)
            data = sock.recv(100)
            if not data:
                break
        except socket.timeout:
            continue
        except OSError:
            data = b''
            break
    assert data == b'' and time.monotonic() - started < TIMEOUT + 4.0
    sock.close()
    assert metric(launcher, 'incident_launcher_connections_closed_total', reason='request_timeout') >= 1
    # an authenticated body that does not arrive in time: 408
    sock = socket.create_connection(('127.0.0.1', launcher.port), timeout=TIMEOUT + 6)
    started = time.monotonic()
    sock.sendall(b'POST /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{"ver' % TOKEN.encode())
    answer = sock.recv(4096)
    assert answer.startswith(b'HTTP/1.1 408') and time.monotonic() - started < TIMEOUT + 4.0
    sock.close()


def test_credentials_are_checked_before_the_body_is_read(serve):
    launcher = serve()
    sock = socket.create_connection(('127.0.0.1', launcher.port), timeout=5)
    started = time.monotonic()
    sock.sendall(b'POST /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 500000\r\n\r\n')
    answer = sock.recv(4096)
    assert answer.startswith(b'HTTP/1.1 401') and b'Connection: close' in answer and time.monotonic() - started < TIMEOUT
    sock.close()


def test_unauthenticated_requests_are_counted_never_written(serve, tmp_path):
    """Every 401 used to append and fsync a line to the rejection log, rotated once: 51 of them pushed out the only
    stored copy of an unclassified alert. Now they are counted and summarised in the log, and the disk is untouched."""
    launcher = serve(spool={'rejection_log_max_bytes': 4096})
    unknown = alert('dead01', alertname='SomethingElse', incident_type='no_such_type')
    assert post(launcher.port, payload(unknown))[0] == 422
    before = snapshot(tmp_path / 'spool')
    with open(launcher.spool.rejection_log, encoding='utf-8') as handle:
        assert json.loads(handle.readline())['alert']['fingerprint'] == 'dead01'
    for number in range(150):
        status = post(launcher.port, payload(alert('%04x' % number)), token=None if number % 2 else 'not-the-token',
                      source=ATTACKERS[number % len(ATTACKERS)])[0]
        assert status == 401
    assert snapshot(tmp_path / 'spool') == before
    assert metric(launcher, 'incident_launcher_alerts_rejected_total', reason='auth_missing') == 75
    assert metric(launcher, 'incident_launcher_alerts_rejected_total', reason='auth_invalid') == 75
    lines = [json.loads(line) for line in launcher.log_stream.getvalue().splitlines()]
    summaries = [line for line in lines if line['event'] == 'unauthenticated']
    assert 1 <= len(summaries) <= 2 and not [line for line in lines if line['event'] == 'rejected' and line['reason'].startswith('auth')]
    assert TOKEN not in launcher.log_stream.getvalue()


def test_head_and_routes(serve):
    launcher = serve()
    for path in ('/healthz', '/metrics'):
        connection = http.client.HTTPConnection('127.0.0.1', launcher.port, timeout=5)
        connection.request('HEAD', path)
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b'' and int(response.headers['Content-Length']) > 0
        connection.close()
    connection = http.client.HTTPConnection('127.0.0.1', launcher.port, timeout=5)
    connection.request('GET', '/healthz')
    health = json.loads(connection.getresponse().read())
    assert health['status'] == 'ok' and health['spool_writable'] is True and health['spool_free_bytes'] > 0
    connection.close()
    for method, path, status in (('POST', '/healthz', 405), ('GET', '/webhook', 405), ('GET', '/nope', 404)):
        connection = http.client.HTTPConnection('127.0.0.1', launcher.port, timeout=5)
        connection.request(method, path, body=b'' if method == 'POST' else None)
        assert connection.getresponse().status == status
        connection.close()


def test_headers_beyond_the_cap_close_the_connection(serve):
    launcher = serve(limits={'max_header_bytes': 8192})
    sock = socket.create_connection(('127.0.0.1', launcher.port), timeout=5)
    try:
        sock.sendall(b'POST /webhook HTTP/1.1\r\n' + b'X-Fill: ' + b'a' * 4000 + b'\r\n' + b'X-More: ' + b'b' * 5000 + b'\r\n')
        assert sock.recv(4096) == b''
    except ConnectionResetError:
        pass
    sock.close()
    assert metric(launcher, 'incident_launcher_connections_closed_total', reason='header_too_large') == 1


@pytest.fixture
def small_filesystem(tmp_path):
    """An 8 MiB tmpfs (root only, as in CI): a full disk that is not the machine's disk."""
    if os.geteuid() != 0 or not shutil.which('mount'):
        pytest.skip('mounting a tmpfs needs root')
    mountpoint = tmp_path / 'small'
    mountpoint.mkdir()
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', str(mountpoint)], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        pytest.skip('cannot mount a tmpfs here: %s' % result.stderr.strip())
    try:
        yield mountpoint
    finally:
        subprocess.run(['umount', '-l', str(mountpoint)], capture_output=True, check=False)


def test_healthz_reports_a_full_disk_and_nothing_is_acknowledged(serve, small_filesystem):
    launcher = serve(spool_dir=str(small_filesystem / 'spool'))
    assert launcher.health()['status'] == 'ok'
    filler = small_filesystem / 'filler'
    with open(filler, 'wb') as handle:
        for _chunk in range(16):  # at most 16 MiB, on an 8 MiB file system
            try:
                handle.write(b'\0' * 1048576)
                handle.flush()
            except OSError:
                break
    connection = http.client.HTTPConnection('127.0.0.1', launcher.port, timeout=5)
    connection.request('GET', '/healthz')
    response = connection.getresponse()
    health = json.loads(response.read())
    connection.close()
    assert response.status == 503 and health['status'] == 'degraded' and health['spool_writable'] is False
    assert 'full' in health['reason']
    status, answer, _seconds = post(launcher.port, payload(alert('f011')))
    assert status == 503 and answer['reason'] == 'spool_error'
    assert not os.listdir(small_filesystem / 'spool' / 'pending')
    filler.unlink()
    assert launcher.health()['status'] == 'ok'
    assert post(launcher.port, payload(alert('f011')))[0] == 200
