# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One Kubernetes Lease (coordination.k8s.io/v1) per workload: the responders' mutex.

Every response path that changes a workload (a playbook's actions, an AWX job, the webhook
launcher's first response) takes the workload's Lease before it changes anything and gives it
back afterwards, so destructive and restoring steps of concurrent incidents never interleave.
It follows client-go's leader election: the holder identity names the incident (and the process),
the lease expires ``leaseDurationSeconds`` after its last renewal, so a holder that died blocks
the others only until then, and a background thread renews it while a long step (a wait for
availability) is in progress. All writes carry the resourceVersion read before them: two
responders cannot both take a free lease.

The Lease also keeps the per-workload memory of the flapping guard (annotation
``incident-response/last-changes``: when each kind of change was last made, by which incident),
written in the same update that gives the lease back.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
import threading
import time

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError, ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import KubernetesError, group_path, validate_name

API_VERSION = 'coordination.k8s.io/v1'
PREFIX = 'incident-response-'
MANAGED_LABEL = 'app.kubernetes.io/managed-by'
MANAGED_BY = 'slurm_exporter.incident_response'
WORKLOAD_LABEL = 'incident-response/workload'
CHANGES_ANNOTATION = 'incident-response/last-changes'
MAX_NAME = 253


class LeaseTimeout(IncidentResponseError):
    """The lease stayed with another holder for longer than the caller would wait."""


class LeaseLost(IncidentResponseError):
    """Another responder took the lease over (this holder stopped renewing in time)."""


def lease_name(workload):
    """``incident-response-<workload>``; a name that would be too long ends in a hash instead."""
    name = PREFIX + workload
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(workload.encode('utf-8')).hexdigest()[:12]
    return (name[:MAX_NAME - 13] + '-' + digest).rstrip('-.')


def micro_time(moment):
    """Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def parse_micro_time(value):
    if not value:
        return None
    text = value.replace('Z', '+00:00')
    for pattern in ('%Y-%m-%dT%H:%M:%S.%f%z', '%Y-%m-%dT%H:%M:%S%z'):
        try:
            return datetime.datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def default_holder(incident_id):
    """``<incident>/<host>/<pid>``: names the incident, and tells two runs of one incident apart."""
    return '%s/%s/%d' % (incident_id or 'manual', socket.gethostname()[:63], os.getpid())


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class WorkloadLease:
    """The Lease of one workload; use ``with lease.held(): ...`` or acquire()/release()."""

    def __init__(self, kube, namespace, workload, holder, duration=60, wait_timeout=900.0, poll=0.5,
                 clock=_utcnow, sleep=time.sleep):
        validate_name(namespace, 'namespace', namespace=True)
        validate_name(workload, 'workload')
        if not isinstance(duration, int) or isinstance(duration, bool) or not 5 <= duration <= 3600:
            raise ValidationError('lease duration: expected 5 to 3600 seconds, got %r' % (duration,))
        if not isinstance(wait_timeout, (int, float)) or isinstance(wait_timeout, bool) or wait_timeout < 0:
            raise ValidationError('lease wait_timeout: expected a number of seconds >= 0, got %r' % (wait_timeout,))
        self.kube = kube
        self.namespace = namespace
        self.workload = workload
        self.name = lease_name(workload)
        self.holder = holder
        self.duration = duration
        self.wait_timeout = float(wait_timeout)
        self.poll = poll
        self.clock = clock
        self.sleep = sleep
        self.document = None
        self.held_since = None
        self.waits = []          # [{'holder', 'seconds'}] for every other holder this one waited for
        self.lost = False
        self._renewer = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------------
    def _path(self, name=None):
        return group_path(API_VERSION, self.namespace, 'leases', name)

    def read(self):
        """The Lease document, or None."""
        try:
            document, _source = self.kube.get_json(self._path(self.name))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise
        return document

    def changes(self, document=None):
        """The flapping guard's memory: ``{kind: {'at', 'incident', 'action'}}``."""
        document = self.document if document is None else document
        raw = ((document or {}).get('metadata', {}).get('annotations') or {}).get(CHANGES_ANNOTATION)
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def holder_of(self, document):
        """The current holder, or None when the lease is free or expired."""
        spec = (document or {}).get('spec') or {}
        holder = spec.get('holderIdentity')
        if not holder:
            return None
        renewed = parse_micro_time(spec.get('renewTime') or spec.get('acquireTime'))
        duration = spec.get('leaseDurationSeconds') or self.duration
        if renewed is None or renewed + datetime.timedelta(seconds=duration) <= self.clock():
            return None
        return holder

    # -- taking and giving back ---------------------------------------------------------------------
    def _new_document(self, now):
        return {
            'apiVersion': API_VERSION, 'kind': 'Lease',
            'metadata': {'name': self.name, 'namespace': self.namespace,
                         'labels': {MANAGED_LABEL: MANAGED_BY, WORKLOAD_LABEL: self.workload[:63].rstrip('-.') or 'workload'}},
            'spec': {'holderIdentity': self.holder, 'leaseDurationSeconds': self.duration,
                     'acquireTime': micro_time(now), 'renewTime': micro_time(now), 'leaseTransitions': 0},
        }

    def try_acquire(self):
        """One attempt: True when this holder now holds the lease, else the other holder's identity."""
        now = self.clock()
        current = self.read()
        if current is None:
            try:
                self.document, _source = self.kube.request_json('POST', self._path(), self._new_document(now))
            except KubernetesError as exc:
                if exc.status == 409:
                    return self._owner_after_conflict()
                raise
            return True
        other = self.holder_of(current)
        if other is not None and other != self.holder:
            return other
        wanted = json.loads(json.dumps(current))
        spec = wanted.setdefault('spec', {})
        if spec.get('holderIdentity') != self.holder:
            spec['leaseTransitions'] = int(spec.get('leaseTransitions') or 0) + 1
            spec['acquireTime'] = micro_time(now)
        spec.update(holderIdentity=self.holder, leaseDurationSeconds=self.duration, renewTime=micro_time(now))
        try:
            self.document, _source = self.kube.request_json('PUT', self._path(self.name), wanted)
        except KubernetesError as exc:
            if exc.status == 409:
                return self._owner_after_conflict()
            raise
        return True

    def _owner_after_conflict(self):
        """Someone else wrote first (or a retried write of ours landed twice): whose is it now?"""
        current = self.read()
        holder = self.holder_of(current)
        if holder == self.holder:
            self.document = current
            return True
        return holder or 'another responder'

    def acquire(self):
        """Take the lease, waiting for another holder up to ``wait_timeout``; records the waits."""
        started = time.monotonic()
        waiting_for, since = None, None
        while True:
            answer = self.try_acquire()
            if answer is True:
                if waiting_for is not None:
                    self.waits.append({'holder': waiting_for, 'seconds': round(time.monotonic() - since, 3)})
                self.held_since = time.monotonic()
                self._start_renewing()
                return self
            if answer != waiting_for:
                if waiting_for is not None:
                    self.waits.append({'holder': waiting_for, 'seconds': round(time.monotonic() - since, 3)})
                waiting_for, since = answer, time.monotonic()
            if time.monotonic() - started >= self.wait_timeout:
                self.waits.append({'holder': waiting_for, 'seconds': round(time.monotonic() - since, 3)})
                raise LeaseTimeout('Lease %s/%s is held by %s; waited %.0f s (lease wait_timeout)'
                                   % (self.namespace, self.name, waiting_for, time.monotonic() - started),
                                   holder=waiting_for)
            self.sleep(self.poll)

    def _update(self, edit):
        """PUT the held lease with ``edit(document)`` applied; re-reads once after a conflict (a controller or a retried
        write of ours), and marks the lease lost when another holder has it. Returns True when written."""
        with self._lock:
            for _attempt in range(3):
                if self.document is None or self.lost:
                    return False
                wanted = json.loads(json.dumps(self.document))
                edit(wanted)
                try:
                    self.document, _source = self.kube.request_json('PUT', self._path(self.name), wanted)
                    return True
                except KubernetesError as exc:
                    if exc.status != 409:
                        raise
                current = self.read()
                if current is None or self.holder_of(current) not in (self.holder, None):
                    self.lost = True
                    return False
                self.document = current
            return False

    def renew(self):
        """Push renewTime forward."""
        def edit(document):
            document['spec']['renewTime'] = micro_time(self.clock())
        return self._update(edit)

    def remember(self, kind, incident_id, action):
        """Record in the lease that ``action`` of ``incident_id`` made a change of ``kind`` now (the flapping guard)."""
        self.check()
        stamp = micro_time(self.clock())

        def edit(document):
            annotations = document.setdefault('metadata', {}).get('annotations') or {}
            document['metadata']['annotations'] = annotations
            changes = self.changes(document)
            changes[kind] = {'at': stamp, 'incident': incident_id, 'action': action}
            annotations[CHANGES_ANNOTATION] = json.dumps(changes, sort_keys=True, separators=(',', ':'))
        if not self._update(edit):
            raise LeaseLost('Lease %s/%s: the change of kind %s could not be recorded (the lease was lost)'
                            % (self.namespace, self.name, kind))

    def _start_renewing(self):
        self._stop.clear()
        interval = max(1.0, self.duration / 3.0)

        def loop():
            while not self._stop.wait(interval):
                try:
                    self.renew()
                except Exception:  # pylint: disable=broad-exception-caught
                    # A failed renewal is retried at the next tick; the lease stays valid until it expires.
                    continue

        self._renewer = threading.Thread(target=loop, name='lease-renewer', daemon=True)
        self._renewer.start()

    def _stop_renewing(self):
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
            self._renewer = None

    def check(self):
        """Raise LeaseLost when another responder took the lease (call before each write)."""
        if self.lost:
            raise LeaseLost('Lease %s/%s was taken over by another responder; stopping before the next write'
                            % (self.namespace, self.name))

    def release(self):
        """Give the lease back: holder cleared and a 1 s duration, as client-go does. False when it was lost."""
        self._stop_renewing()

        def edit(document):
            document['spec'].update(holderIdentity='', leaseDurationSeconds=1, renewTime=micro_time(self.clock()))
        released = self._update(edit)
        if released:
            self.document = None
        return released

    def held(self):
        return _Held(self)


class _Held:  # pylint: disable=too-few-public-methods
    def __init__(self, lease):
        self.lease = lease

    def __enter__(self):
        return self.lease.acquire()

    def __exit__(self, exc_type, exc, traceback):
        try:
            self.lease.release()
        except IncidentResponseError:
            if exc_type is None:
                raise
        return False
