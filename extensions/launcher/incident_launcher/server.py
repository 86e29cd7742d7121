# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher: HTTP intake (POST /webhook, GET|HEAD /healthz, GET|HEAD /metrics), the spool and the worker pool.

A webhook is answered 2xx only after every accepted alert is in the spool, synced to disk.
Refusals: 400 bad JSON, 401 missing/bad credentials, 404/405 wrong route, 408 body too slow, 411 no length,
413 too large, 422 wrong schema or version (or no alert could be classified), 503 spool full or busy.
The HTTP side (deadlines, connection limits) is intake.py; payloads follow the collection's Alertmanager
contract (plugins/module_utils/alertmanager.py).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
import time

from incident_launcher import LauncherError, __version__
from incident_launcher import backends as backends_mod
from incident_launcher.auth import Authenticator
from incident_launcher.clusterspool import ClaimLost, ClusterSpool
from incident_launcher.dispatcher import Dispatcher
from incident_launcher.inbound import Inbound
from incident_launcher.log import JsonLogger
from incident_launcher.intake import Intake, ssl_context
from incident_launcher.metrics import Metrics
from incident_launcher.spool import Deduplicator, Spool, encode, remove_tree, write_file
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.alertmanager import (
    Limits, PayloadError, dedup_key, one_alert_payload, parse, validate_payload)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.correlation import group_key, settings as correlation_settings
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError, ValidationError

KEEP_PAYLOAD_BYTES = 65536
MAX_CRASHED_RUNS = 3
# /healthz: the spool needs room for a few request bodies, and a real write, at most every PROBE_INTERVAL seconds.
MIN_FREE_BYTES = 4 * 1048576
PROBE_INTERVAL = 5.0


def _iso(unix):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(unix))


class Launcher:  # pylint: disable=too-many-instance-attributes
    """Intake, spool, first response and the worker pool of one launcher process."""

    def __init__(self, config, logger=None, backend=None):
        self.config = config
        self.logger = logger or JsonLogger(level=config['log_level'])
        self.metrics = Metrics()
        limits = config['limits']
        self.limits = Limits(limits['max_body_bytes'], limits['max_depth'], limits['max_items'], limits['max_alerts'],
                             limits['max_labels'], limits['max_string'])
        auth = config['auth']
        self.auth = Authenticator(auth['bearer_token'], auth['basic_username'], auth['basic_password'], auth['allow_anonymous'])
        try:
            self.stores = backends_mod.store_factory(config)
        except IncidentResponseError as exc:
            raise LauncherError('config: store: %s' % exc) from None
        spool = config['spool']
        self.spool = Spool(spool['dir'], spool['max_pending'], spool['rejection_log'], spool['rejection_log_max_bytes'],
                           spool['rejection_log_backups'])
        if spool['backend'] == 'kubernetes':
            # Several replicas share the accepted alerts through the API server (clusterspool.py); the directory keeps
            # the run work directories and the rejection log.
            try:
                kube = self.stores.client()
            except IncidentResponseError as exc:
                raise LauncherError('config: spool: %s' % exc) from None
            self.spool = ClusterSpool(self.spool, kube, config['store']['namespace'], spool['group'], spool['claim_ttl'],
                                      config['dedup_window'])
        self.dedup = Deduplicator(config['dedup_window'])
        try:
            self.catalog = load_catalog(config['catalog'])
        except IncidentResponseError as exc:
            raise LauncherError('config: catalog: %s' % exc) from None
        try:
            self.correlation = correlation_settings(config['correlation'], self.catalog)
        except IncidentResponseError as exc:
            raise LauncherError('config: %s' % exc) from None
        self.workload = '%s/%s' % (config['incident_namespace'], config['incident_deployment'])
        self.backend = backend or backends_mod.build(config, self.stores)
        self.first = None
        if config['first_response']['enabled']:
            from incident_launcher.first_response import FirstResponder  # pylint: disable=import-outside-toplevel

            self.first = FirstResponder(config, self.catalog, self.logger, self.stores)
        # People in the loop: Slack and PagerDuty requests, signed (inbound.py); None when no secret is configured.
        self.inbound = None
        if config['inbound']['slack']['signing_secrets'] or config['inbound']['pagerduty']['webhook_secrets']:
            self.inbound = Inbound(config, self.catalog, self.metrics, self.logger, stores=self.stores)
        workers = config['workers']
        self.dispatcher = Dispatcher(self._process, workers['concurrency'], on_change=self._gauges)
        self.cancel = threading.Event()
        self.stopped = threading.Event()
        self.scanner = None
        self.intake_server = None
        self._last_prune = 0.0
        self._probe = (0.0, None)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self):
        """Bind, resume the spool, start the workers and serve (in a thread); returns (address, port)."""
        # Bind first: a launcher that cannot listen exits before any run starts.
        self.intake_server = Intake(self, ssl_context(self.config['tls']))
        address, port = self.intake_server.bind(self.config['listen']['address'], self.config['listen']['port'])
        entries = self.spool.recover(self.logger)
        window = self.config['dedup_window']
        now = time.time()
        remembered = self.spool.recent(now - window) + [(entry.get('dedup_key'), entry.get('received_unix', 0)) for entry in entries]
        for key, when in sorted(remembered, key=lambda item: item[1]):
            self.dedup.remember(key, when)
        self.spool.prune(self.config['spool']['done_retention'])
        for entry in entries:
            self.dispatcher.submit(self.run_key(entry), entry)
        self.dispatcher.start()
        if self.spool.backend == 'kubernetes':
            self.scanner = threading.Thread(target=self._replicas, name='launcher-replicas', daemon=True)
            self.scanner.start()
        self.intake_server.start()
        for warning in self.config.get('warnings', ()):
            self.logger.warning('config_warning', message=warning)
        self.logger.info('listening', address=address, port=port, tls=self.intake_server.ssl_context is not None, backend=self.backend.name,
                         resumed=len(entries), spool=self.spool.backend, replica=getattr(self.spool, 'holder', None),
                         first_response=self.first is not None, version=__version__,
                         auth='anonymous' if not self.auth.enabled else 'required', store=self.stores.location,
                         inbound=sorted(source for source in ('slack', 'pagerduty') if self.inbound and self.inbound.configured(source)))
        return address, port

    def stop(self):
        """Stop intake, let runs in progress finish (shutdown_grace), then cancel the rest; pending entries stay spooled."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        self.logger.info('stopping', queue_depth=self.dispatcher.depth(), in_flight=self.dispatcher.running())
        if self.intake_server is not None:
            self.intake_server.stop()
        if self.inbound is not None:
            self.inbound.stop()
        if not self.dispatcher.stop(self.config['workers']['shutdown_grace']):
            self.cancel.set()
            self.dispatcher.stop(30)
        if self.scanner is not None:
            self.scanner.join(10)
        # The other replicas take over what this one still holds at once, instead of after claim_ttl.
        self.spool.stop_heartbeat()
        self.stores.close()
        self.logger.info('stopped', queue_depth=self.dispatcher.depth())

    # -- replicas (the cluster spool) -----------------------------------------------------------
    def _replicas(self):
        """Renew this replica's heartbeat every claim_ttl / 3 seconds; every scan_interval, queue the pending entries of
        lost replicas (and those nobody holds). Runs until the launcher stops."""
        spool_config = self.config['spool']
        renew_every = spool_config['claim_ttl'] / 3.0
        next_renew = next_scan = time.monotonic()
        while not self.stopped.is_set():
            now = time.monotonic()
            if now >= next_renew:
                if not self.spool.heartbeat():
                    self.metrics.inc('incident_launcher_heartbeat_failures_total')
                    self.logger.warning('heartbeat_failed', replica=self.spool.holder, claims_valid=self.spool.claims_valid())
                next_renew = now + renew_every
            if now >= next_scan:
                try:
                    found = self.spool.scan()
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    self.logger.error('spool_scan_failed', error='%s: %s' % (type(exc).__name__, exc))
                    found = []
                for entry in found:
                    self.logger.info('spool_entry_found', entry=entry['id'])
                    self.dispatcher.submit(self.run_key(entry), entry)
                next_scan = now + spool_config['scan_interval']
                self._prune()
            self.stopped.wait(max(0.05, min(next_renew, next_scan) - time.monotonic()))

    def _run_cancelled(self):
        """A run stops when the launcher stops, or when this replica's claims may be taken over (no heartbeat)."""
        return self.cancel.is_set() or not self.spool.claims_valid()

    # -- metrics -------------------------------------------------------------------------------
    def _gauges(self, depth, running):
        self.metrics.set_gauge('incident_launcher_queue_depth', depth)
        self.metrics.set_gauge('incident_launcher_runs_in_flight', running)
        self.metrics.gauge_max('incident_launcher_runs_in_flight_peak', running)

    def spool_writable(self):
        """``(writable, reason, free bytes)``: the spool takes a new alert (permissions, free space and inodes, a real write)."""
        pending = os.path.join(self.spool.root, 'pending')
        try:
            stats = os.statvfs(pending)
        except OSError as exc:
            return False, 'spool: %s' % (exc.strerror or exc), None
        free = stats.f_bavail * stats.f_frsize
        if not os.access(pending, os.W_OK | os.X_OK):
            return False, 'spool: %s is not writable by uid %d' % (pending, os.getuid()), free
        if free < MIN_FREE_BYTES:
            return False, 'spool: the file system is full (%d bytes free, %d needed)' % (free, MIN_FREE_BYTES), free
        if stats.f_files and not stats.f_favail:
            return False, 'spool: the file system has no free inodes', free
        # A real write (no fsync: /healthz is unauthenticated); a success is trusted for PROBE_INTERVAL seconds.
        now = time.monotonic()
        when, failure = self._probe
        if failure is not None or now - when >= PROBE_INTERVAL:
            failure = None
            probe = os.path.join(self.spool.root, '.healthz-probe')
            try:
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, b'x' * 4096)
                finally:
                    os.close(fd)
            except OSError as exc:
                failure = 'spool: a test write failed: %s' % (os.strerror(exc.errno) if exc.errno else exc)
                if exc.errno == errno.ENOSPC:
                    failure = 'spool: the file system is full (a test write failed: %s)' % os.strerror(exc.errno)
            finally:
                try:
                    os.unlink(probe)
                except OSError:
                    pass
            self._probe = (now, failure)
        return failure is None, failure, free

    def health(self):
        writable, reason, free = self.spool_writable()
        alive = self.dispatcher.alive()
        claims = self.spool.claims_valid()
        ok = writable and alive and claims and not self.stopped.is_set()
        document = {'status': 'ok' if ok else 'degraded', 'spool_writable': writable, 'spool_free_bytes': free,
                    'workers_alive': alive, 'queue_depth': self.dispatcher.depth(), 'in_flight': self.dispatcher.running(),
                    'backend': self.backend.name, 'version': __version__}
        if reason:
            document['reason'] = reason
        elif not alive:
            document['reason'] = 'workers: a worker thread died'
        elif not claims:
            document['reason'] = 'spool: the replica heartbeat has not been renewed for claim_ttl / 2 (API server unreachable?)'
        elif self.stopped.is_set():
            document['reason'] = 'stopping'
        return document

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
            payload, alerts = validate_payload(document, self.limits)
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
            except ValidationError as exc:
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
            added = self.spool.add(entries) if entries else []
        except OSError as exc:
            # What the cluster spool took before the failure is durable: it runs (Alertmanager's retry is then deduplicated).
            created = getattr(exc, 'created', [])
            self.spool.release(len(entries) - len(created))
            self.dedup.forget([entry['dedup_key'] for entry in entries if entry not in created])
            for entry in created:
                self.dispatcher.submit(self.run_key(entry), entry)
            self.logger.error('spool_write_failed', error=exc.strerror or str(exc), accepted=len(created))
            return self.reject(503, 'spool_error', 'the spool cannot be written: %s' % (exc.strerror or exc), remote)
        if len(added) < len(entries):
            # Another replica (or an earlier request) already took these alerts: duplicates across replicas.
            self.spool.release(len(entries) - len(added))
            duplicate = duplicate + [True] * (len(entries) - len(added))
            entries = added
        deduplicated = sum(duplicate)
        self.metrics.inc('incident_launcher_alerts_accepted_total', len(entries))
        if deduplicated:
            self.metrics.inc('incident_launcher_alerts_deduplicated_total', deduplicated)
        for entry in entries:
            self.dispatcher.submit(self.run_key(entry), entry)
        self.logger.info('accepted', remote=remote, accepted=len(entries), deduplicated=deduplicated, rejected=len(unclassified),
                         ids=[entry['id'] for entry in entries][:20])
        return 200, {'status': 'accepted', 'accepted': len(entries), 'deduplicated': deduplicated, 'rejected': len(unclassified),
                     'ids': [entry['id'] for entry in entries]}

    def run_key(self, entry):
        """Entries with one key run one at a time, in arrival order: the alerts that correlate into one incident (the same
        type, or related types, on the workload), so that a correlated alert waits for the run of its incident instead
        of starting a second one; incidents of other types on the workload run side by side (their steps are serialised
        by the workload's Lease). Entries spooled before correlation have no type: their fingerprint."""
        if not entry.get('incident_type') or not self.correlation['enabled']:
            return entry['key']
        return group_key(entry['incident_type'], self.workload, self.correlation)

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
        try:
            return self._attempt_claimed(entry)
        except ClaimLost as exc:
            # Another replica took this entry over (this one was taken for lost): it finishes it, not this one.
            self.metrics.inc('incident_launcher_claims_lost_total')
            self.logger.warning('claim_lost', entry=entry['id'], reason=str(exc))
            return None

    def _attempt_claimed(self, entry):
        workers = self.config['workers']
        current = self.spool.claim(entry)
        if current is None:
            self.logger.info('entry_held_elsewhere', entry=entry['id'])
            return None
        if current is not entry:
            if len(current.get('takeovers') or ()) > len(entry.get('takeovers') or ()):
                self.metrics.inc('incident_launcher_entries_taken_over_total')
                self.logger.warning('entry_taken_over', entry=entry['id'], lost_replica=current['takeovers'][-1]['from'])
            entry.clear()
            entry.update(current)
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
            result = self.backend.run(entry, backends_mod.RunContext(alert_path, work, self._run_cancelled, self.spool.update))
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
