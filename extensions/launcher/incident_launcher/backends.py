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
import hashlib
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import stores as stores_mod

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


def store_settings(config):
    """The incident store of the configuration: ``incident_store`` (the directory; with the kubernetes store, of evidence,
    reports and the outbox) and the ``store`` section."""
    store = config.get('store') or {}
    connection = {key: store.get(key) for key in ('kubeconfig', 'context', 'request_timeout') if store.get(key) is not None}
    return stores_mod.settings(store.get('backend') or 'file', config['incident_store'], store.get('namespace'), connection)


def store_factory(config):
    """One StoreFactory per launcher (one API client shared by its threads)."""
    return stores_mod.StoreFactory(store_settings(config))


def store_environment(config):
    """What a playbook run needs to reach the same store (the modules' INCIDENT_RESPONSE_STORE_* fallbacks)."""
    store = config.get('store') or {}
    if (store.get('backend') or 'file') != 'kubernetes':
        return {}
    environment = {'INCIDENT_RESPONSE_STORE_BACKEND': 'kubernetes', 'INCIDENT_RESPONSE_STORE_NAMESPACE': store['namespace']}
    if store.get('kubeconfig'):
        environment['INCIDENT_RESPONSE_STORE_KUBECONFIG'] = store['kubeconfig']
    if store.get('context'):
        environment['INCIDENT_RESPONSE_STORE_CONTEXT'] = store['context']
    return environment


def run_id(entry):
    """The response run id of a spool entry: stable, so that the entry resumed after a restart continues its own run."""
    return 'launcher-%s' % hashlib.sha256(entry['id'].encode('utf-8')).hexdigest()[:16]


class RunnerBackend:
    """ansible-runner in this process: ``ansible-playbook <playbook> -e alert_file=<path> ...`` in a private data dir.

    A run that ends badly without handing its incident over itself (its ansible-playbook was killed, timed out, or
    could not load a module or collection) is handed over by ``playbooks/handover.yml``: compensation, the run recorded
    as lost, a notification, the escalation due now. Such an entry is not retried: a person takes over.
    """

    name = 'runner'
    HANDOVER_PLAYBOOK = 'slurm_exporter.incident_response.handover'
    HANDOVER_TIMEOUT = 900

    def __init__(self, config, stores=None):
        self.playbook = config['runner']['playbook']
        self.inventory = config['runner']['inventory']
        self.timeout = config['runner']['timeout']
        self.envvars = dict(config['runner']['env'])
        # Plain text in the failure reasons kept in the spool entry.
        self.envvars.setdefault('ANSIBLE_NOCOLOR', '1')
        if config['collections_path']:
            self.envvars.setdefault('ANSIBLE_COLLECTIONS_PATH', os.pathsep.join(config['collections_path']))
        # The playbook's modules use the launcher's store (their INCIDENT_RESPONSE_STORE_* fallbacks).
        for key, value in store_environment(config).items():
            self.envvars.setdefault(key, value)
        self.stores = stores or store_factory(config)
        self.catalog = config['catalog']
        self.static_vars = {'incident_store': config['incident_store'], 'incident_namespace': config['incident_namespace'],
                            'incident_deployment': config['incident_deployment'],
                            # The run may take the runner's time-out; the record's deadline says when it is lost.
                            'incident_run_deadline': max(60, min(86400, int(self.timeout) + 60)),
                            # The audit actor of the run (lookup audit_actor): launcher:incident-launcher (run <id>).
                            'incident_launched_by': 'incident-launcher'}

    def _run(self, playbook, extravars, context, private, timeout):
        import ansible_runner  # pylint: disable=import-outside-toplevel

        os.makedirs(private, mode=0o700, exist_ok=True)
        kwargs = {
            'private_data_dir': private,
            'playbook': playbook,
            'extravars': extravars,
            'envvars': self.envvars,
            'quiet': True,
            'ident': 'run',
            'cancel_callback': context.cancelled,
            'timeout': timeout,
        }
        if self.inventory:
            kwargs['inventory'] = self.inventory
        return ansible_runner.run(**kwargs)

    def run(self, entry, context):
        # Only paths and the configured settings: nothing from the alert is ever an extra var.
        run = run_id(entry)
        extravars = dict(self.static_vars, alert_file=context.alert_path, response_run_id=run)
        runner = self._run(self.playbook, extravars, context, os.path.join(context.work_dir, 'runner'), self.timeout)
        status, rc = runner.status, runner.rc
        if status == 'successful' and rc == 0:
            return RunResult(True, details={'rc': rc, 'run': run})
        if status == 'canceled':
            return RunResult(False, 'run canceled (launcher stopping)', interrupted=True)
        try:
            output = runner.stdout.read()
        except (OSError, AttributeError, ValueError):
            output = ''
        reason = 'ansible-runner status %s, rc %s' % (status, rc)
        if status == 'timeout':
            reason = 'ansible-runner timed out after %s s' % self.timeout
        details = {'rc': rc, 'run': run, 'output_tail': _tail(output)}
        states = self.run_states(entry, run)
        unfinished = sorted(incident for incident, outcome in states.items() if outcome == 'running')
        if unfinished:
            details['handover'] = self.hand_over(entry, context, run, reason, unfinished)
            return RunResult(False, '%s; incident %s handed over to a person (%s)' % (reason, ', '.join(unfinished), details['handover']),
                             retryable=False, details=details)
        if states:
            # The playbook handed its incident over itself (the role's rescue): a person takes over, nothing to retry.
            return RunResult(False, '%s; incident %s handed over to a person by the playbook' % (reason, ', '.join(sorted(states))),
                             retryable=False, details=details)
        # It failed before it claimed a run (no incident yet): retried as any failed run.
        return RunResult(False, reason, details=details)

    def run_states(self, entry, run):
        """``{incident id: outcome}`` of the response run ``run`` in the open incidents that hold this entry's alert."""
        fingerprints = [alert.get('fingerprint') for alert in entry['payload']['alerts'] if alert.get('fingerprint')]
        found = {}
        try:
            store = self.stores(read_only=True)
            for incident_id in store.find_open(fingerprints):
                for item in store.read(incident_id).get('runs') or []:
                    if item['id'] == run:
                        found[incident_id] = item['outcome']
        except IncidentResponseError:
            return {}
        return found

    def hand_over(self, entry, context, run, reason, incidents):
        """playbooks/handover.yml for the run; if that cannot run either, the run is recorded as lost in-process (the
        escalation is then due now, and the escalation job tells the next tier). Returns what happened."""
        extravars = dict(self.static_vars, alert_file=context.alert_path, response_run_id=run, handover_reason=reason[:500])
        try:
            runner = self._run(self.HANDOVER_PLAYBOOK, extravars, context, os.path.join(context.work_dir, 'handover'),
                               self.HANDOVER_TIMEOUT)
            if runner.status == 'successful' and runner.rc == 0 and 'running' not in self.run_states(entry, run).values():
                return 'handover playbook ran'
            outcome = 'handover playbook %s, rc %s' % (runner.status, runner.rc)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            outcome = 'handover playbook could not run: %s' % type(exc).__name__
        service = IncidentService(self.stores(), load_catalog(self.catalog), actor='incident-launcher')
        for incident_id in incidents:
            service.update(incident_id, edits={'run': {'id': run, 'outcome': 'lost', 'reason': '%s; %s' % (reason, outcome)}})
        return outcome + '; run recorded as lost by the launcher'


class RecordBackend:
    """Open or attach the incident in-process and nothing else: intake-only deployments, tests and benchmarks.

    The same call the ``incident`` module makes (``IncidentService.open(alerts=...)``), without Ansible:
    cheap, so a benchmark measures the launcher rather than ansible-playbook start-up.
    """

    name = 'record'

    def __init__(self, config, stores=None):
        self.stores = stores or store_factory(config)
        self.catalog = load_catalog(config['catalog'])

    def run(self, entry, context):
        service = IncidentService(self.stores(), self.catalog, actor='incident-launcher')
        try:
            outcome = service.open(alerts=entry['payload']['alerts'])
        except IncidentResponseError as exc:
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

    def __init__(self, config, stores=None, sleep=time.sleep, clock=time.monotonic):  # pylint: disable=unused-argument
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


def build(config, stores=None):
    return BACKENDS[config['backend']](config, stores)


def sanitise_url(url):
    """A URL for logs: no user info, no query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ''
    if parts.port:
        host = '%s:%d' % (host, parts.port)
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, '', ''))
