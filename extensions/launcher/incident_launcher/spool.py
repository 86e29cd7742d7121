# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The durable spool: one JSON file per accepted alert, written before the webhook is answered.

Layout of the spool directory::

    pending/<id>.json   accepted, waiting for (or in) a run
    done/<id>.json      the run finished (kept for ``done_retention`` seconds: the dedup window survives restarts)
    failed/<id>.json    the last attempt failed; the entry carries every attempt's reason
    work/<id>/          the alert file and the ansible-runner directory of a run in progress
    rejections.jsonl    authenticated requests and alerts that were refused, with the reason (no secrets);
                        rotated to .1 ... .<backups> (unauthenticated requests are never written anywhere)

The spool directory and its subdirectories are 0700, every file 0600: alert payloads can be sensitive.

Every write is atomic (temporary file in the same directory, fsync, rename, fsync of the
directory), so a crash leaves either the old or the new file, never a torn one. An id is
``<ns since epoch:020d>-<sequence:06d>-<fingerprint>``: it sorts in arrival order and the only
alert-supplied part is the fingerprint, which was checked to be hexadecimal.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import threading
import time

from incident_launcher import LauncherError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import atomic_write, fsync_dir as store_fsync_dir

ID_RE = re.compile(r'^\d{20}-\d{6}-[0-9a-f]{1,64}$')
SPOOL_VERSION = 1
STATES = ('pending', 'done', 'failed')


def fsync_dir(path):
    store_fsync_dir(path)


def write_file(path, data, mode=0o600, sync_dir=True):
    """Temp file + fsync + rename (+ fsync of the directory unless the caller batches it): the store's atomic write."""
    atomic_write(path, data, mode=mode, sync_dir=sync_dir)


def encode(document):
    return (json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(',', ':')) + '\n').encode('utf-8')


class Spool:
    """Pending, done and failed alerts in one directory tree."""

    backend = 'file'

    def __init__(self, root, max_pending=10000, rejection_log=None, rejection_log_max_bytes=10485760, rejection_log_backups=5):
        self.root = os.path.abspath(root)
        self.max_pending = max_pending
        self.rejection_log = rejection_log or os.path.join(self.root, 'rejections.jsonl')
        self.rejection_log_max_bytes = rejection_log_max_bytes
        self.rejection_log_backups = rejection_log_backups
        self.lock = threading.Lock()
        self.reject_lock = threading.Lock()
        self._sequence = itertools.count()
        self.pending_count = 0
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            # makedirs' mode is masked by the umask and not applied to a directory that exists: set it.
            os.chmod(self.root, 0o700)
            for name in STATES + ('work',):
                os.makedirs(os.path.join(self.root, name), mode=0o700, exist_ok=True)
                os.chmod(os.path.join(self.root, name), 0o700)
        except OSError as exc:
            raise LauncherError('spool directory %s cannot be created: %s' % (self.root, exc.strerror or exc)) from None
        if not os.access(os.path.join(self.root, 'pending'), os.W_OK | os.X_OK):
            raise LauncherError('spool directory %s is not writable by this user (uid %d)' % (self.root, os.getuid()))

    # -- paths -------------------------------------------------------------------------
    def path(self, state, entry_id):
        if state not in STATES or not ID_RE.match(entry_id):
            raise ValueError('not a spool entry: %s/%s' % (state, entry_id))
        return os.path.join(self.root, state, entry_id + '.json')

    def work_dir(self, entry_id):
        if not ID_RE.match(entry_id):
            raise ValueError('not a spool entry: %s' % entry_id)
        return os.path.join(self.root, 'work', entry_id)

    def new_id(self, fingerprint):
        return '%020d-%06d-%s' % (time.time_ns(), next(self._sequence) % 1000000, fingerprint)

    # -- intake ------------------------------------------------------------------------
    def reserve(self, count):
        """Claim room for ``count`` entries; False when the spool is full (the request is answered 503)."""
        with self.lock:
            if self.pending_count + count > self.max_pending:
                return False
            self.pending_count += count
            return True

    def release(self, count):
        with self.lock:
            self.pending_count -= count

    def add(self, entries):
        """Write new pending entries (each atomically), then sync the directory once: durable on return. Returns the
        entries written (all of them: the file spool's dedup is the launcher's memory, see Deduplicator)."""
        directory = os.path.join(self.root, 'pending')
        written = []
        try:
            for entry in entries:
                path = self.path('pending', entry['id'])
                write_file(path, encode(entry), sync_dir=False)
                written.append(path)
            fsync_dir(directory)
        except OSError:
            for path in written:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            with contextlib.suppress(OSError):
                fsync_dir(directory)
            raise
        return list(entries)

    # -- one replica: every entry is this process's (the cluster spool, clusterspool.py, shares them) --------------
    def claim(self, entry):
        """The entry to run (a file spool has one launcher: always this one)."""
        return entry

    @staticmethod
    def claims_valid():
        return True

    @staticmethod
    def scan():
        return []

    def heartbeat(self):
        return True

    def stop_heartbeat(self):
        pass

    # -- runs -------------------------------------------------------------------------
    def update(self, entry):
        """Rewrite a pending entry (attempt count, next attempt, errors)."""
        write_file(self.path('pending', entry['id']), encode(entry))

    def finish(self, entry, state):
        """Move a pending entry to done/ or failed/: the final copy is durable before the pending one goes."""
        write_file(self.path(state, entry['id']), encode(entry))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path('pending', entry['id']))
        fsync_dir(os.path.join(self.root, 'pending'))
        with self.lock:
            self.pending_count -= 1

    # -- restart -------------------------------------------------------------------------
    def _ids(self, state):
        names = []
        for name in os.listdir(os.path.join(self.root, state)):
            if name.endswith('.json') and ID_RE.match(name[:-5]):
                names.append(name[:-5])
        return sorted(names)

    def read(self, state, entry_id):
        with open(self.path(state, entry_id), 'rb') as handle:
            return json.loads(handle.read().decode('utf-8'))

    def recover(self, logger=None):
        """Pending entries in arrival order, after cleaning up what a crash can leave behind."""
        for state in STATES:
            directory = os.path.join(self.root, state)
            for name in os.listdir(directory):
                if name.startswith('.tmp-'):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(directory, name))
        finished = set(self._ids('done')) | set(self._ids('failed'))
        entries = []
        for entry_id in self._ids('pending'):
            if entry_id in finished:
                # A crash between the final copy and the removal of the pending one: it was finished.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path('pending', entry_id))
                continue
            try:
                entry = self.read('pending', entry_id)
            except (OSError, ValueError) as exc:
                # Never lost: an unreadable entry is set aside with its reason.
                os.replace(self.path('pending', entry_id), self.path('failed', entry_id))
                self.log_rejection('unreadable_spool_entry', 'pending/%s.json cannot be read (%s); moved to failed/' % (entry_id, exc))
                if logger:
                    logger.error('spool_entry_unreadable', entry=entry_id, error=str(exc))
                continue
            entries.append(entry)
        fsync_dir(os.path.join(self.root, 'pending'))
        work = os.path.join(self.root, 'work')
        for name in os.listdir(work):
            _remove_tree(os.path.join(work, name))
        with self.lock:
            self.pending_count = len(entries)
        return entries

    def recent(self, since_unix):
        """(dedup key, received time) of done and failed entries received after ``since_unix``: the dedup window survives restarts."""
        found = []
        for state in ('done', 'failed'):
            for entry_id in self._ids(state):
                if int(entry_id[:20]) / 1e9 < since_unix:
                    continue
                try:
                    entry = self.read(state, entry_id)
                except (OSError, ValueError):
                    continue
                found.append((entry.get('dedup_key'), entry.get('received_unix', 0)))
        return found

    def prune(self, retention_s, now=None):
        """Delete done entries older than ``retention_s``; failed entries stay until someone looks at them."""
        limit = ((now or time.time()) - retention_s) * 1e9
        removed = 0
        for entry_id in self._ids('done'):
            if int(entry_id[:20]) < limit:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path('done', entry_id))
                removed += 1
        return removed

    def count(self, state):
        return len(self._ids(state))

    # -- rejections ----------------------------------------------------------------------
    def log_rejection(self, reason, message, **fields):
        """Append one JSON line; past its size limit the log is rotated (.1 is the newest, .<backups> the oldest kept)."""
        document = {'time': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'reason': reason, 'message': message[:2000]}
        document.update(fields)
        line = (json.dumps(document, sort_keys=True, ensure_ascii=True, default=str) + '\n').encode('utf-8')
        with self.reject_lock:
            with contextlib.suppress(FileNotFoundError):
                if os.path.getsize(self.rejection_log) + len(line) > self.rejection_log_max_bytes:
                    self._rotate()
            fd = os.open(self.rejection_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _rotate(self):
        for number in range(self.rejection_log_backups - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace('%s.%d' % (self.rejection_log, number), '%s.%d' % (self.rejection_log, number + 1))
        os.replace(self.rejection_log, self.rejection_log + '.1')

    def rejection_logs(self):
        """The rejection log and its rotated copies, newest first (those that exist)."""
        paths = [self.rejection_log] + ['%s.%d' % (self.rejection_log, number) for number in range(1, self.rejection_log_backups + 1)]
        return [path for path in paths if os.path.exists(path)]


def _remove_tree(path):
    if os.path.islink(path) or not os.path.isdir(path):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    for directory, subdirs, files in os.walk(path, topdown=False):
        for name in files + [name for name in subdirs if os.path.islink(os.path.join(directory, name))]:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
        for name in subdirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(directory, name))
    with contextlib.suppress(OSError):
        os.rmdir(path)


remove_tree = _remove_tree


class Deduplicator:
    """Keys seen within the last ``window`` seconds (bounded: the oldest are forgotten first)."""

    def __init__(self, window=300.0, max_keys=500000, clock=time.time):
        self.window = float(window)
        self.max_keys = max_keys
        self.clock = clock
        self.seen = {}
        self.lock = threading.Lock()

    def check_and_remember(self, keys):
        """For each key: True when it is a duplicate (seen within the window); new keys are remembered."""
        now = self.clock()
        answers = []
        with self.lock:
            for key in keys:
                when = self.seen.get(key)
                if self.window > 0 and when is not None and now - when < self.window:
                    answers.append(True)
                    continue
                self.seen.pop(key, None)
                self.seen[key] = now
                answers.append(False)
            self._trim(now)
        return answers

    def forget(self, keys):
        """Undo check_and_remember for keys whose alerts were not spooled after all."""
        with self.lock:
            for key in keys:
                self.seen.pop(key, None)

    def remember(self, key, when):
        """Seed a key seen at ``when`` (restart); call in time order. Keys already outside the window are ignored."""
        with self.lock:
            if self.window <= 0 or self.clock() - when >= self.window:
                return
            if key and (key not in self.seen or self.seen[key] < when):
                self.seen.pop(key, None)
                self.seen[key] = when

    def _trim(self, now):
        # Insertion order is arrival order: expired keys and the overflow are at the front.
        while self.seen:
            key, when = next(iter(self.seen.items()))
            if now - when >= self.window or len(self.seen) > self.max_keys:
                del self.seen[key]
            else:
                break

    def __len__(self):
        return len(self.seen)
