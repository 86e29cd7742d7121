# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a spooled alert is responded to: ansible-runner, AWX / Automation Controller, or the record only.

Every backend gets the spooled entry and a :class:`RunContext` and returns a :class:`RunResult`.
None of them passes alert content as Ansible extra vars that could be templated: the runner
backend passes the *path* of a file that holds the alert; the AWX backend passes it base64-encoded.
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from incident_launcher.collection import module_utils

TERMINAL_JOB_STATES = ('successful', 'failed', 'error', 'canceled')


class RunResult:
    """ok; else reason, and whether another attempt may help (retryable) or the run was cut short (interrupted)."""

    def __init__(self, ok, reason='', retryable=True, interrupted=False, details=None):
        self.ok = ok
        self.reason = reason
        self.retryable = retryable
        self.interrupted = interrupted
        self.details = details or {}


class RunContext:
    """What a backend may use: the alert file, a private work directory, a cancel flag and a way to save the entry."""

    def __init__(self, alert_path, work_dir, cancelled, save):
        self.alert_path = alert_path
        self.work_dir = work_dir
        self.cancelled = cancelled
        self.save = save


def _tail(text, limit=1500):
    text = text or ''
    return text[-limit:]


class RunnerBackend:
    """ansible-runner in this process: ``ansible-playbook <playbook> -e alert_file=<path> ...`` in a private data dir."""

    name = 'runner'

    def __init__(self, config):
        self.playbook = config['runner']['playbook']
        self.inventory = config['runner']['inventory']
        self.timeout = config['runner']['timeout']
        self.envvars = dict(config['runner']['env'])
        # Plain text in the failure reasons kept in the spool entry.
        self.envvars.setdefault('ANSIBLE_NOCOLOR', '1')
        if config['collections_path']:
            self.envvars.setdefault('ANSIBLE_COLLECTIONS_PATH', os.pathsep.join(config['collections_path']))
        self.static_vars = {'incident_store': config['incident_store'], 'incident_namespace': config['incident_namespace']}

    def run(self, entry, context):
        import ansible_runner  # pylint: disable=import-outside-toplevel

        # Only paths and the configured settings: nothing from the alert is ever an extra var.
        extravars = dict(self.static_vars, alert_file=context.alert_path)
        private = os.path.join(context.work_dir, 'runner')
        os.makedirs(private, mode=0o700, exist_ok=True)
        kwargs = {
            'private_data_dir': private,
            'playbook': self.playbook,
            'extravars': extravars,
            'envvars': self.envvars,
            'quiet': True,
            'ident': 'run',
            'cancel_callback': context.cancelled,
            'timeout': self.timeout,
        }
        if self.inventory:
            kwargs['inventory'] = self.inventory
        runner = ansible_runner.run(**kwargs)
        status, rc = runner.status, runner.rc
        if status == 'successful' and rc == 0:
            return RunResult(True, details={'rc': rc})
        if status == 'canceled':
            return RunResult(False, 'run canceled (launcher stopping)', interrupted=True)
        try:
            output = runner.stdout.read()
        except (OSError, AttributeError, ValueError):
            output = ''
        reason = 'ansible-runner status %s, rc %s' % (status, rc)
        if status == 'timeout':
            reason = 'ansible-runner timed out after %s s' % self.timeout
        return RunResult(False, reason, details={'rc': rc, 'output_tail': _tail(output)})


class RecordBackend:
    """Open or attach the incident in-process and nothing else: intake-only deployments, tests and benchmarks.

    The same call the ``incident`` module makes (``IncidentService.open(alerts=...)``), without Ansible:
    cheap, so a benchmark measures the launcher rather than ansible-playbook start-up.
    """

    name = 'record'

    def __init__(self, config):
        self.store = config['incident_store']
        self.catalog = module_utils('catalog').load_catalog(config['catalog'])

    def run(self, entry, context):
        service = module_utils('service').IncidentService(module_utils('store').IncidentStore(self.store), self.catalog,
                                                          actor='incident-launcher')
        try:
            outcome = service.open(alerts=entry['payload']['alerts'])
        except module_utils('errors').IncidentResponseError as exc:
            return RunResult(False, 'incident store: %s' % exc)
        result = outcome.as_result()
        return RunResult(True, details={'incident': result['id'], 'created': result['created']})


class AwxError(Exception):
    def __init__(self, message, status=0, retryable=False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class AwxBackend:
    """Launch a job template through AWX's REST API and follow the job until it ends.

    POST /api/v2/job_templates/<id>/launch/ with ``extra_vars: {<payload_variable>: base64(one-alert payload)}``
    (the template must have ask_variables_on_launch), then GET /api/v2/jobs/<id>/ until the status is
    successful, failed, error or canceled. 429 (after Retry-After) and 5xx answers and connection
    failures are retried; the launched job's id is saved in the spool entry first, so a retried or
    resumed entry follows that job instead of launching a second one.
    """

    name = 'awx'

    def __init__(self, config, sleep=time.sleep, clock=time.monotonic):
        awx = config['awx']
        self.url = awx['url'].rstrip('/')
        self.token = awx['token']
        self.template = awx['job_template_id']
        self.variable = awx['payload_variable']
        self.extra_vars = dict(awx['extra_vars'])
        self.poll_interval = awx['poll_interval']
        self.job_timeout = awx['job_timeout']
        self.request_timeout = awx['request_timeout']
        self.max_retries = awx['max_retries']
        self.max_retry_after = awx['max_retry_after']
        self.sleep = sleep
        self.clock = clock
        self.context = None
        if self.url.startswith('https://'):
            self.context = ssl.create_default_context(cafile=awx['ca_file'] or None)
            if not awx['validate_certs']:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    # -- HTTP ------------------------------------------------------------------------------
    def _once(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode('utf-8')
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header('Authorization', 'Bearer %s' % self.token)
        request.add_header('Accept', 'application/json')
        if data is not None:
            request.add_header('Content-Type', 'application/json')
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout, context=self.context) as response:  # nosec B310 - http(s) URL from config
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, exc.read()

    def _retry_after(self, headers, attempt):
        value = (headers or {}).get('Retry-After') if headers is not None else None
        delay = None
        if value:
            try:
                delay = float(value)
            except ValueError:
                parsed = email.utils.parsedate_to_datetime(value) if value else None
                if parsed is not None:
                    delay = parsed.timestamp() - time.time()
        if delay is None:
            delay = min(30.0, 0.5 * (2 ** attempt))
        return max(0.0, min(float(self.max_retry_after), delay))

    def request(self, method, path, body=None, cancelled=None):
        """``(status, document)``; retries 429, 5xx and connection failures; AwxError otherwise."""
        source = '%s %s' % (method, path)
        last = ''
        for attempt in range(self.max_retries + 1):
            if cancelled is not None and cancelled():
                raise AwxError('%s: canceled (launcher stopping)' % source, retryable=True)
            headers = None
            try:
                status, headers, raw = self._once(method, path, body)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, 'reason', exc)
                last = 'no answer (%s)' % (reason if isinstance(reason, str) else type(reason).__name__)
                status = None
            if status is not None and status < 400:
                try:
                    return status, json.loads(raw or b'{}')
                except ValueError:
                    raise AwxError('%s: %s answer is not JSON' % (source, status), status, retryable=True) from None
            if status is not None and status != 429 and status < 500:
                raise AwxError('%s: %s %s' % (source, status, _detail(raw)), status, retryable=False)
            if status is not None:
                last = '%s %s' % (status, _detail(raw))
            if attempt < self.max_retries:
                self.sleep(self._retry_after(headers if status == 429 else None, attempt))
        raise AwxError('%s: %s (after %d attempts)' % (source, last, self.max_retries + 1), retryable=True)

    # -- a run -----------------------------------------------------------------------------
    def run(self, entry, context):
        job = entry.get('awx_job')
        try:
            if not job:
                encoded = base64.b64encode(json.dumps(entry['payload'], sort_keys=True).encode('utf-8')).decode('ascii')
                extra_vars = dict(self.extra_vars)
                extra_vars[self.variable] = encoded
                _status, answer = self.request('POST', '/api/v2/job_templates/%d/launch/' % self.template, {'extra_vars': extra_vars},
                                               context.cancelled)
                job = answer.get('job') or answer.get('id')
                if not isinstance(job, int):
                    return RunResult(False, 'AWX launch answered without a job id', retryable=True)
                entry['awx_job'] = job
                context.save(entry)
            return self._follow(job, context)
        except AwxError as exc:
            return RunResult(False, 'AWX: %s' % exc, retryable=exc.retryable, details={'awx_job': job, 'status': exc.status})

    def _follow(self, job, context):
        deadline = self.clock() + self.job_timeout
        while True:
            _status, answer = self.request('GET', '/api/v2/jobs/%d/' % job, cancelled=context.cancelled)
            state = answer.get('status')
            if state == 'successful':
                return RunResult(True, details={'awx_job': job})
            if state in TERMINAL_JOB_STATES:
                # The job ran and failed: a new attempt launches a new job.
                return RunResult(False, 'AWX job %d ended %s' % (job, state), details={'awx_job': job, 'clear_job': True})
            if self.clock() >= deadline:
                return RunResult(False, 'AWX job %d still %s after %s s' % (job, state, self.job_timeout), details={'awx_job': job})
            if context.cancelled():
                return RunResult(False, 'following AWX job %d canceled (launcher stopping)' % job, interrupted=True)
            self.sleep(self.poll_interval)


def _detail(raw, limit=300):
    try:
        document = json.loads(raw)
    except (ValueError, TypeError):
        return (raw or b'')[:limit].decode('utf-8', 'replace')
    return json.dumps(document, sort_keys=True)[:limit]


BACKENDS = {'runner': RunnerBackend, 'awx': AwxBackend, 'record': RecordBackend}


def build(config):
    return BACKENDS[config['backend']](config)


def sanitise_url(url):
    """A URL for logs: no user info, no query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ''
    if parts.port:
        host = '%s:%d' % (host, parts.port)
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, '', ''))
