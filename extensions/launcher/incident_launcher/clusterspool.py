# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster spool (``spool.backend: kubernetes``): several launcher replicas share the accepted alerts.

Each accepted alert is a ConfigMap in the store's namespace, created before the webhook is answered, so an alert
acknowledged by one replica survives the loss of that replica, its node and its volume. Layout::

    ConfigMap alert-<hash of group and dedup key>     one per accepted alert
        labels      incident-response.slurm-exporter.io/spool: <group>
                    incident-response.slurm-exporter.io/spool-state: pending | done | failed
        annotations incident-response.slurm-exporter.io/claim-holder: <replica>   (the replica that runs it)
                    incident-response.slurm-exporter.io/finished-unix: <time>    (done and failed)
        data        entry: the spool entry (the same document as a file spool's pending/<id>.json)
    ConfigMap launcher-<hash of replica>              one per live replica: its heartbeat
        labels      incident-response.slurm-exporter.io/spool-replica: <group>

Dedup across replicas: the object's name is derived from the alert's dedup key (fingerprint and startsAt), and the
create is create-if-absent: when Alertmanager sends the same alert to two replicas, the API server lets one create win
and the other answers "deduplicated" (a finished entry older than ``dedup_window`` is replaced: a new occurrence).

Claims: an entry is run only by the replica named in its ``claim-holder``; a replica takes an entry with an update
that has the resourceVersion it read as a precondition, so two replicas never both take it. The replica that accepts
an alert holds it from the start. Each replica renews its heartbeat every ``claim_ttl / 3`` seconds; another
replica considers it lost when its heartbeat has not changed for ``claim_ttl`` seconds *on the observer's own
clock* (as Kubernetes leader election does; no clocks are compared), or when the heartbeat is gone (a replica deletes
its own when it stops). Every replica lists the pending entries every ``scan_interval`` seconds and takes those whose
holder is lost. A replica that cannot renew its heartbeat for ``claim_ttl / 2`` seconds stops its runs (they are
taken over elsewhere), and every write of an entry checks that its holder is still this replica: an entry is
finished (done or failed) exactly once, by the replica that holds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import KubernetesError, core_path

LABEL = 'incident-response.slurm-exporter.io/'
GROUP_LABEL = LABEL + 'spool'
STATE_LABEL = LABEL + 'spool-state'
REPLICA_LABEL = LABEL + 'spool-replica'
HOLDER = LABEL + 'claim-holder'
FINISHED = LABEL + 'finished-unix'
RECEIVED = LABEL + 'received-unix'
MANAGED = {'app.kubernetes.io/managed-by': 'slurm_exporter.incident_response',
           'app.kubernetes.io/part-of': 'slurm-exporter-incident-response'}
GROUP_RE = re.compile(r'^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$')
METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json'
PAGE = 500
WRITE_ATTEMPTS = 8


class ClaimLost(Exception):
    """Another replica holds the entry now (this replica was taken for lost): it must not write it again."""


class ClusterSpoolError(OSError):
    """The API server did not take an alert; ``created`` are those of the same request that it did take."""

    def __init__(self, message, created=()):
        super().__init__(message)
        self.strerror = message
        self.created = list(created)


def _hash(text, length=40):
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:length]


class ClusterSpool:  # pylint: disable=too-many-instance-attributes
    """Pending, done and failed alerts as ConfigMaps, shared by the replicas of one ``group``.

    ``local`` (a file Spool) keeps what stays on the replica: run work directories and the rejection log.
    """

    backend = 'kubernetes'

    def __init__(self, local, kube, namespace, group, claim_ttl=30.0, dedup_window=300.0, holder=None,
                 clock=time.time, monotonic=time.monotonic):  # pylint: disable=too-many-arguments
        if not GROUP_RE.match(group or ''):
            raise ValueError('spool.group: expected a lower-case name of at most 40 characters (a-z, 0-9, -), got %r' % (group,))
        self.local = local
        self.root = local.root
        self.max_pending = local.max_pending
        self.kube = kube
        self.namespace = namespace
        self.group = group
        self.claim_ttl = float(claim_ttl)
        self.dedup_window = float(dedup_window)
        self.holder = holder or '%s/%d/%s' % (socket.gethostname()[:100], os.getpid(), secrets.token_hex(4))
        self.clock = clock
        self.monotonic = monotonic
        self.lock = threading.Lock()
        self.reserved = 0           # room reserved by requests whose alerts are not created yet
        self.versions = {}          # entry id -> resourceVersion of this replica's last read or write
        self.known = set()          # entry ids in this replica's worker queue (what it holds: counted in max_pending)
        self.seen = {}              # holder -> (heartbeat resourceVersion, monotonic time it last changed)
        self.renewed = None         # monotonic time of the last successful heartbeat write
        self.heartbeat_version = None

    # -- names ---------------------------------------------------------------------------
    def _path(self, name=None):
        return core_path(self.namespace, 'configmaps', name)

    def name_of(self, dedup_key):
        return 'alert-' + _hash('%s\0%s' % (self.group, dedup_key))

    @property
    def heartbeat_name(self):
        return 'launcher-' + _hash('%s\0%s' % (self.group, self.holder), 32)

    # -- what stays local ------------------------------------------------------------------
    def new_id(self, fingerprint):
        return self.local.new_id(fingerprint)

    def work_dir(self, entry_id):
        return self.local.work_dir(entry_id)

    def log_rejection(self, reason, message, **fields):
        self.local.log_rejection(reason, message, **fields)

    def rejection_logs(self):
        return self.local.rejection_logs()

    @property
    def pending_count(self):
        """The alerts this replica holds (accepted or taken over, not finished, not lost) and those being created."""
        with self.lock:
            return len(self.known) + self.reserved

    def reserve(self, count):
        """Room for ``count`` new alerts within ``max_pending``; False when full (the request is answered 503)."""
        with self.lock:
            if len(self.known) + self.reserved + count > self.max_pending:
                return False
            self.reserved += count
            return True

    def release(self, count):
        with self.lock:
            self.reserved -= count

    # -- objects ---------------------------------------------------------------------------
    def _body(self, entry, state, holder, version=None, finished=None):
        annotations = {HOLDER: holder or '', RECEIVED: '%.3f' % entry.get('received_unix', 0)}
        if finished is not None:
            annotations[FINISHED] = '%.3f' % finished
        metadata = {'name': self.name_of(entry['dedup_key']), 'namespace': self.namespace,
                    'labels': dict(MANAGED, **{GROUP_LABEL: self.group, STATE_LABEL: state}), 'annotations': annotations}
        if version is not None:
            metadata['resourceVersion'] = version
        return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': metadata,
                'data': {'entry': json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(',', ':'))}}

    def _get(self, name):
        try:
            document, _source = self.kube.get_json(self._path(name))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise ClusterSpoolError('spool kubernetes://%s: reading %s: %s' % (self.namespace, name, exc.message)) from None
        return document

    @staticmethod
    def _entry_of(document):
        return json.loads((document.get('data') or {}).get('entry') or '{}')

    @staticmethod
    def _meta(document, key, default=''):
        return ((document.get('metadata') or {}).get('annotations') or {}).get(key, default)

    @staticmethod
    def _state(document):
        return ((document.get('metadata') or {}).get('labels') or {}).get(STATE_LABEL)

    def _list(self, selector, metadata_only=True):
        items, token = [], None
        for _page in range(1000):
            query = {'labelSelector': selector, 'limit': PAGE, 'continue': token}
            try:
                document, _source = self.kube.get_json(self._path(), query, accept=METADATA_LIST if metadata_only else 'application/json')
            except KubernetesError as exc:
                raise ClusterSpoolError('spool kubernetes://%s: listing: %s' % (self.namespace, exc.message)) from None
            items.extend(document.get('items') or [])
            token = (document.get('metadata') or {}).get('continue')
            if not token:
                break
        return items

    # -- intake ------------------------------------------------------------------------------
    def add(self, entries):
        """Create an object per entry (create-if-absent); returns the entries that are new (the others are duplicates
        another replica, or this one, already took). Raises ClusterSpoolError (an OSError) when the API server does not
        take one: the request is answered 503 and Alertmanager sends it again."""
        added = []
        try:
            for entry in entries:
                try:
                    if self._create(entry):
                        added.append(entry)
                except ClusterSpoolError as exc:
                    raise ClusterSpoolError(exc.strerror, added) from None
        finally:
            # what was created is held here from now on: its room moves from the reservation to ``known``
            with self.lock:
                self.known.update(entry['id'] for entry in added)
                self.reserved -= len(added)
        return added

    def _create(self, entry):
        body = self._body(entry, 'pending', self.holder)
        name = body['metadata']['name']
        for _attempt in range(WRITE_ATTEMPTS):
            try:
                document, _source = self.kube.request_json('POST', self._path(), body)
            except KubernetesError as exc:
                if exc.status != 409:
                    raise ClusterSpoolError('spool kubernetes://%s: creating %s: %s' % (self.namespace, name, exc.message)) from None
            else:
                self.versions[entry['id']] = document['metadata']['resourceVersion']
                return True
            existing = self._get(name)
            if existing is None:
                continue            # pruned between the create and the read: create again
            theirs = self._entry_of(existing)
            if theirs.get('id') == entry['id']:
                # this replica's own create, retried by the client after it landed
                self.versions[entry['id']] = existing['metadata']['resourceVersion']
                return True
            finished = self._state(existing) != 'pending'
            if not finished or float(theirs.get('received_unix') or 0) >= self.clock() - self.dedup_window:
                return False
            # a finished entry older than the dedup window: the alert came again, a new occurrence replaces it
            body['metadata']['resourceVersion'] = existing['metadata']['resourceVersion']
            try:
                document, _source = self.kube.request_json('PUT', self._path(name), body)
            except KubernetesError as exc:
                if exc.status in (404, 409):
                    body['metadata'].pop('resourceVersion', None)
                    continue
                raise ClusterSpoolError('spool kubernetes://%s: replacing %s: %s' % (self.namespace, name, exc.message)) from None
            self.versions[entry['id']] = document['metadata']['resourceVersion']
            return True
        return False

    # -- runs ----------------------------------------------------------------------------------
    def claims_valid(self):
        """False when the heartbeat has not been renewed for half the claim time: other replicas may take over soon."""
        return self.renewed is not None and self.monotonic() - self.renewed < self.claim_ttl / 2

    def _holder_lost(self, holder):
        if not holder:
            return True
        if holder == self.holder:
            return False
        seen = self.seen.get(holder)
        if seen is None:
            seen = self.observe().get(holder)   # a holder this replica has not looked at yet
        if seen is None:
            return True             # no heartbeat: stopped, or never started
        return self.monotonic() - seen[1] >= self.claim_ttl

    def claim(self, entry):
        """The newest copy of ``entry`` when this replica holds it now (taking it over from a lost holder); None when it is
        finished, gone, or held by a live replica (that replica runs it)."""
        name = self.name_of(entry['dedup_key'])
        version = self.versions.get(entry['id'])
        current = dict(entry)
        for _attempt in range(WRITE_ATTEMPTS):
            if version is None:
                document = self._get(name)
                if document is None or self._state(document) != 'pending':
                    return self._drop(entry)
                current = self._entry_of(document)
                if current.get('id') != entry['id']:
                    return self._drop(entry)
                holder = self._meta(document, HOLDER)
                if holder != self.holder and not self._holder_lost(holder):
                    return self._drop(entry)
                version = document['metadata']['resourceVersion']
                if holder == self.holder:
                    self.versions[entry['id']] = version
                    return current
                if holder:
                    # recorded in the same write as the claim
                    current.setdefault('takeovers', []).append({'from': holder, 'to': self.holder, 'unix': round(self.clock(), 3)})
            try:
                document, _source = self.kube.request_json('PUT', self._path(name), self._body(current, 'pending', self.holder, version))
            except KubernetesError as exc:
                if exc.status in (404, 409):
                    version = None
                    continue
                raise ClusterSpoolError('spool kubernetes://%s: claiming %s: %s' % (self.namespace, name, exc.message)) from None
            self.versions[entry['id']] = document['metadata']['resourceVersion']
            with self.lock:
                self.known.add(entry['id'])
            return current
        return self._drop(entry)

    def _drop(self, entry):
        with self.lock:
            self.known.discard(entry['id'])
        self.versions.pop(entry['id'], None)
        return None

    def _put(self, entry, state, finished=None):
        """Write the entry under this replica's claim; ClaimLost when another replica took it."""
        name = self.name_of(entry['dedup_key'])
        holder = self.holder if state == 'pending' else ''
        version = self.versions.get(entry['id'])
        for _attempt in range(WRITE_ATTEMPTS):
            if version is None:
                document = self._get(name)
                if (document is None or self._meta(document, HOLDER) != self.holder or self._state(document) != 'pending'
                        or self._entry_of(document).get('id') != entry['id']):
                    self._drop(entry)
                    raise ClaimLost('entry %s is held by %s now' % (entry['id'], document and self._meta(document, HOLDER) or 'nobody'))
                version = document['metadata']['resourceVersion']
            try:
                document, _source = self.kube.request_json('PUT', self._path(name), self._body(entry, state, holder, version, finished))
            except KubernetesError as exc:
                if exc.status in (404, 409):
                    version = None
                    continue
                raise ClusterSpoolError('spool kubernetes://%s: writing %s: %s' % (self.namespace, name, exc.message)) from None
            self.versions[entry['id']] = document['metadata']['resourceVersion']
            return
        raise ClusterSpoolError('spool kubernetes://%s: writing %s: %d conflicts in a row' % (self.namespace, name, WRITE_ATTEMPTS))

    def update(self, entry):
        self._put(entry, 'pending')

    def finish(self, entry, state):
        entry['finished_by'] = self.holder
        self._put(entry, state, finished=self.clock())
        self._drop(entry)

    # -- replicas ----------------------------------------------------------------------------
    def heartbeat(self):
        """Renew this replica's heartbeat (create it the first time); True when the API server took it."""
        name = self.heartbeat_name
        body = {'apiVersion': 'v1', 'kind': 'ConfigMap',
                'metadata': {'name': name, 'namespace': self.namespace, 'labels': dict(MANAGED, **{REPLICA_LABEL: self.group}),
                             'annotations': {HOLDER: self.holder}},
                'data': {'holder': self.holder, 'renewed': '%.3f' % self.clock()}}
        try:
            if self.heartbeat_version is None:
                try:
                    document, _source = self.kube.request_json('POST', self._path(), body)
                except KubernetesError as exc:
                    if exc.status != 409:
                        raise
                    document, _source = self.kube.request_json('PUT', self._path(name), body)
            else:
                body['metadata']['resourceVersion'] = self.heartbeat_version
                try:
                    document, _source = self.kube.request_json('PUT', self._path(name), body)
                except KubernetesError as exc:
                    if exc.status not in (404, 409):
                        raise
                    self.heartbeat_version = None
                    return self.heartbeat()
        except KubernetesError:
            return False
        self.heartbeat_version = document['metadata']['resourceVersion']
        self.renewed = self.monotonic()
        return True

    def stop_heartbeat(self):
        """Delete this replica's heartbeat: the entries it still holds are taken over at once."""
        try:
            self.kube.request_json('DELETE', self._path(self.heartbeat_name))
        except KubernetesError:
            pass
        self.heartbeat_version = None
        self.renewed = None

    def observe(self):
        """Read every replica's heartbeat; remember when each one last changed (on this replica's clock)."""
        now = self.monotonic()
        live = {}
        for item in self._list('%s=%s' % (REPLICA_LABEL, self.group)):
            holder = self._meta(item, HOLDER)
            version = item['metadata'].get('resourceVersion')
            previous = self.seen.get(holder)
            live[holder] = previous if previous is not None and previous[0] == version else (version, now)
        self.seen = live
        return live

    def scan(self):
        """Pending entries of the group that this replica should queue: not queued here, and held by nobody or by a
        lost replica (the claim at run time decides between replicas). Full documents."""
        self.observe()
        found = []
        for item in self._list('%s=%s,%s=pending' % (GROUP_LABEL, self.group, STATE_LABEL)):
            holder = self._meta(item, HOLDER)
            if holder == self.holder or not self._holder_lost(holder):
                continue
            document = self._get(item['metadata']['name'])
            if document is None or self._state(document) != 'pending':
                continue
            entry = self._entry_of(document)
            with self.lock:
                if not entry.get('id') or entry['id'] in self.known:
                    continue
                self.known.add(entry['id'])
            found.append(entry)
        return sorted(found, key=lambda entry: entry['id'])

    # -- restart and housekeeping -----------------------------------------------------------
    def recover(self, logger=None):  # pylint: disable=unused-argument
        """At start: the heartbeat, then the pending entries nobody live holds (more are taken over by ``scan``)."""
        self.local.recover(logger)
        if not self.heartbeat():
            raise ClusterSpoolError('spool kubernetes://%s: the API server does not take the replica heartbeat %s'
                                    % (self.namespace, self.heartbeat_name))
        return self.scan()

    def recent(self, since_unix):  # pylint: disable=unused-argument
        """The dedup memory is the API server's (create-if-absent): nothing to load."""
        return []

    def prune(self, retention_s, now=None):
        """Delete done entries finished more than ``retention_s`` ago, and heartbeats unchanged for 10 claim times.

        Each delete has the resourceVersion listed as its precondition: when the alert came again in between and
        another replica replaced the done entry with a pending one (a new occurrence), the delete fails (409) and the
        accepted alert is kept."""
        limit = (now or self.clock()) - retention_s
        removed = 0
        for item in self._list('%s=%s,%s=done' % (GROUP_LABEL, self.group, STATE_LABEL)):
            if float(self._meta(item, FINISHED, '0') or 0) < limit:
                options = {'apiVersion': 'v1', 'kind': 'DeleteOptions',
                           'preconditions': {'resourceVersion': item['metadata'].get('resourceVersion')}}
                try:
                    self.kube.request_json('DELETE', self._path(item['metadata']['name']), options)
                    removed += 1
                except KubernetesError:
                    pass        # changed since the listing (kept), already gone, or the API server is away (next time)
        stale = self.monotonic() - 10 * self.claim_ttl
        for holder, (_version, changed) in list(self.seen.items()):
            if holder != self.holder and changed < stale:
                try:
                    self.kube.request_json('DELETE', self._path('launcher-' + _hash('%s\0%s' % (self.group, holder), 32)))
                except KubernetesError:
                    pass
        return removed

    def count(self, state):
        return len(self._list('%s=%s,%s=%s' % (GROUP_LABEL, self.group, STATE_LABEL, state)))

    def entries(self, state):
        """The entries in ``state`` (full documents), for tests and people."""
        return [self._entry_of(item) for item in self._list('%s=%s,%s=%s' % (GROUP_LABEL, self.group, STATE_LABEL, state), metadata_only=False)]
