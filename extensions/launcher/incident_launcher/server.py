# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher: HTTP intake (POST /webhook, GET /healthz, GET /metrics), the spool and the worker pool.

A webhook is answered 2xx only after every accepted alert is in the spool, synced to disk.
Refusals: 400 bad JSON, 401 missing/bad credentials, 404/405 wrong route, 411 no length,
413 too large, 422 wrong schema or version (or no alert could be classified), 503 spool full.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

from incident_launcher import LauncherError, __version__
from incident_launcher import backends as backends_mod
from incident_launcher.auth import Authenticator
from incident_launcher.collection import ensure_collection, module_utils
from incident_launcher.dispatcher import Dispatcher
from incident_launcher.log import JsonLogger
from incident_launcher.metrics import Metrics
from incident_launcher.payload import Limits, PayloadError, dedup_key, one_alert_payload, parse, validate
from incident_launcher.spool import Deduplicator, Spool, encode, remove_tree, write_file

KEEP_PAYLOAD_BYTES = 65536
MAX_CRASHED_RUNS = 3


def _iso(unix):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(unix))


class Launcher:  # pylint: disable=too-many-instance-attributes
    """Intake, spool, first response and the worker pool of one launcher process."""

    def __init__(self, config, logger=None, backend=None):
        ensure_collection(config['collections_path'])
        self.config = config
        self.logger = logger or JsonLogger(level=config['log_level'])
        self.metrics = Metrics()
        limits = config['limits']
        self.limits = Limits(limits['max_body_bytes'], limits['max_depth'], limits['max_items'], limits['max_alerts'],
                             limits['max_labels'], limits['max_string'])
        auth = config['auth']
        self.auth = Authenticator(auth['bearer_token'], auth['basic_username'], auth['basic_password'], auth['allow_anonymous'])
        spool = config['spool']
        self.spool = Spool(spool['dir'], spool['max_pending'], spool['rejection_log'], spool['rejection_log_max_bytes'])
        self.dedup = Deduplicator(config['dedup_window'])
        try:
            self.catalog = module_utils('catalog').load_catalog(config['catalog'])
        except module_utils('errors').IncidentResponseError as exc:
            raise LauncherError('config: catalog: %s' % exc) from None
        self.backend = backend or backends_mod.build(config)
        self.first = None
        if config['first_response']['enabled']:
            from incident_launcher.first_response import FirstResponder  # pylint: disable=import-outside-toplevel

            self.first = FirstResponder(config, self.catalog, self.logger)
        workers = config['workers']
        self.dispatcher = Dispatcher(self._process, workers['concurrency'], on_change=self._gauges)
        self.cancel = threading.Event()
        self.stopped = threading.Event()
        self.httpd = None
        self.thread = None
        self._last_prune = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self):
        """Bind, resume the spool, start the workers and serve (in a thread); returns (address, port)."""
        # Bind first: a launcher that cannot listen exits before any run starts.
        self.httpd = LauncherHTTPServer((self.config['listen']['address'], self.config['listen']['port']), self)
        entries = self.spool.recover(self.logger)
        window = self.config['dedup_window']
        now = time.time()
        remembered = self.spool.recent(now - window) + [(entry.get('dedup_key'), entry.get('received_unix', 0)) for entry in entries]
        for key, when in sorted(remembered, key=lambda item: item[1]):
            self.dedup.remember(key, when)
        self.spool.prune(self.config['spool']['done_retention'])
        for entry in entries:
            self.dispatcher.submit(entry['key'], entry)
        self.dispatcher.start()
        address, port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.2}, name='launcher-http', daemon=True)
        self.thread.start()
        for warning in self.config.get('warnings', ()):
            self.logger.warning('config_warning', message=warning)
        self.logger.info('listening', address=address, port=port, tls=self.httpd.ssl_context is not None, backend=self.backend.name,
                         resumed=len(entries), first_response=self.first is not None, version=__version__,
                         auth='anonymous' if not self.auth.enabled else 'required')
        return address, port

    def stop(self):
        """Stop intake, let runs in progress finish (shutdown_grace), then cancel the rest; pending entries stay spooled."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        self.logger.info('stopping', queue_depth=self.dispatcher.depth(), in_flight=self.dispatcher.running())
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        if not self.dispatcher.stop(self.config['workers']['shutdown_grace']):
            self.cancel.set()
            self.dispatcher.stop(30)
        self.logger.info('stopped', queue_depth=self.dispatcher.depth())

    # -- metrics -------------------------------------------------------------------------------
    def _gauges(self, depth, running):
        self.metrics.set_gauge('incident_launcher_queue_depth', depth)
        self.metrics.set_gauge('incident_launcher_runs_in_flight', running)
        self.metrics.gauge_max('incident_launcher_runs_in_flight_peak', running)

    def health(self):
        writable = os.access(os.path.join(self.spool.root, 'pending'), os.W_OK)
        alive = self.dispatcher.alive()
        return {'status': 'ok' if writable and alive and not self.stopped.is_set() else 'degraded', 'spool_writable': writable,
                'workers_alive': alive, 'queue_depth': self.dispatcher.depth(), 'in_flight': self.dispatcher.running(),
                'backend': self.backend.name, 'version': __version__}

    # -- intake --------------------------------------------------------------------------------
    def reject(self, status, reason, message, remote, **fields):
        self.metrics.inc('incident_launcher_alerts_rejected_total', reason=reason)
        try:
            self.spool.log_rejection(reason, message, status=status, remote=remote, **fields)
        except OSError as exc:
            self.logger.error('rejection_log_failed', error=exc.strerror or str(exc))
        self.logger.warning('rejected', status=status, reason=reason, remote=remote, message=message[:300])
        return status, {'status': 'rejected', 'reason': reason, 'error': message}

    def intake(self, body, remote):
        """One authenticated webhook body -> (HTTP status, JSON answer)."""
        try:
            document = parse(body, self.limits)
            payload, alerts = validate(document, self.limits)
        except PayloadError as exc:
            fields = {'size': len(body), 'sha256': hashlib.sha256(body).hexdigest()}
            if exc.reason in ('schema', 'version') and len(body) <= KEEP_PAYLOAD_BYTES:
                # kept with the reason: a payload refused for its shape can still be read (and replayed) by a person
                fields['payload'] = json.loads(body)
            return self.reject(exc.status, exc.reason, exc.message, remote, **fields)
        self.metrics.inc('incident_launcher_alerts_received_total', len(alerts))
        now = time.time()
        classified, unclassified = [], []
        for alert in alerts:
            try:
                type_name, _why = self.catalog.classify(alert)
            except module_utils('errors').ValidationError as exc:
                unclassified.append((alert, exc.message))
                continue
            classified.append((alert, type_name))
        for alert, message in unclassified:
            # The alert itself is kept with the reason: nothing accepted is lost, even what cannot be handled.
            self.reject(422, 'unclassified', message, remote, alert=alert)
        if not classified:
            return 422, {'status': 'rejected', 'reason': 'unclassified', 'error': 'no alert could be classified (see the rejection log)',
                         'rejected': len(unclassified)}
        keys = [dedup_key(alert) for alert, _type in classified]
        duplicate = self.dedup.check_and_remember(keys)
        entries = []
        for (alert, type_name), key, dup in zip(classified, keys, duplicate):
            if dup:
                continue
            entries.append({
                'spool_version': 1, 'id': self.spool.new_id(alert['fingerprint']), 'key': alert['fingerprint'], 'dedup_key': key,
                'received_at': _iso(now), 'received_unix': now, 'remote': remote, 'incident_type': type_name,
                'category': self.catalog.types[type_name]['category'], 'attempts': 0, 'starts': 0, 'errors': [],
                'first_response': None, 'payload': one_alert_payload(payload, alert),
            })
        new_keys = [entry['dedup_key'] for entry in entries]
        if entries and not self.spool.reserve(len(entries)):
            self.dedup.forget(new_keys)
            status, answer = self.reject(503, 'spool_full', 'the spool holds %d alerts (spool.max_pending); retry later'
                                         % self.spool.max_pending, remote, alerts=len(entries))
            return status, answer
        try:
            if entries:
                self.spool.add(entries)
        except OSError as exc:
            self.spool.release(len(entries))
            self.dedup.forget(new_keys)
            self.logger.error('spool_write_failed', error=exc.strerror or str(exc))
            return self.reject(503, 'spool_error', 'the spool cannot be written: %s' % (exc.strerror or exc), remote)
        deduplicated = sum(duplicate)
        self.metrics.inc('incident_launcher_alerts_accepted_total', len(entries))
        if deduplicated:
            self.metrics.inc('incident_launcher_alerts_deduplicated_total', deduplicated)
        for entry in entries:
            self.dispatcher.submit(entry['key'], entry)
        self.logger.info('accepted', remote=remote, accepted=len(entries), deduplicated=deduplicated, rejected=len(unclassified),
                         ids=[entry['id'] for entry in entries][:20])
        return 200, {'status': 'accepted', 'accepted': len(entries), 'deduplicated': deduplicated, 'rejected': len(unclassified),
                     'ids': [entry['id'] for entry in entries]}

    # -- runs ----------------------------------------------------------------------------------
    def _process(self, entry):
        """Run one spooled entry; None when it is finished (done/ or failed/), else the delay before the next attempt."""
        try:
            return self._attempt(entry)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # A spool or store failure: the entry stays pending and is tried again.
            self.logger.error('run_error', entry=entry['id'], error='%s: %s' % (type(exc).__name__, exc))
            return self._backoff(max(1, entry.get('attempts', 0)))

    def _backoff(self, attempts):
        workers = self.config['workers']
        return min(workers['backoff_max'], workers['backoff_initial'] * (2 ** max(0, attempts - 1)))

    def _attempt(self, entry):
        workers = self.config['workers']
        if entry['starts'] - entry['attempts'] >= MAX_CRASHED_RUNS:
            return self._fail(entry, 'the launcher stopped during %d runs of this alert' % (entry['starts'] - entry['attempts']))
        entry['starts'] += 1
        self.spool.update(entry)
        self.metrics.inc('incident_launcher_runs_started_total')
        work = self.spool.work_dir(entry['id'])
        os.makedirs(work, mode=0o700, exist_ok=True)
        alert_path = os.path.join(work, 'alert.json')
        write_file(alert_path, encode(entry['payload']), mode=0o600)
        started = time.monotonic()
        try:
            if self.first is not None and self.first.applies(entry) and not entry.get('first_response'):
                self._first_response(entry)
            result = self.backend.run(entry, backends_mod.RunContext(alert_path, work, self.cancel.is_set, self.spool.update))
        finally:
            remove_tree(work)
        elapsed = round(time.monotonic() - started, 3)
        if result.interrupted:
            entry['starts'] -= 1
            self.spool.update(entry)
            self.logger.info('run_interrupted', entry=entry['id'], reason=result.reason)
            return 1.0
        if result.ok:
            entry['finished_at'] = _iso(time.time())
            entry['result'] = result.details
            self.spool.finish(entry, 'done')
            self.metrics.inc('incident_launcher_runs_succeeded_total')
            self.logger.info('run_succeeded', entry=entry['id'], fingerprint=entry['key'], seconds=elapsed, **_scalars(result.details))
            self._prune()
            return None
        self.metrics.inc('incident_launcher_runs_failed_total')
        entry['attempts'] += 1
        details = {key: value for key, value in result.details.items() if key != 'clear_job'}
        entry['errors'].append({'time': _iso(time.time()), 'attempt': entry['attempts'], 'reason': result.reason, 'details': details})
        entry['errors'] = entry['errors'][-10:]
        if result.details.get('clear_job'):
            entry.pop('awx_job', None)
        if result.retryable and entry['attempts'] < workers['max_attempts']:
            delay = self._backoff(entry['attempts'])
            entry['next_attempt_at'] = _iso(time.time() + delay)
            self.spool.update(entry)
            self.metrics.inc('incident_launcher_runs_retried_total')
            self.logger.warning('run_failed', entry=entry['id'], attempt=entry['attempts'], retry_in=delay, reason=result.reason)
            return delay
        return self._fail(entry, result.reason)

    def _fail(self, entry, reason):
        entry['failed_reason'] = reason
        entry['failed_at'] = _iso(time.time())
        self.spool.finish(entry, 'failed')
        self.metrics.inc('incident_launcher_alerts_failed_total')
        self.logger.error('alert_failed', entry=entry['id'], fingerprint=entry['key'], attempts=entry['attempts'], reason=reason)
        return None

    def _first_response(self, entry):
        try:
            summary = self.first.run(entry)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # The playbook still runs and isolates; the failure is logged and counted.
            self.metrics.inc('incident_launcher_first_response_total', result='error')
            self.logger.error('first_response_error', entry=entry['id'], error='%s: %s' % (type(exc).__name__, str(exc)[:500]))
            return
        self.metrics.inc('incident_launcher_first_response_total', result=summary['result'])
        if summary['result'] in ('success', 'skipped'):
            entry['first_response'] = summary
            self.spool.update(entry)

    def _prune(self):
        now = time.monotonic()
        if now - self._last_prune > 600:
            self._last_prune = now
            self.spool.prune(self.config['spool']['done_retention'])


def _scalars(details):
    return {key: value for key, value in details.items() if isinstance(value, (str, int, float, bool)) and key != 'output_tail'}


class LauncherHTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer with TLS (handshake in the connection's thread), a connection cap and JSON error logs."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, launcher):
        self.launcher = launcher
        self.slots = threading.BoundedSemaphore(launcher.config['limits']['max_connections'])
        self.ssl_context = _ssl_context(launcher.config['tls'])
        handler = type('Handler', (WebhookHandler,), {'launcher': launcher, 'timeout': launcher.config['limits']['request_timeout']})
        family = socket.AF_INET6 if ':' in address[0] else socket.AF_INET
        self.address_family = family
        try:
            super().__init__(address, handler)
        except OSError as exc:
            raise LauncherError('cannot listen on %s:%s: %s' % (address[0], address[1], exc.strerror or exc)) from None

    def get_request(self):
        sock, client = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, client

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.launcher.metrics.inc('incident_launcher_alerts_rejected_total', reason='too_many_connections')
            if self.ssl_context is None:
                try:
                    request.settimeout(1.0)
                    request.sendall(b'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
                except OSError:
                    pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        self.launcher.logger.warning('connection_error', remote=client_address[0] if client_address else None,
                                     error='%s: %s' % (type(error).__name__, str(error)[:200]))


def _ssl_context(tls):
    if not tls['cert_file']:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls['cert_file'], tls['key_file'])
        if tls['client_ca_file']:
            context.load_verify_locations(cafile=tls['client_ca_file'])
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise LauncherError('tls: cannot load the certificate, key or client CA: %s' % exc) from None
    return context


class WebhookHandler(http.server.BaseHTTPRequestHandler):
    """Routes: POST /webhook, GET /healthz, GET /metrics."""

    protocol_version = 'HTTP/1.1'
    # Headers and body are two writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK add ~40 ms.
    disable_nagle_algorithm = True
    server_version = 'incident-launcher/' + __version__
    sys_version = ''
    launcher = None

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Requests are logged by the launcher (structured), not by http.server."""

    def _send(self, status, body, content_type='application/json', headers=None):
        data = body if isinstance(body, bytes) else (json.dumps(body, sort_keys=True) + '\n').encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Cache-Control', 'no-store')
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def _route(self):
        return urllib.parse.urlsplit(self.path).path

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        route = self._route()
        if route == '/healthz':
            health = self.launcher.health()
            self._send(200 if health['status'] == 'ok' else 503, health)
        elif route == '/metrics':
            self._send(200, self.launcher.metrics.render().encode('utf-8'), 'text/plain; version=0.0.4; charset=utf-8')
        elif route == '/webhook':
            self._send(405, {'status': 'rejected', 'reason': 'method', 'error': 'use POST'}, headers={'Allow': 'POST'})
        else:
            self._send(404, {'status': 'rejected', 'reason': 'not_found', 'error': 'unknown path'})

    def _refuse_early(self, status, reason, message, headers=None):
        """Refusal before the body was read: the connection is closed afterwards."""
        self.close_connection = True
        status, answer = self.launcher.reject(status, reason, message, self.client_address[0])
        self._send(status, answer, headers=headers)

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        started = time.perf_counter()
        launcher = self.launcher
        if self._route() != '/webhook':
            self.close_connection = True
            self._send(404, {'status': 'rejected', 'reason': 'not_found', 'error': 'unknown path'})
            return
        ok, reason = launcher.auth.check(self.headers.get('Authorization'))
        if not ok:
            challenge = 'Bearer realm="incident-launcher"' if launcher.auth.bearer_token else 'Basic realm="incident-launcher"'
            self._refuse_early(401, reason, 'missing or invalid credentials', {'WWW-Authenticate': challenge})
            return
        if self.headers.get('Transfer-Encoding'):
            self._refuse_early(411, 'no_length', 'send the body with Content-Length (chunked bodies are not accepted)')
            return
        raw_length = self.headers.get('Content-Length')
        if raw_length is None:
            self._refuse_early(411, 'no_length', 'Content-Length is required')
            return
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError(raw_length)
        except ValueError:
            self._refuse_early(400, 'bad_request', 'Content-Length is not a number')
            return
        if length > launcher.limits.max_body_bytes:
            self._refuse_early(413, 'too_large', 'the body is %d bytes; the limit is %d' % (length, launcher.limits.max_body_bytes))
            return
        try:
            body = self.rfile.read(length)
        except (OSError, socket.timeout):
            self.close_connection = True
            return
        if len(body) != length:
            self._refuse_early(400, 'bad_request', 'the body ended after %d of %d bytes' % (len(body), length))
            return
        if launcher.stopped.is_set():
            self._refuse_early(503, 'stopping', 'the launcher is stopping; retry later', {'Retry-After': '5'})
            return
        status, answer = launcher.intake(body, self.client_address[0])
        headers = {'Retry-After': '30'} if status == 503 else None
        self._send(status, answer, headers=headers)
        if 200 <= status < 300:
            launcher.metrics.observe_ack(time.perf_counter() - started)

    def _not_allowed(self):
        self.close_connection = True
        self._send(405, {'status': 'rejected', 'reason': 'method', 'error': 'method not allowed'})

    do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815
