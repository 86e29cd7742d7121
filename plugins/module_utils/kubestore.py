# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kubernetes incident store: the incidents as custom resources of the cluster (``store_backend: kubernetes``).

Several launcher replicas, AWX jobs, the escalation CronJob and people's playbooks share one store: the Kubernetes API
(etcd), with its optimistic concurrency instead of a lock file. Same interface as the file store (module_utils/store.py).

Layout, in the store's namespace (``store_namespace``):

    Incident inc-20261124-0001         one per incident (incident-response.slurm-exporter.io/v1; roles/deploy/files/
                                       incidents.crd.yaml): ``spec`` is the record, ``audit`` its audit trail, ``status``
                                       a summary; labels type, severity, status, drill, day, workload and one per alert
                                       fingerprint (``fp-<hash>``) for selecting; annotation ``summary`` for listing
    ConfigMap incident-store-head      the last sequence number of each recent day, and the last incident created
    ConfigMap inc-...-audit-<n>        audit entries moved out of an incident (immutable)

Transactions. Every operation of the lifecycle service is one transaction (``run``): it reads what it decides on,
computes, and writes with the resourceVersion it read as a precondition. A write that loses the race (409 Conflict)
runs the whole operation again on the new state, after a short random back-off, for at most ``lock_timeout`` seconds.
So two writers of one incident never lose an update: the second one's read-modify-write starts over.

Opening an incident. Whether alerts attach to an existing incident or open a new one is decided on the incidents a
label selection returns (fingerprints, the workload's open incidents and those resolved within the correlation
cool-down). Two writers could both decide "new" on the same selection, so every creation goes through the head, with
the head's resourceVersion read *before* the selection as the precondition:

  1. read the head; make sure the incident it names as the last one created exists (create it from the copy the head
     keeps if its writer died between 3 and 4: a commit is never half done);
  2. select, decide, allocate the id: the head's last number of the day, plus one;
  3. update the head (precondition: step 1's version) with the new number and a copy of the new object;
  4. create the object (create-if-absent; the head's copy makes a retried or finished create an identity).

A writer whose step 3 fails starts over at step 1 and now sees the other's incident. Ids are unique across replicas
and processes, in day order, without gaps.

Audit. Each write appends one entry (time, actor, operation, revision, changed fields, process) to the incident's
``audit.entries`` in the same request as the change; past ``AUDIT_KEEP`` entries the oldest ``AUDIT_CHUNK`` move into an
immutable ConfigMap (``audit.overflow`` counts them) before the write that drops them: append-only and bounded.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import gzip
import hashlib
import itertools
import json
import os
import random
import re
import socket
import time

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import (
    ConflictError, IncidentResponseError, LockTimeoutError, NotFoundError, RecordError, StoreError)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.index import summary_of
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import (
    Kubernetes, KubernetesError, core_path, group_path, validate_name)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import runs as runs_mod
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import store as file_store
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

GROUP = 'incident-response.slurm-exporter.io'
VERSION = 'v1'
API_VERSION = '%s/%s' % (GROUP, VERSION)
KIND = 'Incident'
PLURAL = 'incidents'
CRD_NAME = '%s.%s' % (PLURAL, GROUP)
DEFAULT_NAMESPACE = 'incident-response'
LABEL = GROUP + '/'
SUMMARY_ANNOTATION = LABEL + 'summary'
MANAGED_LABELS = {'app.kubernetes.io/managed-by': 'slurm_exporter.incident_response',
                  'app.kubernetes.io/part-of': 'slurm-exporter-incident-response'}
HEAD = 'incident-store-head'
HEAD_DAYS = 31          # days whose last sequence number the head keeps
AUDIT_KEEP = 100        # audit entries kept in the incident object
AUDIT_CHUNK = 50        # moved out together into one ConfigMap
MAX_ATTEMPTS = 200      # transactions run at most this often (and for at most lock_timeout seconds)
MAX_FINGERPRINT_SELECTIONS = 16   # an open with more fingerprints lists every summary instead
PAGE = 500
METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json'
METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json'
# Transient answers (429, 5xx, broken connections) are retried by the client; a write retried after it landed is
# recognised (the object already holds what was written), so retrying writes is safe here.
RETRIES = {'total': 4, 'backoff_factor': 0.2, 'backoff_max': 4.0}
LABEL_VALUE_RE = re.compile(r'^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$')
_UNSET = object()


def object_name(incident_id):
    """``inc-20261124-0001`` for INC-20261124-0001."""
    return rec.validate_id(incident_id).lower()


def _hash(value, length):
    return hashlib.sha256(value.encode('utf-8')).hexdigest()[:length]


def label_value(value):
    """``value`` when it is a valid label value, else ``h-`` and a hash of it (a custom catalog name, say)."""
    text = str(value)
    if len(text) <= 63 and LABEL_VALUE_RE.match(text):
        return text
    return 'h-' + _hash(text, 40)


def fingerprint_label(fingerprint):
    """The label an incident carries for each alert fingerprint it holds."""
    return '%sfp-%s' % (LABEL, _hash(fingerprint, 24))


def workload_label(workload):
    return _hash(workload, 32)


def _day(stamp):
    return stamp[:10].replace('-', '') if stamp else None


def labels_of(record):
    labels = dict(MANAGED_LABELS)
    labels.update({LABEL + 'type': label_value(record['type']), LABEL + 'severity': label_value(record['severity']),
                   LABEL + 'status': record['status'], LABEL + 'drill': 'true' if record['drill'] else 'false',
                   LABEL + 'day': record['id'][4:12]})
    if record.get('workload'):
        labels[LABEL + 'workload'] = workload_label(record['workload'])
    if record['status'] == 'resolved' and record.get('resolved_at'):
        labels[LABEL + 'resolved-day'] = _day(record['resolved_at'])
    for alert in record['alerts']:
        labels[fingerprint_label(alert['fingerprint'])] = ''
    return labels


def status_of(record):
    """What the status subresource shows."""
    return {'phase': record['status'], 'acknowledged': bool(record.get('acknowledged_at')),
            'escalationLevel': record['escalation_level'], 'handedOver': runs_mod.handed_over(record) or ''}


def selector_for(predicate):
    """The label selector that narrows a listing for a query.Filter (the rest of the filter runs on the summaries)."""
    terms = []
    for name, values in (('status', getattr(predicate, 'statuses', None)), ('type', getattr(predicate, 'types', None)),
                         ('severity', getattr(predicate, 'severities', None))):
        if values:
            terms.append('%s%s in (%s)' % (LABEL, name, ','.join(sorted(label_value(value) for value in values))))
    drill = getattr(predicate, 'drill', None)
    if drill is not None:
        terms.append('%sdrill=%s' % (LABEL, 'true' if drill else 'false'))
    fingerprint = getattr(predicate, 'fingerprint', None)
    if fingerprint:
        terms.append(fingerprint_label(fingerprint))
    return ','.join(terms) or None


def _pack(document):
    return base64.b64encode(gzip.compress(json.dumps(document, sort_keys=True).encode('utf-8'), mtime=0)).decode('ascii')


def _unpack(text):
    return json.loads(gzip.decompress(base64.b64decode(text)).decode('utf-8'))


def connection_params(connection):
    """The API client's settings: ``connection`` (kubeconfig, context, host, api_key, validate_certs, ca_cert,
    request_timeout); each one not given from the environment (INCIDENT_RESPONSE_STORE_KUBECONFIG and _CONTEXT, then
    the K8S_AUTH_* variables as kubernetes.core reads them); then the kubeconfig's defaults, then, in a pod, its
    service account."""
    connection = dict(connection or {})
    # The store's own variables first (the launcher sets them for its runs without touching the K8S_AUTH_* ones, which
    # the response's Kubernetes modules read for the workload's cluster).
    environment = {'kubeconfig': ('INCIDENT_RESPONSE_STORE_KUBECONFIG', 'K8S_AUTH_KUBECONFIG'),
                   'context': ('INCIDENT_RESPONSE_STORE_CONTEXT', 'K8S_AUTH_CONTEXT'), 'host': ('K8S_AUTH_HOST',),
                   'api_key': ('K8S_AUTH_API_KEY',), 'validate_certs': ('K8S_AUTH_VERIFY_SSL',), 'ca_cert': ('K8S_AUTH_SSL_CA_CERT',)}
    params = {}
    for key, variables in environment.items():
        value = connection.get(key)
        for variable in variables:
            if value is None and os.environ.get(variable):
                value = os.environ[variable]
                if key == 'validate_certs':
                    value = value.strip().lower() not in ('0', 'false', 'no', 'off')
        if value is not None:
            params[key] = value
    params['request_timeout'] = float(connection.get('request_timeout') or 30.0)
    params.setdefault('validate_certs', True)
    return params


class KubernetesStore:  # pylint: disable=too-many-instance-attributes,too-many-public-methods
    """The incidents of one namespace. Not shared between threads: make one per operation (cheap with ``kube``)."""

    backend = 'kubernetes'

    def __init__(self, root=file_store.DEFAULT_STORE, namespace=DEFAULT_NAMESPACE, connection=None,  # pylint: disable=too-many-arguments
                 lock_timeout=30.0, read_only=False, kube=None, sleep=time.sleep):
        if not isinstance(root, str) or not root:
            raise StoreError("store: expected a directory path (evidence, reports, outbox), got %r" % (root,))
        validate_name(namespace, 'store_namespace', namespace=True)
        self.root = os.path.abspath(os.path.expanduser(root))
        self.namespace = namespace
        self.location = 'kubernetes://%s' % namespace
        self.connection = dict(connection or {})
        self.lock_timeout = float(lock_timeout)
        self.read_only = read_only
        self.sleep = sleep
        self.conflicts = 0          # transactions run again after losing a race (diagnostics, benchmarks)
        self.status_failures = 0    # status subresource writes that failed (the next change writes it again)
        self._kube = kube
        self._own_kube = kube is None
        self._attempt = None
        self._resync = set()        # days whose sequence is taken from the objects, not the head (an id was taken)

    # -- the API -------------------------------------------------------------------------------
    @property
    def kube(self):
        if self._kube is None:
            try:
                self._kube = Kubernetes(connection_params(self.connection), retry=RETRIES)
            except IncidentResponseError as exc:
                raise StoreError('store %s: cannot reach the Kubernetes API: %s' % (self.location, exc.message)) from None
        return self._kube

    def close(self):
        if self._own_kube and self._kube is not None:
            self._kube.close()
            self._kube = None

    def _path(self, name=None, sub=None):
        path = group_path(API_VERSION, self.namespace, PLURAL, name)
        return path + '/' + sub if sub else path

    def _configmaps(self, name=None):
        return core_path(self.namespace, 'configmaps', name)

    def _error(self, exc, what):
        """A StoreError for an API failure that is not a decision (those are handled where they happen)."""
        if exc.status == 404 and 'namespaces "%s" not found' % self.namespace in (exc.reason or ''):
            return StoreError('store %s: the namespace %s does not exist (create it, or set store_namespace)'
                              % (self.location, self.namespace))
        if exc.status == 404:
            return StoreError('store %s: %s: the API server does not serve %s (%s); install the CustomResourceDefinition '
                              '%s (roles/deploy/files/incidents.crd.yaml, docs/incident-store.md)'
                              % (self.location, what, API_VERSION + ' ' + KIND, exc.reason or 'not found', CRD_NAME))
        if exc.status in (401, 403):
            return StoreError('store %s: %s: the API server refused the request (%s %s): the identity needs the store\'s '
                              'permissions in namespace %s (docs/incident-store.md)'
                              % (self.location, what, exc.status, exc.reason, self.namespace))
        return StoreError('store %s: %s: %s' % (self.location, what, exc.message))

    def _get(self, path, what, query=None, accept='application/json'):
        try:
            document, _source = self.kube.get_json(path, query, accept=accept)
        except KubernetesError as exc:
            raise self._error(exc, what) from None
        return document

    def _get_object(self, name, accept='application/json'):
        """The Incident object, or None when there is none by that name."""
        try:
            document, _source = self.kube.get_json(self._path(name), accept=accept)
        except KubernetesError as exc:
            if exc.status == 404 and '"%s"' % name in (exc.reason or ''):
                return None
            raise self._error(exc, 'reading incident %s' % name) from None
        return document

    def _write(self, method, path, body, what):
        """``(document, None)`` or ``(None, the KubernetesError)`` for a 404, 409 or 422 (decisions of the caller)."""
        try:
            document, _source = self.kube.request_json(method, path, body)
        except KubernetesError as exc:
            if exc.status in (404, 409, 422, 413):
                return None, exc
            raise self._error(exc, what) from None
        return document, None

    # -- the local directory (evidence, reports, outbox) --------------------------------------------
    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def exists(self):
        return os.path.isdir(self.root)

    def ensure(self):
        file_store.ensure_directory(self.root)

    # -- transactions -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self):
        """One attempt of a transaction: what it reads (objects with their resourceVersions, the head) is remembered
        for its writes' preconditions. Takes no lock."""
        if self._attempt is not None:
            yield
            return
        self._attempt = {'objects': {}, 'head': _UNSET, 'allocated': None}
        try:
            yield
        finally:
            self._attempt = None

    def run(self, operation):
        """Run ``operation`` (one lifecycle operation) until it is not beaten by a concurrent writer."""
        started = time.monotonic()
        delay = 0.01
        for attempt in itertools.count(1):
            try:
                return operation()
            except ConflictError as exc:
                self.conflicts += 1
                elapsed = time.monotonic() - started
                if attempt >= MAX_ATTEMPTS or elapsed + delay > self.lock_timeout:
                    raise LockTimeoutError('store %s: the change was made %d times and each time a concurrent writer changed the '
                                           'incident first (%s); gave up after %.1f s (lock_timeout %.0f s)'
                                           % (self.location, attempt, exc.message, elapsed, self.lock_timeout)) from None
                self.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, 0.5)
        return None  # pragma: no cover - the loop returns or raises

    # -- the head: id allocation and the commit of new incidents ------------------------------------
    def _head(self):
        if self._attempt is not None and self._attempt['head'] is not _UNSET:
            return self._attempt['head']
        try:
            document, _source = self.kube.get_json(self._configmaps(HEAD))
        except KubernetesError as exc:
            if exc.status != 404 or '"%s"' % HEAD not in (exc.reason or ''):
                raise self._error(exc, 'reading the store head') from None
            document = None
        if self._attempt is not None:
            self._attempt['head'] = document
        return document

    @staticmethod
    def _sequences(head):
        try:
            value = json.loads(((head or {}).get('data') or {}).get('sequences') or '{}')
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @staticmethod
    def _pending(head):
        packed = ((head or {}).get('binaryData') or {}).get('pending.json.gz')
        if not packed:
            return None
        try:
            return _unpack(packed)
        except (ValueError, OSError):
            return None

    def _ensure_committed(self):
        """Step 1: the incident the head names as the last one created exists (created from the head's copy if its
        writer died before it). Returns that object when this store is read-only and it does not exist yet."""
        pending = self._pending(self._head())
        if pending is None:
            return None
        name = pending['metadata']['name']
        if self._get_object(name, accept=METADATA) is not None:
            return None
        if self.read_only:
            return pending
        created, error = self._write('POST', self._path(), pending, 'completing the creation of %s' % name)
        if error is not None and error.status != 409:
            raise self._error(error, 'completing the creation of %s' % name)
        if created is not None:
            self._write_status(created)
        return None

    def _day_sequence(self, day):
        """The highest sequence number of ``day`` among the Incident objects (what the head does not know)."""
        highest = 0
        for item in self._metadata_items('%sday=%s' % (LABEL, day)):
            match = re.match(r'^inc-\d{8}-(\d{4,6})$', item['metadata']['name'])
            if match:
                highest = max(highest, int(match.group(1)))
        return highest

    def next_id(self, now, entries=None):  # pylint: disable=unused-argument
        """The next id of ``now``'s UTC day: the head's last number of that day plus one."""
        day = now.astimezone(timeutil.UTC).strftime('%Y%m%d')
        last = self._sequences(self._head()).get(day)
        if last is None or day in self._resync:
            last = max(int(last or 0), self._day_sequence(day))
        sequence = int(last) + 1
        if sequence > file_store.MAX_SEQUENCE:
            raise StoreError('store %s: no incident ids left for %s' % (self.location, day))
        if self._attempt is not None:
            self._attempt['allocated'] = (day, sequence)
        return 'INC-%s-%04d' % (day, sequence)

    def is_planned(self, incident_id, now=None):
        """Whether ``incident_id`` is the id this store would hand out next (at ``now``, or ten minutes earlier)."""
        now = now or timeutil.utcnow()
        return any(incident_id == self.next_id(moment) for moment in (now, now - datetime.timedelta(minutes=10)))

    def _commit_create(self, body):
        """Steps 3 and 4: the head records the new incident, then the object is created."""
        name = body['metadata']['name']
        record = body['spec']
        day, sequence = record['id'][4:12], int(record['id'][13:])
        head = self._head()
        sequences = self._sequences(head)
        sequences[day] = max(sequence, int(sequences.get(day) or 0))
        for old in sorted(sequences)[:-HEAD_DAYS]:
            del sequences[old]
        wanted = copy.deepcopy(head) if head else {
            'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': HEAD, 'namespace': self.namespace, 'labels': dict(MANAGED_LABELS)}}
        wanted['data'] = {'sequences': json.dumps(sequences, sort_keys=True), 'pending': name}
        wanted['binaryData'] = {'pending.json.gz': _pack(body)}
        if head is None:
            written, error = self._write('POST', self._configmaps(), wanted, 'creating the store head')
        else:
            written, error = self._write('PUT', self._configmaps(HEAD), wanted, 'updating the store head')
        if error is not None:
            if error.status == 409:
                current = self._head_now()
                if current is None or self._pending(current) != body:
                    raise ConflictError('another incident was opened at the same time (store head %s)' % HEAD)
                written = current  # this very update landed (a retried request)
            else:
                raise self._error(error, 'updating the store head')
        self._attempt['head'] = written
        created, error = self._write('POST', self._path(), body, 'creating incident %s' % record['id'])
        if error is not None and error.status == 409:
            existing = self._get_object(name)
            if existing is None or file_store.record_digest(existing.get('spec') or {}) != file_store.record_digest(record):
                # The id was taken outside the head (an import, another day's clock): allocate again from the objects.
                self._resync.add(day)
                raise ConflictError('incident id %s is taken' % record['id'])
            created = existing  # the same commit, finished by another writer (step 1) or by a retried request
        elif error is not None:
            raise self._refused(error, record['id'])
        self._remember(created)
        self._write_status(created)

    def _head_now(self):
        try:
            document, _source = self.kube.get_json(self._configmaps(HEAD))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise self._error(exc, 'reading the store head') from None
        return document

    def _refused(self, error, incident_id):
        if error.status == 404:
            return self._error(error, 'writing incident %s' % incident_id)
        return StoreError('store %s: the API server refused incident %s (%s %s); nothing was changed'
                          % (self.location, incident_id, error.status, error.reason))

    # -- records ----------------------------------------------------------------------------------------
    def _remember(self, obj):
        if self._attempt is not None and obj is not None:
            self._attempt['objects'][obj['metadata']['name']] = obj

    def _validated(self, obj, incident_id):
        record = obj.get('spec')
        where = '%s/%s' % (self.namespace, obj['metadata']['name'])
        try:
            rec.validate_record(record)
        except RecordError as exc:
            raise RecordError('incident object %s in store %s fails schema validation at %s; it was left untouched'
                              % (where, self.location, exc.message), path=where) from None
        if incident_id is not None and record['id'] != incident_id:
            raise RecordError('incident object %s holds id %s, not %s; it was left untouched' % (where, record['id'], incident_id))
        return record

    def read(self, incident_id):
        """The record (validated); NotFoundError or RecordError naming the object."""
        name = object_name(incident_id)
        obj = self._get_object(name)
        if obj is None:
            raise NotFoundError('incident %s not found in store %s' % (incident_id, self.location))
        record = self._validated(obj, incident_id)
        self._remember(obj)
        return copy.deepcopy(record)

    def read_or_planned(self, incident_id, now=None):
        """The record; or, on a read-only (check mode) store, None for the id this store would hand out next."""
        try:
            return self.read(incident_id)
        except NotFoundError:
            if self.read_only and self.is_planned(incident_id, now):
                return None
            raise

    def _audit_entry(self, now, actor, operation, record, before):
        changed = sorted(key for key in record if before is None or before.get(key) != record.get(key))
        return {'time': timeutil.format_ts(now), 'actor': actor, 'operation': operation, 'id': record['id'],
                'revision': record['revision'], 'fields': [key for key in changed if key not in ('revision', 'updated_at')],
                'pid': os.getpid(), 'host': socket.gethostname()[:63]}

    def _object(self, record, audit_entries, overflow=0):
        return {'apiVersion': API_VERSION, 'kind': KIND,
                'metadata': {'name': object_name(record['id']), 'namespace': self.namespace, 'labels': labels_of(record),
                             'annotations': {SUMMARY_ANNOTATION: json.dumps(summary_of(record), sort_keys=True, separators=(',', ':'))}},
                'spec': record, 'audit': {'overflow': overflow, 'entries': list(audit_entries)}}

    def write(self, record, actor, operation, before=None):
        """Validate and write ``record`` (revision and updated_at advance) with its audit entry, under the precondition
        of what this transaction read. Raises ConflictError when another writer was first."""
        if self._attempt is None or self.read_only:
            raise StoreError('internal error: KubernetesStore.write called outside a transaction (locked) or on a read-only store')
        now = timeutil.utcnow()
        record['revision'] = (before['revision'] if before else 0) + 1
        record['updated_at'] = timeutil.format_ts(now)
        rec.validate_record(record)
        entry = self._audit_entry(now, actor, operation, record, before)
        name = object_name(record['id'])
        if before is None:
            self._commit_create(self._object(record, [entry]))
            return record
        previous = self._attempt['objects'].get(name)
        if previous is None:
            raise StoreError('internal error: incident %s written without being read in this transaction' % record['id'])
        audit = previous.get('audit') or {}
        entries = list(audit.get('entries') or []) + [entry]
        overflow = int(audit.get('overflow') or 0)
        while len(entries) > AUDIT_KEEP:
            self._save_audit(name, overflow, entries[:AUDIT_CHUNK])
            entries, overflow = entries[AUDIT_CHUNK:], overflow + 1
        wanted = self._object(record, entries, overflow)
        wanted['metadata'] = dict(previous['metadata'], labels=_merged_labels(previous, wanted),
                                  annotations=dict(previous['metadata'].get('annotations') or {}, **wanted['metadata']['annotations']))
        if 'status' in previous:
            wanted['status'] = previous['status']
        written, error = self._write('PUT', self._path(name), wanted, 'updating incident %s' % record['id'])
        if error is not None and error.status in (404, 409):
            current = self._get_object(name)
            if current is None:
                raise ConflictError('incident %s was deleted' % record['id'])
            if current.get('spec') is None or file_store.record_digest(current['spec']) != file_store.record_digest(record):
                raise ConflictError('incident %s changed (resourceVersion %s, now %s)'
                                    % (record['id'], previous['metadata'].get('resourceVersion'), current['metadata'].get('resourceVersion')))
            written = current  # this very update landed (a retried request)
        elif error is not None:
            raise self._refused(error, record['id'])
        self._remember(written)
        self._write_status(written)
        return record

    def _write_status(self, obj):
        """The status subresource, when the record's summary changed it. A failure leaves it for the next change."""
        wanted = status_of(obj['spec'])
        if obj.get('status') == wanted:
            return
        body = dict(obj, status=wanted)
        written, error = self._write('PUT', self._path(obj['metadata']['name'], 'status'), body, 'updating the status')
        if error is not None:
            self.status_failures += 1
            return
        self._remember(written)

    def _save_audit(self, name, number, entries):
        """Move audit entries out of the incident into ConfigMap <name>-audit-<number> (immutable; the same content
        whoever writes it first)."""
        data = json.dumps(entries, sort_keys=True, separators=(',', ':'))
        body = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'immutable': True,
                'metadata': {'name': '%s-audit-%d' % (name, number), 'namespace': self.namespace,
                             'labels': dict(MANAGED_LABELS, **{LABEL + 'incident': name})},
                'data': {'entries.json': data}}
        _written, error = self._write('POST', self._configmaps(), body, 'saving audit entries of %s' % name)
        if error is None:
            return
        if error.status == 409:
            existing = self._get(self._configmaps(body['metadata']['name']), 'reading audit entries of %s' % name)
            if (existing.get('data') or {}).get('entries.json') == data:
                return
            raise StoreError('store %s: ConfigMap %s holds other audit entries than the incident moves out; nothing was changed'
                             % (self.location, body['metadata']['name']))
        raise self._error(error, 'saving audit entries of %s' % name)

    def audit_entries(self, incident_id=None):
        """The audit trail (oldest first): of one incident (the entries moved out first), or of every incident."""
        if incident_id is not None:
            obj = self._get_object(object_name(incident_id))
            return self._audit_of(obj) if obj is not None else []
        found = []
        for obj in self._objects():
            found.extend(self._audit_of(obj))
        found.sort(key=lambda entry: (entry.get('time') or '', entry.get('id') or '', entry.get('revision') or 0))
        return found

    def _audit_of(self, obj):
        audit = obj.get('audit') or {}
        entries = []
        for number in range(int(audit.get('overflow') or 0)):
            moved = self._get(self._configmaps('%s-audit-%d' % (obj['metadata']['name'], number)), 'reading audit entries')
            entries.extend(json.loads((moved.get('data') or {}).get('entries.json') or '[]'))
        return entries + list(audit.get('entries') or [])

    # -- queries ------------------------------------------------------------------------------------------
    def _pages(self, selector=None, accept=METADATA_LIST):
        query = {'limit': PAGE}
        if selector:
            query['labelSelector'] = selector
        while True:
            document = self._get(self._path(), 'listing incidents', query, accept=accept)
            yield document.get('items') or []
            more = (document.get('metadata') or {}).get('continue')
            if not more:
                return
            query = dict(query, **{'continue': more})

    def _metadata_items(self, selector=None):
        for page in self._pages(selector):
            yield from page

    def _objects(self, selector=None):
        for page in self._pages(selector, accept='application/json'):
            yield from page

    def _summaries(self, selector=None):
        """``(entries by id, invalid)`` of the Incident objects the selector selects, from their summary annotation."""
        entries, invalid = {}, []
        for item in self._metadata_items(selector):
            metadata = item.get('metadata') or {}
            try:
                summary = json.loads((metadata.get('annotations') or {})[SUMMARY_ANNOTATION])
                if not isinstance(summary, dict) or not rec.ID_RE.match(str(summary.get('id'))) \
                        or object_name(summary['id']) != metadata.get('name'):
                    raise ValueError('it names another incident')
            except (KeyError, ValueError, TypeError) as exc:
                invalid.append({'path': '%s/%s' % (self.location, metadata.get('name')),
                                'error': 'no readable summary annotation %s (%s)' % (SUMMARY_ANNOTATION, exc)})
                continue
            entries[summary['id']] = summary
        return entries, invalid

    def related(self, fingerprints=(), workload=None, now=None, cooldown=0):
        """The summaries an ``open`` decides on, after step 1 of a creation: the incidents holding one of the
        fingerprints, the workload's open incidents and those it resolved within ``cooldown`` seconds."""
        pending = self._ensure_committed()
        fingerprints = sorted(set(fingerprints))
        if len(fingerprints) > MAX_FINGERPRINT_SELECTIONS:
            found, _invalid = self._summaries()
        else:
            found = {}
            selectors = [fingerprint_label(fingerprint) for fingerprint in fingerprints]
            if workload:
                key = '%sworkload=%s' % (LABEL, workload_label(workload))
                selectors.append('%s,%sstatus!=resolved' % (key, LABEL))
                if cooldown and now is not None:
                    days = sorted({(now - datetime.timedelta(seconds=offset)).strftime('%Y%m%d')
                                   for offset in list(range(0, int(cooldown), 86400)) + [int(cooldown)]})
                    selectors.append('%s,%sstatus=resolved,%sresolved-day in (%s)' % (key, LABEL, LABEL, ','.join(days)))
            for selector in selectors:
                found.update(self._summaries(selector)[0])
        if pending is not None:
            found.setdefault(pending['spec']['id'], summary_of(pending['spec']))
        return found

    def refresh_index(self, persist=False, where=None, params=()):  # pylint: disable=unused-argument
        """``(entries, invalid)``: every incident's summary by id."""
        return self._summaries()

    def find_open(self, fingerprints, entries=None):
        if entries is None:
            entries = self.related(fingerprints)
        return file_store.find_open(entries, fingerprints)

    def find_resolved(self, fingerprints, entries=None):
        if entries is None:
            entries = self.related(fingerprints)
        return file_store.find_resolved(entries, fingerprints)

    def list(self, predicate=None):
        """``(summaries, invalid)``: summaries (oldest first) for which ``predicate`` is true; a query.Filter's
        status, type, severity, drill and fingerprint select on the API server."""
        entries, invalid = self._summaries(selector_for(predicate) if predicate is not None else None)
        result = [summary for summary in entries.values() if predicate is None or predicate(summary)]
        result.sort(key=lambda summary: (summary['created_at'], summary['id']))
        return result, invalid

    # -- migration ------------------------------------------------------------------------------------------
    def records(self):
        """``(record, error)`` for every Incident object, in id order (``error`` names an invalid one, record None)."""
        objects = sorted(self._objects(), key=lambda obj: obj['metadata']['name'])
        for obj in objects:
            try:
                yield self._validated(obj, None), None
            except RecordError as exc:
                yield None, exc.message

    def import_record(self, record, audit=(), overwrite=False):
        """Copy ``record`` in as it is (revision and times unchanged) with its ``audit`` entries (migration).

        Returns ``created``, ``unchanged`` (the same record is here already: same digest) or ``replaced`` (with
        ``overwrite``); a different record under the same id fails unless ``overwrite``."""
        rec.validate_record(record)
        name = object_name(record['id'])
        entries, overflow = list(audit), 0
        existing = self._get_object(name)
        if existing is not None:
            if file_store.record_digest(existing.get('spec') or {}) == file_store.record_digest(record):
                return 'unchanged'
            if not overwrite:
                raise StoreError('incident %s exists in store %s with other content (revision %s there, %s in the copy); '
                                 'nothing was changed (overwrite replaces it)'
                                 % (record['id'], self.location, (existing.get('spec') or {}).get('revision'), record['revision']))
            previous = existing.get('audit') or {}
            overflow = int(previous.get('overflow') or 0)
            known = {(item.get('time'), item.get('operation'), item.get('revision')) for item in self._audit_of(existing)}
            fresh = [item for item in entries if (item.get('time'), item.get('operation'), item.get('revision')) not in known]
            entries = list(previous.get('entries') or []) + fresh
        while len(entries) > AUDIT_KEEP:
            self._save_audit(name, overflow, entries[:AUDIT_CHUNK])
            entries, overflow = entries[AUDIT_CHUNK:], overflow + 1
        body = self._object(record, entries, overflow)
        if existing is None:
            written, error = self._write('POST', self._path(), body, 'importing incident %s' % record['id'])
        else:
            body['metadata']['resourceVersion'] = existing['metadata']['resourceVersion']
            written, error = self._write('PUT', self._path(name), body, 'replacing incident %s' % record['id'])
        if error is not None:
            if error.status == 409:
                raise StoreError('store %s: incident %s was written by someone else during the copy; run it again'
                                 % (self.location, record['id']))
            raise self._refused(error, record['id'])
        self._write_status(written)
        self._raise_sequence(record['id'][4:12], int(record['id'][13:]))
        return 'created' if existing is None else 'replaced'

    def _raise_sequence(self, day, sequence):
        """The head's sequence of ``day`` is at least ``sequence`` (imported ids are never handed out again)."""
        for _attempt in range(MAX_ATTEMPTS):
            head = self._head_now()
            sequences = self._sequences(head)
            if int(sequences.get(day) or 0) >= sequence:
                return
            sequences[day] = sequence
            for old in sorted(sequences)[:-HEAD_DAYS]:
                del sequences[old]
            wanted = copy.deepcopy(head) if head else {
                'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': HEAD, 'namespace': self.namespace, 'labels': dict(MANAGED_LABELS)}}
            wanted.setdefault('data', {})['sequences'] = json.dumps(sequences, sort_keys=True)
            if head is None:
                _written, error = self._write('POST', self._configmaps(), wanted, 'creating the store head')
            else:
                _written, error = self._write('PUT', self._configmaps(HEAD), wanted, 'updating the store head')
            if error is None:
                return
            if error.status != 409:
                raise self._error(error, 'updating the store head')
            self.sleep(random.uniform(0.005, 0.05))
        raise LockTimeoutError('store %s: the store head kept changing; the sequence of %s was not raised' % (self.location, day))


def _merged_labels(previous, wanted):
    """The new labels: the store's own recomputed (fingerprint labels of alerts no longer held dropped), others kept."""
    kept = {key: value for key, value in (previous['metadata'].get('labels') or {}).items()
            if not key.startswith(LABEL) and key not in MANAGED_LABELS}
    kept.update(wanted['metadata']['labels'])
    return kept
