# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP services on a free loopback port that answer as Slack and PagerDuty do.

- Slack incoming webhook ``/services/T0001/B0001/<secret>``: JSON with ``text`` or ``blocks``; 200 ``ok``,
  400 ``invalid_payload`` / ``no_text``, 404 ``no_service``.
- Slack Web API ``/api/chat.postMessage``: ``Authorization: Bearer <token>``; 200 with ``{"ok": true, "ts": ...}``
  or ``{"ok": false, "error": "invalid_auth" | "not_authed" | "channel_not_found" | "no_text"}``.
- PagerDuty Events API v2 ``/v2/enqueue``: 32-character routing key, event_action, dedup_key, and for trigger a
  payload with summary, source and severity (critical, error, warning, info); 202 or 400 ``invalid event``.
- A generic webhook ``/hook`` (optional header check).

Scripted answers (``script(path, [(status, headers, body), ...])``) come first: 429 with Retry-After, 500, ...
Every request is recorded with its time, headers and decoded JSON body.
"""

from __future__ import annotations

import collections
import http.server
import json
import socketserver
import threading
import time
import urllib.parse

PD_SEVERITIES = ('critical', 'error', 'warning', 'info')


class Services:
    def __init__(self, slack_token='xoxb-test-0000-secret-token', webhook_secret='XyZsecretWebhookPart123', hook_token=None):
        self.slack_token = slack_token
        self.webhook_secret = webhook_secret
        self.hook_token = hook_token
        self.requests = []
        self.scripts = collections.defaultdict(collections.deque)
        self.lock = threading.Lock()
        self.ts = 1700000000
        handler = type('Handler', (_Handler,), {'services': self})
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True)
        self.thread.start()

    @property
    def slack_webhook_url(self):
        return '%s/services/T0001/B0001/%s' % (self.url, self.webhook_secret)

    def script(self, path, answers):
        with self.lock:
            self.scripts[path].extend(answers)

    def received(self, path):
        with self.lock:
            return [entry for entry in self.requests if entry['path'] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    services = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet."""

    def _answer(self, status, body, headers=None, content_type='application/json'):
        data = body if isinstance(body, bytes) else (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        services = self.services
        raw = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        path = urllib.parse.urlsplit(self.path).path
        with services.lock:
            services.requests.append({'time': time.monotonic(), 'path': path, 'target': self.path, 'headers': dict(self.headers),
                                      'body': body})
            scripted = services.scripts[path].popleft() if services.scripts[path] else None
        if scripted is not None:
            status, headers, answer = scripted
            self._answer(status, answer, headers, 'text/plain' if isinstance(answer, str) else 'application/json')
            return
        if self.path.startswith('/services/'):
            self._slack_webhook(body)
        elif path == '/api/chat.postMessage':
            self._slack_api(body)
        elif path == '/v2/enqueue':
            self._pagerduty(body)
        elif path == '/hook':
            if services.hook_token and self.headers.get('X-Token') != services.hook_token:
                self._answer(401, {'error': 'unauthorized'})
            elif not isinstance(body, dict):
                self._answer(400, {'error': 'expected JSON'})
            else:
                self._answer(200, {'received': True})
        else:
            self._answer(404, 'not found', content_type='text/plain')

    def _slack_webhook(self, body):
        if self.path != '/services/T0001/B0001/%s' % self.services.webhook_secret:
            self._answer(404, 'no_service', content_type='text/plain')
        elif not isinstance(body, dict) or self.headers.get('Content-Type', '').split(';')[0] != 'application/json':
            self._answer(400, 'invalid_payload', content_type='text/plain')
        elif not body.get('text') and not body.get('blocks'):
            self._answer(400, 'no_text', content_type='text/plain')
        elif body.get('blocks') and not isinstance(body['blocks'], list):
            self._answer(400, 'invalid_blocks', content_type='text/plain')
        else:
            self._answer(200, 'ok', content_type='text/plain')

    def _slack_api(self, body):
        auth = self.headers.get('Authorization', '')
        if not auth:
            self._answer(200, {'ok': False, 'error': 'not_authed'})
        elif auth != 'Bearer %s' % self.services.slack_token:
            self._answer(200, {'ok': False, 'error': 'invalid_auth'})
        elif not isinstance(body, dict) or not body.get('channel'):
            self._answer(200, {'ok': False, 'error': 'channel_not_found'})
        elif not body.get('text') and not body.get('blocks'):
            self._answer(200, {'ok': False, 'error': 'no_text'})
        else:
            with self.services.lock:
                self.services.ts += 1
                ts = '%d.000100' % self.services.ts
            self._answer(200, {'ok': True, 'channel': 'C0123456', 'ts': ts, 'message': {'text': body.get('text')}})

    def _pagerduty(self, body):
        errors = []
        if not isinstance(body, dict):
            errors.append('Event object is not JSON')
            body = {}
        key = body.get('routing_key')
        if not isinstance(key, str) or len(key) != 32:
            errors.append("'routing_key' must be 32 characters")
        action = body.get('event_action')
        if action not in ('trigger', 'acknowledge', 'resolve'):
            errors.append("'event_action' is invalid")
        if action in ('acknowledge', 'resolve') and not body.get('dedup_key'):
            errors.append("'dedup_key' is required for %s" % action)
        if len(str(body.get('dedup_key', ''))) > 255:
            errors.append("'dedup_key' is too long")
        if action == 'trigger':
            payload = body.get('payload') or {}
            for field in ('summary', 'source', 'severity'):
                if not payload.get(field):
                    errors.append("'payload.%s' is missing" % field)
            if payload.get('severity') and payload['severity'] not in PD_SEVERITIES:
                errors.append("'payload.severity' is invalid")
            if len(payload.get('summary', '')) > 1024:
                errors.append("'payload.summary' is too long")
        if errors:
            self._answer(400, {'status': 'invalid event', 'message': 'Event object is invalid', 'errors': errors})
        else:
            self._answer(202, {'status': 'success', 'message': 'Event processed', 'dedup_key': body.get('dedup_key')})


class SmtpServer:
    """A minimal SMTP receiver (EHLO, MAIL, RCPT, DATA, QUIT) that keeps the messages."""

    def __init__(self):
        self.messages = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b'220 localhost ESMTP test\r\n')
                envelope = {'from': None, 'to': [], 'data': b''}
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    command = line.decode('ascii', 'replace').strip()
                    verb = command.split(' ', 1)[0].upper()
                    if verb in ('EHLO', 'HELO'):
                        self.wfile.write(b'250 localhost\r\n')
                    elif verb == 'MAIL':
                        envelope['from'] = command[10:].strip('<> ')
                        self.wfile.write(b'250 OK\r\n')
                    elif verb == 'RCPT':
                        envelope['to'].append(command[8:].strip('<> '))
                        self.wfile.write(b'250 OK\r\n')
                    elif verb == 'DATA':
                        self.wfile.write(b'354 End data with <CR><LF>.<CR><LF>\r\n')
                        lines = []
                        while True:
                            data = self.rfile.readline()
                            if data in (b'.\r\n', b'.\n', b''):
                                break
                            lines.append(data)
                        envelope['data'] = b''.join(lines)
                        outer.messages.append(dict(envelope))
                        self.wfile.write(b'250 OK queued\r\n')
                    elif verb == 'QUIT':
                        self.wfile.write(b'221 Bye\r\n')
                        return
                    else:
                        self.wfile.write(b'250 OK\r\n')

        self.server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
