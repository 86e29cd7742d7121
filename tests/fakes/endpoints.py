# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the response playbooks probe, on a free loopback port, answering as the real services do.

- the exporter: ``GET /health`` (200 ``ok`` or 503) and ``GET /debug/pprof/heap`` (gzip bytes);
- Prometheus: ``GET /api/v1/query?query=...`` answers the HTTP API's JSON (``status``, ``data.resultType``
  ``vector``, ``data.result[].value`` as ``[time, "string"]``) from ``series``, keyed by a substring of the
  query; a query that matches nothing returns an empty vector, a query without ``query=`` is a 400 as in
  Prometheus;
- slurmrestd: ``GET /openapi/v3`` (200 with a small OpenAPI document, or 401 without a token);
- a ticket system: ``POST /tickets`` with a JSON body -> 201 ``{"id": "TICKET-<n>"}``.
Every request is recorded.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
import urllib.parse


class Endpoints:
    def __init__(self):
        self.healthy = True
        self.series = {}  # query substring -> list of (labels, value)
        self.requests = []
        self.lock = threading.Lock()
        self.tickets = 0
        handler = type('Handler', (_Handler,), {'endpoints': self})
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True)
        self.thread.start()

    def received(self, path):
        with self.lock:
            return [entry for entry in self.requests if entry['path'] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    endpoints = None
    protocol_version = 'HTTP/1.1'
    # TCP_NODELAY: headers and body are two writes; with Nagle's algorithm the second waits for the client's
    # delayed ACK, 40 ms on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet."""

    def _answer(self, status, body, content_type='application/json'):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body=None):
        parsed = urllib.parse.urlsplit(self.path)
        with self.endpoints.lock:
            self.endpoints.requests.append({'method': self.command, 'path': parsed.path, 'query': urllib.parse.parse_qs(parsed.query),
                                            'headers': dict(self.headers), 'body': body, 'time': time.time()})
        return parsed

    def do_GET(self):  # pylint: disable=invalid-name
        parsed = self._record()
        if parsed.path == '/health':
            if self.endpoints.healthy:
                self._answer(200, b'ok', 'text/plain')
            else:
                self._answer(503, b'unhealthy', 'text/plain')
        elif parsed.path == '/debug/pprof/heap':
            self._answer(200, gzip.compress(b'heap profile: 1: 2048 [1: 2048] @ heap/1048576\n'), 'application/octet-stream')
        elif parsed.path == '/api/v1/query':
            query = urllib.parse.parse_qs(parsed.query).get('query')
            if not query:
                self._answer(400, {'status': 'error', 'errorType': 'bad_data', 'error': 'parse error: no query'})
                return
            result = []
            for key, samples in self.endpoints.series.items():
                if key in query[0]:
                    result = [{'metric': labels, 'value': [time.time(), str(value)]} for labels, value in samples]
                    break
            self._answer(200, {'status': 'success', 'data': {'resultType': 'vector', 'result': result}})
        elif parsed.path == '/openapi/v3':
            self._answer(200, {'openapi': '3.0.2', 'info': {'title': 'Slurm REST API'}})
        else:
            self._answer(404, {'error': 'not found'})

    def do_POST(self):  # pylint: disable=invalid-name
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        parsed = self._record(body)
        if parsed.path != '/tickets':
            self._answer(404, {'error': 'not found'})
        elif not isinstance(body, dict) or not body.get('incident_id'):
            self._answer(400, {'error': 'incident_id is required'})
        else:
            with self.endpoints.lock:
                self.endpoints.tickets += 1
                number = self.endpoints.tickets
            self._answer(201, {'id': 'TICKET-%d' % number})
