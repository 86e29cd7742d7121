# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The incident store: one JSON file per incident in a directory.

Layout of the store directory (default /var/incident-response)::

    incident-INC-YYYYMMDD-NNNN.json   one record per incident (mode 0640)
    .index/index.sqlite3              summaries for fast listing; reconciled with the records, rebuilt when lost
    audit.log                         append-only JSON lines: who changed what, when
    .lock                             the writers' lock (flock)
    evidence/ reports/ outbox/        written by other modules

Writers take an exclusive flock on .lock, so ID allocation and read-modify-write
are serialised across processes. Files are written atomically: a temporary file
in the same directory, fsync, rename, fsync of the directory. Readers take no
lock: they always see a complete old or new file.

This is the embedded default (``store_backend: file``). The kubernetes store (module_utils/kubestore.py, ``store_backend:
kubernetes``) has the same interface, which the lifecycle service (module_utils/service.py) and the modules use:
``read``, ``read_or_planned``, ``write`` (inside ``locked()``), ``related`` (the summaries an ``open`` decides on),
``next_id``, ``find_open``, ``find_resolved``, ``list``, ``audit_entries``, ``records`` and ``import_record`` (the
migration), ``path``/``ensure`` (the local directory of evidence, reports and outbox), and ``run(operation)``: every
service operation runs through it; here it simply runs it (the flock serialises), the kubernetes store runs it again
when a concurrent writer won the race.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import (
    LockTimeoutError, NotFoundError, RecordError, StoreError)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.index import RecordIndex
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

DEFAULT_STORE = '/var/incident-response'
RECORD_RE = re.compile(r'^incident-(INC-(\d{8})-(\d{4,6}))\.json$')
AUDIT_NAME = 'audit.log'
LOCK_NAME = '.lock'
SUBDIRS = ('evidence', 'reports', 'outbox')
MAX_SEQUENCE = 999999


def _oserror(action, path, exc):
    reason = exc.strerror or str(exc)
    return StoreError("cannot %s %s: %s" % (action, path, reason), errno=exc.errno, path=path)


def fsync_dir(path):
    """fsync a directory, so that renames and unlinks in it survive a crash."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write(path, data, mode=0o640, sync_dir=True):
    """Write bytes to ``path`` atomically: temp file, fsync, rename, fsync of the directory.

    ``sync_dir=False`` leaves the directory fsync to a caller that writes several files and syncs once.
    """
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(directory)


def write_if_changed(path, text, mode=0o644, check_mode=False):
    """Write ``text`` to ``path`` atomically unless it already holds exactly that; returns (changed, previous text)."""
    previous = None
    if os.path.exists(path):
        with open(path, encoding='utf-8') as handle:
            previous = handle.read()
    changed = previous != text
    if changed and not check_mode:
        directory = os.path.dirname(path) or '.'
        if not os.path.isdir(directory):
            raise StoreError('cannot write %s: directory %s does not exist' % (path, directory))
        try:
            atomic_write(path, text.encode('utf-8'), mode=mode)
        except OSError as exc:
            raise StoreError('cannot write %s: %s' % (path, exc.strerror or exc)) from None
    return changed, previous


def dump_json(document):
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')


def _integral(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 63:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def canonical(record):
    """The record as canonical JSON bytes (sorted keys, no spaces, integral numbers as integers: the Kubernetes API
    stores 2.0 as 2), so that one record has one digest in every store."""
    return json.dumps(_integral(record), sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def record_digest(record):
    """SHA-256 of the canonical record: the migration's proof that a copy is exact."""
    return hashlib.sha256(canonical(record)).hexdigest()


def ensure_directory(root):
    """Create a store directory (0750) and its sub-directories; fail clearly when it cannot be used."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise StoreError("store %s exists but is not a directory" % root)
    try:
        os.makedirs(root, mode=0o750, exist_ok=True)
        for sub in SUBDIRS:
            os.makedirs(os.path.join(root, sub), mode=0o750, exist_ok=True)
    except OSError as exc:
        raise _oserror('create the store directory', root, exc) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise StoreError("store directory %s is not writable by this user (uid %d)" % (root, os.getuid()))


def find_open(entries, fingerprints):
    """Ids of unresolved incidents among the summaries ``entries`` that hold any of ``fingerprints`` (newest first)."""
    wanted = set(fingerprints)
    found = [summary for summary in entries.values()
             if summary['status'] != 'resolved' and wanted.intersection(summary.get('fingerprints', ()))]
    found.sort(key=lambda summary: summary['created_at'], reverse=True)
    return [summary['id'] for summary in found]


def find_resolved(entries, fingerprints):
    """Ids of resolved incidents among the summaries ``entries`` that hold any of ``fingerprints`` (newest first)."""
    wanted = set(fingerprints)
    found = [summary for summary in entries.values()
             if summary['status'] == 'resolved' and wanted.intersection(summary.get('fingerprints', ()))]
    found.sort(key=lambda summary: summary['created_at'], reverse=True)
    return [summary['id'] for summary in found]


class IncidentStore:
    """Access to one store directory (the file backend)."""

    backend = 'file'

    def __init__(self, root=DEFAULT_STORE, lock_timeout=30.0, read_only=False):
        if not isinstance(root, str) or not root:
            raise StoreError("store: expected a directory path, got %r" % (root,))
        self.root = os.path.abspath(os.path.expanduser(root))
        self.lock_timeout = float(lock_timeout)
        # A read-only store (check mode) never creates anything: no directory, no lock file.
        self._read_only = read_only
        self._locked = False
        self.index = RecordIndex(self.root, self._load, read_only)
        self.location = self.root

    @property
    def read_only(self):
        return self._read_only

    @read_only.setter
    def read_only(self, value):
        self._read_only = value
        self.index.read_only = value

    # -- paths ---------------------------------------------------------------------
    def record_path(self, incident_id):
        return os.path.join(self.root, 'incident-%s.json' % rec.validate_id(incident_id))

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def exists(self):
        return os.path.isdir(self.root)

    def ensure(self):
        """Create the store directory (0750) and its sub-directories; fail clearly when it cannot be used."""
        ensure_directory(self.root)

    def close(self):
        """Nothing to release (the kubernetes store closes its API client)."""

    # -- transactions ------------------------------------------------------------------
    @staticmethod
    def run(operation):
        """Run one operation of the lifecycle service; the flock it takes (``locked``) makes it a transaction."""
        return operation()

    # -- locking -------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self):
        """Hold the store's exclusive writer lock (re-entrant within one store object)."""
        if self._locked:
            yield
            return
        lock_path = self.path(LOCK_NAME)
        if self.read_only:
            if os.path.exists(self.root) and not os.path.isdir(self.root):
                raise StoreError("store %s exists but is not a directory" % self.root)
            if not os.path.exists(lock_path):
                # Nothing was ever written here: there is nothing to serialise against.
                self._locked = True
                try:
                    yield
                finally:
                    self._locked = False
                return
            flags = os.O_RDONLY
        else:
            self.ensure()
            flags = os.O_RDWR | os.O_CREAT
        try:
            fd = os.open(lock_path, flags, 0o640)
        except OSError as exc:
            raise _oserror('open the lock file', lock_path, exc) from None
        try:
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.005
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise _oserror('lock', lock_path, exc) from None
                if time.monotonic() >= deadline:
                    raise LockTimeoutError("store %s: another writer held the lock for more than %.0f s (lock_timeout)"
                                           % (self.root, self.lock_timeout))
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
            self._locked = True
            try:
                yield
            finally:
                self._locked = False
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def try_locked(self):
        """Take the writer lock only if it is free right now; yields whether it was taken."""
        lock_path = self.path(LOCK_NAME)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError:
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            self._locked = True
            try:
                yield True
            finally:
                self._locked = False
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- records -------------------------------------------------------------------
    def read(self, incident_id):
        """Load and validate one record; NotFoundError or RecordError with the file named."""
        path = self.record_path(incident_id)
        record = self._load(path)
        if record is None:
            raise NotFoundError("incident %s not found in store %s" % (incident_id, self.root))
        if record['id'] != incident_id:
            raise RecordError("record file %s holds id %s, not %s; it was left untouched" % (path, record['id'], incident_id))
        return record

    @staticmethod
    def _load(path):
        try:
            with open(path, 'rb') as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _oserror('read', path, exc) from None
        try:
            document = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RecordError("record file %s is not valid JSON (%s bytes; truncated or corrupt: %s); it was left untouched"
                              % (path, len(raw), exc), path=path) from None
        try:
            rec.validate_record(document)
        except RecordError as exc:
            raise RecordError("record file %s fails schema validation at %s; it was left untouched" % (path, exc.message),
                              path=path) from None
        return document

    def write(self, record, actor, operation, before=None):
        """Validate and atomically write ``record`` (revision and updated_at advance); index and audit follow.

        Must be called with the lock held.
        """
        if not self._locked or self.read_only:
            raise StoreError("internal error: IncidentStore.write called without the store lock or on a read-only store")
        now = timeutil.utcnow()
        record['revision'] = (before['revision'] if before else 0) + 1
        record['updated_at'] = timeutil.format_ts(now)
        rec.validate_record(record)
        path = self.record_path(record['id'])
        self.refresh_index(persist=True)
        try:
            self.index.begin_write(record['id'])
        except sqlite3.Error as exc:
            raise StoreError("store %s: the index %s cannot be written (%s); nothing was changed" % (self.root, self.index.path, exc)) from None
        try:
            atomic_write(path, dump_json(record))
        except OSError as exc:
            raise StoreError("cannot write %s: %s; the previous version (if any) is intact"
                             % (path, exc.strerror or exc), errno=exc.errno) from None
        try:
            self.index.finish_write(record, path)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError("incident %s was written, but the index could not be updated: %s (it is reconciled on the next read)"
                             % (record['id'], exc)) from None
        self._audit(now, actor, operation, record, before)
        return record

    def _audit(self, now, actor, operation, record, before):
        changed = sorted(key for key in record if before is None or before.get(key) != record.get(key))
        line = json.dumps({
            'time': timeutil.format_ts(now), 'actor': actor, 'operation': operation, 'id': record['id'],
            'revision': record['revision'], 'fields': [key for key in changed if key not in ('revision', 'updated_at')],
            'pid': os.getpid(),
        }, sort_keys=True) + '\n'
        path = self.path(AUDIT_NAME)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode('utf-8'))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError("incident %s was written, but the audit log %s could not be appended: %s"
                             % (record['id'], path, exc.strerror or exc)) from None

    def audit_entries(self, incident_id=None):
        """The audit trail (oldest first): every entry, or those of one incident."""
        path = self.path(AUDIT_NAME)
        if not os.path.exists(path):
            return []
        with open(path, 'r', encoding='utf-8') as handle:
            entries = [json.loads(line) for line in handle if line.strip()]
        return [entry for entry in entries if incident_id is None or entry.get('id') == incident_id]

    # -- migration -----------------------------------------------------------------------
    def records(self):
        """``(record, error)`` for every record file, in id order (``error`` names an unreadable one, record None)."""
        if not os.path.isdir(self.root):
            return
        for name in sorted(os.listdir(self.root)):
            match = RECORD_RE.match(name)
            if not match:
                continue
            try:
                yield self.read(match.group(1)), None
            except (RecordError, NotFoundError) as exc:
                yield None, exc.message

    def import_record(self, record, audit=(), overwrite=False):
        """Copy ``record`` in as it is (revision and times unchanged) with its ``audit`` entries (migration).

        Returns ``created``, ``unchanged`` (the same record is here already: same digest) or ``replaced`` (with
        ``overwrite``); a different record under the same id fails unless ``overwrite``. Takes the lock.
        """
        rec.validate_record(record)
        path = self.record_path(record['id'])
        with self.locked():
            existing = self._load(path)
            if existing is not None and record_digest(existing) == record_digest(record):
                return 'unchanged'
            if existing is not None and not overwrite:
                raise StoreError("incident %s exists in store %s with other content (revision %s there, %s in the copy); "
                                 "nothing was changed (overwrite replaces it)"
                                 % (record['id'], self.root, existing['revision'], record['revision']))
            self.refresh_index(persist=True)
            self.index.begin_write(record['id'])
            atomic_write(path, dump_json(record))
            self.index.finish_write(record, path)
            known = {(entry.get('time'), entry.get('operation'), entry.get('revision')) for entry in self.audit_entries(record['id'])}
            lines = [json.dumps(entry, sort_keys=True) + '\n' for entry in audit
                     if (entry.get('time'), entry.get('operation'), entry.get('revision')) not in known]
            if lines:
                fd = os.open(self.path(AUDIT_NAME), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    os.write(fd, ''.join(lines).encode('utf-8'))
                    os.fsync(fd)
                finally:
                    os.close(fd)
        return 'created' if existing is None else 'replaced'

    # -- index -----------------------------------------------------------------------
    def refresh_index(self, persist=False, where=None, params=()):
        """``(entries, invalid)``: every record's summary by id, reconciled with the record files.

        ``invalid`` lists unreadable records with the reason. With ``persist`` (and the
        lock held, and a writable store) what was learnt is saved in the index.
        """
        if not os.path.isdir(self.root):
            return {}, []
        try:
            return self.index.entries(persist and self._locked and not self.read_only, where, params)
        except sqlite3.Error as exc:
            raise StoreError("store %s: the index %s cannot be used (%s); delete it and it is rebuilt from the records"
                             % (self.root, self.index.path, exc)) from None
        except OSError as exc:
            raise _oserror('index', self.root, exc) from None

    # -- queries -----------------------------------------------------------------------
    def read_or_planned(self, incident_id, now=None):
        """The record; or, on a read-only (check mode) store, None for the id this store would hand out next.

        In check mode an ``open`` writes nothing, so the tasks after it name an incident that does not
        exist yet; they can still run (and report what they would do) instead of failing.
        """
        try:
            return self.read(incident_id)
        except NotFoundError:
            if self.read_only and self.is_planned(incident_id, now):
                return None
            raise

    def is_planned(self, incident_id, now=None):
        """Whether ``incident_id`` is the id this store would hand out next (at ``now``, or ten minutes earlier)."""
        now = now or timeutil.utcnow()
        try:
            entries, _invalid = self.refresh_index(persist=False)
        except OSError:
            entries = {}
        return any(incident_id == self.next_id(moment, entries) for moment in (now, now - datetime.timedelta(minutes=10)))

    def next_id(self, now, entries=None):
        """The next free id for ``now``'s UTC day (call with the lock held)."""
        day = now.astimezone(timeutil.UTC).strftime('%Y%m%d')
        if entries is None:
            entries, _invalid = self.refresh_index()
        highest = 0
        prefix = 'INC-%s-' % day
        candidates = list(entries)
        # Unreadable records still hold their id.
        with contextlib.suppress(OSError):
            candidates.extend(match.group(1) for match in map(RECORD_RE.match, os.listdir(self.root)) if match)
        for incident_id in candidates:
            if incident_id.startswith(prefix):
                highest = max(highest, int(incident_id[len(prefix):]))
        if highest >= MAX_SEQUENCE:
            raise StoreError("store %s: no incident ids left for %s" % (self.root, day))
        return '%s%04d' % (prefix, highest + 1)

    def related(self, fingerprints=(), workload=None, now=None, cooldown=0):  # pylint: disable=unused-argument
        """The summaries an ``open`` decides on (fingerprints, correlation, the next id): here every one, by id (the
        index is local and cheap); reconciled and saved unless read-only. The kubernetes store selects by labels."""
        entries, _invalid = self.refresh_index(persist=not self.read_only)
        return entries

    def find_open(self, fingerprints, entries=None):
        """Ids of unresolved incidents that hold any of ``fingerprints`` (newest first)."""
        if entries is None:
            entries, _invalid = self.refresh_index()
        return find_open(entries, fingerprints)

    def find_resolved(self, fingerprints, entries=None):
        """Ids of resolved incidents that hold any of ``fingerprints`` (newest first)."""
        if entries is None:
            entries, _invalid = self.refresh_index()
        return find_resolved(entries, fingerprints)

    def list(self, predicate=None):
        """``(summaries, invalid)``: summaries (oldest first) for which ``predicate`` is true.

        Takes no lock, but when the index needs reconciling and the lock is free at
        once, the result is saved so that the next listing is fast again.
        """
        where, params = predicate.sql() if hasattr(predicate, 'sql') else (None, ())
        if not self.read_only and not self._locked and os.path.isdir(self.root):
            with self.try_locked() as locked:
                entries, invalid = self.refresh_index(locked, where, params)
        else:
            entries, invalid = self.refresh_index(False, where, params)
        result = []
        for summary in entries.values():
            if predicate is None or predicate(summary):
                item = dict(summary)
                item.pop('_stat', None)
                result.append(item)
        result.sort(key=lambda summary: (summary['created_at'], summary['id']))
        return result, invalid
