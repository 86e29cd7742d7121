# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A local AWX / Automation Controller that enforces the parts of the REST API the launcher uses.

- every request needs ``Authorization: Bearer <token>``: 401 ``{"detail": ...}`` without it or with another token;
- ``POST /api/v2/job_templates/<id>/launch/``: 404 for an unknown template; 400
  ``{"extra_vars": ["Variables ... provided, but this template cannot accept variables."]}`` when extra_vars are
  sent to a template with ``ask_variables_on_launch: false``; else 201 with the new job's id;
- ``GET /api/v2/jobs/<id>/``: 404 for an unknown job; the job is pending, then running, then ends after
  ``polls`` reads with the status the template's ``outcome(extra_vars)`` returns (a job can do real work there,
  e.g. open the incident the way the playbook would);
- scripted answers come first: ``script('POST', path, [(429, {'Retry-After': '1'}, {...}), ...])``.

Every request is recorded (method, path, headers, body, time).
"""

from __future__ import annotations

import collections
import http.server
import json
import re
import threading
import time

LAUNCH_RE = re.compile(r'^/api/v2/job_templates/(\d+)/launch/$')
JOB_RE = re.compile(r'^/api/v2/jobs/(\d+)/$')


class FakeAwx:
    def __init__(self, token='awx-test-token-0123456789', polls=2):
        self.token = token
        self.polls = polls
        self.templates = {}
        self.jobs = {}
        self.requests = []
        self.scripts = collections.defaultdict(collections.deque)
        self.lock = threading.Lock()
        self.next_job = 100
        handler = type('Handler', (_Handler,), {'awx': self})
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True)
        self.thread.start()

    def add_template(self, template_id, ask_variables_on_launch=True, outcome=None):
        """``outcome(extra_vars) -> 'successful' | 'failed' | 'error' | 'canceled'`` (default successful), run at launch."""
        with self.lock:
            self.templates[template_id] = {'id': template_id, 'ask_variables_on_launch': ask_variables_on_launch,
                                           'outcome': outcome or (lambda extra_vars: 'successful')}

    def script(self, method, path, answers):
        with self.lock:
            self.scripts[(method, path)].extend(answers)

    def received(self, method=None, path_prefix=''):
        with self.lock:
            return [entry for entry in self.requests
                    if (method is None or entry['method'] == method) and entry['path'].startswith(path_prefix)]

    def launches(self):
        return [entry for entry in self.received('POST') if LAUNCH_RE.match(entry['path'])]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    awx = None
    protocol_version = 'HTTP/1.1'
    # TCP_NODELAY: headers and body are two writes; with Nagle's algorithm the second waits for the client's
    # delayed ACK, 40 ms on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet."""

    def _answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _common(self, method):
        awx = self.awx
        raw = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ValueError
        path = self.path.split('?', 1)[0]
        with awx.lock:
            awx.requests.append({'time': time.monotonic(), 'method': method, 'path': path, 'headers': dict(self.headers), 'body': body})
            scripted = awx.scripts[(method, path)].popleft() if awx.scripts[(method, path)] else None
        auth = self.headers.get('Authorization')
        if not auth:
            self._answer(401, {'detail': 'Authentication credentials were not provided.'}, {'WWW-Authenticate': 'Bearer realm="api"'})
            return None, None
        if auth != 'Bearer %s' % awx.token:
            self._answer(401, {'detail': 'Invalid token.'}, {'WWW-Authenticate': 'Bearer realm="api"'})
            return None, None
        if scripted is not None:
            status, headers, answer = scripted
            self._answer(status, answer, headers)
            return None, None
        if body is ValueError:
            self._answer(400, {'detail': 'JSON parse error - Expecting value: line 1 column 1 (char 0)'})
            return None, None
        return path, body

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        path, body = self._common('POST')
        if path is None:
            return
        match = LAUNCH_RE.match(path)
        awx = self.awx
        template = awx.templates.get(int(match.group(1))) if match else None
        if template is None:
            self._answer(404, {'detail': 'Not found.'})
            return
        body = body or {}
        extra_vars = body.get('extra_vars') or {}
        if isinstance(extra_vars, str):
            try:
                extra_vars = json.loads(extra_vars)
            except ValueError:
                self._answer(400, {'extra_vars': ['Cannot parse as JSON (error: invalid) or YAML (error: invalid).']})
                return
        if extra_vars and not template['ask_variables_on_launch']:
            self._answer(400, {'extra_vars': ['Variables %s provided, but this template cannot accept variables.'
                                              % ', '.join(sorted(extra_vars))]})
            return
        final = template['outcome'](extra_vars)
        with awx.lock:
            awx.next_job += 1
            job_id = awx.next_job
            awx.jobs[job_id] = {'id': job_id, 'job_template': template['id'], 'extra_vars': extra_vars, 'reads': 0, 'final': final}
        self._answer(201, {'job': job_id, 'id': job_id, 'type': 'job', 'url': '/api/v2/jobs/%d/' % job_id, 'status': 'pending',
                           'ignored_fields': {}})

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        path, _body = self._common('GET')
        if path is None:
            return
        match = JOB_RE.match(path)
        awx = self.awx
        reads = 0
        with awx.lock:
            job = awx.jobs.get(int(match.group(1))) if match else None
            if job is not None:
                job['reads'] += 1
                reads = job['reads']
        if job is None:
            self._answer(404, {'detail': 'Not found.'})
            return
        status = 'pending' if reads == 1 and awx.polls > 1 else ('running' if reads < awx.polls else job['final'])
        self._answer(200, {'id': job['id'], 'type': 'job', 'status': status, 'failed': status in ('failed', 'error'),
                           'job_template': job['job_template']})
