# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The store's index: incident summaries in SQLite, derived from the record files.

The JSON records are the source of truth; the index (``<store>/.index/index.sqlite3``)
only makes listing and fingerprint look-ups cheap, and can be deleted at any time.

Freshness: every record write is an atomic rename into the store directory, which
changes the directory's modification time. The index remembers that time; while it
is unchanged the index is trusted without touching the record files. Otherwise it
is reconciled: every record file is stat()ed and the ones whose size or mtime
differ from the index are read again. Two details keep this exact:

- a writer marks the index ``pending`` before it renames a record and clears the
  mark with the new summary afterwards, so a writer that dies in between forces a
  full reconciliation;
- a directory time that is less than a second old is not remembered, so a change
  made by hand within the same clock tick as an indexed write is still seen.

Records must be replaced (written elsewhere and renamed), never edited in place,
for the index to notice them; the modules always do so.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time

INDEX_DIR = '.index'
INDEX_FILE = 'index.sqlite3'
SCHEMA = 2
RECORD_RE = re.compile(r'^incident-(INC-(\d{8})-(\d{4,6}))\.json$')
FIELDS = ('id', 'type', 'category', 'severity', 'priority', 'status', 'drill', 'title', 'created_at', 'updated_at',
          'acknowledged_at', 'resolved_at', 'response_due_at', 'escalation_due_at', 'escalation_level', 'revision', 'workload')
# A directory mtime younger than this is not trusted (coarse file system clocks).
SETTLE_NS = 1_000_000_000


def summary_of(record):
    """The fields kept in the index and returned by list queries."""
    result = {key: record.get(key) for key in FIELDS}
    result['fingerprints'] = sorted({alert['fingerprint'] for alert in record['alerts']})
    return result


class RecordIndex:
    """SQLite index of one store directory."""

    def __init__(self, root, loader, read_only=False):
        self.root = root
        self.loader = loader  # path -> validated record; raises RecordError
        self.read_only = read_only
        self.path = os.path.join(root, INDEX_DIR, INDEX_FILE)
        self._db = None

    # -- connection ----------------------------------------------------------------
    def _connect(self):
        if self._db is not None:
            return self._db
        if self.read_only:
            # Check mode must leave every file as it was, and even a read-only SQLite
            # connection updates the WAL's shared-memory file: scan the records instead.
            return None
        os.makedirs(os.path.dirname(self.path), mode=0o750, exist_ok=True)
        for attempt in range(2):
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute('PRAGMA journal_mode=WAL')
                db.execute('PRAGMA synchronous=NORMAL')
                db.execute('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)')
                row = db.execute('SELECT value FROM meta WHERE key = ?', ('schema',)).fetchone()
                if row is None or row[0] != SCHEMA:
                    self._create(db)
                self._db = db
                return db
            except sqlite3.DatabaseError:
                # A corrupt index is only a cache: drop it and rebuild from the records.
                with contextlib.suppress(Exception):
                    db.close()
                if attempt:
                    raise
                for suffix in ('', '-wal', '-shm'):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path + suffix)
        return None

    @staticmethod
    def _create(db):
        db.execute('BEGIN IMMEDIATE')
        db.execute('DROP TABLE IF EXISTS incidents')
        db.execute('DROP TABLE IF EXISTS fingerprints')
        db.execute('CREATE TABLE incidents (%s, fingerprints TEXT, mtime_ns INTEGER, size INTEGER)'
                   % ', '.join('%s %s' % (name, 'TEXT PRIMARY KEY' if name == 'id' else '') for name in FIELDS))
        db.execute('CREATE TABLE fingerprints (fingerprint TEXT, id TEXT, PRIMARY KEY (fingerprint, id))')
        db.execute('DELETE FROM meta')
        db.execute('INSERT INTO meta VALUES (?, ?)', ('schema', SCHEMA))
        db.execute('COMMIT')

    def close(self):
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # -- helpers -------------------------------------------------------------------
    def _meta(self, db, key):
        row = db.execute('SELECT value FROM meta WHERE key = ?', (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _row_to_summary(row):
        summary = dict(zip(FIELDS, row[:len(FIELDS)]))
        summary['drill'] = bool(summary['drill'])
        summary['fingerprints'] = row[len(FIELDS)].split(',') if row[len(FIELDS)] else []
        return summary

    def _rows(self, db, where=None, params=()):
        columns = ', '.join(FIELDS + ('fingerprints', 'mtime_ns', 'size'))
        entries = {}
        query = 'SELECT %s FROM incidents' % columns
        if where:
            query += ' WHERE ' + where
        for row in db.execute(query, list(params)):
            summary = self._row_to_summary(row)
            summary['_stat'] = (row[-2], row[-1])
            entries[summary['id']] = summary
        return entries

    @staticmethod
    def _put(db, summary, stat):
        values = [summary[key] for key in FIELDS]
        values[FIELDS.index('drill')] = int(summary['drill'])
        db.execute('INSERT OR REPLACE INTO incidents VALUES (%s)' % ', '.join('?' * (len(FIELDS) + 3)),
                   values + [','.join(summary['fingerprints']), stat[0], stat[1]])
        db.execute('DELETE FROM fingerprints WHERE id = ?', (summary['id'],))
        db.executemany('INSERT OR IGNORE INTO fingerprints VALUES (?, ?)',
                       [(fingerprint, summary['id']) for fingerprint in summary['fingerprints']])

    def _dir_mtime(self):
        return os.stat(self.root).st_mtime_ns

    def _settled(self, mtime_ns):
        return mtime_ns if time.time_ns() - mtime_ns > SETTLE_NS else None

    # -- reconciliation ----------------------------------------------------------------
    def entries(self, persist, where=None, params=()):
        """``(entries, invalid)``: record summaries by id, reconciled with the files.

        ``persist`` (the caller holds the store lock and may write) saves what the
        reconciliation learnt; otherwise it is kept in memory only. ``where`` and
        ``params`` (SQL over the index columns) may narrow the result when the index
        is fresh; otherwise every record is returned and the caller filters.
        """
        db = self._connect() if (persist and not self.read_only) else self._connect_for_read()
        if db is not None:
            if self._meta(db, 'pending') is None and self._meta(db, 'dir_mtime_ns') == self._dir_mtime():
                return self._rows(db, where, params), []
            entries = self._rows(db)
        else:
            entries = {}
        current, invalid, changed, removed = self._scan(entries)
        if persist and not self.read_only and db is not None:
            db.execute('BEGIN IMMEDIATE')
            try:
                for incident_id in removed:
                    db.execute('DELETE FROM incidents WHERE id = ?', (incident_id,))
                    db.execute('DELETE FROM fingerprints WHERE id = ?', (incident_id,))
                for incident_id in changed:
                    self._put(db, current[incident_id], current[incident_id]['_stat'])
                db.execute('INSERT OR REPLACE INTO meta VALUES (?, ?)', ('pending', None))
                # Trust the directory time from now on only if no record was unreadable.
                settled = None if invalid else self._settled(self._scan_mtime)
                db.execute('INSERT OR REPLACE INTO meta VALUES (?, ?)', ('dir_mtime_ns', settled))
                db.execute('COMMIT')
            except BaseException:
                if db.in_transaction:
                    db.execute('ROLLBACK')
                raise
        return current, invalid

    def _connect_for_read(self):
        if self.read_only or not os.path.exists(self.path):
            return None
        try:
            return self._connect()
        except (sqlite3.Error, OSError):
            return None

    def _scan(self, entries):
        """Stat every record file; read the changed ones again."""
        from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import RecordError  # pylint: disable=import-outside-toplevel

        self._scan_mtime = self._dir_mtime()
        current = {}
        invalid = []
        changed = []
        with os.scandir(self.root) as listing:
            for entry in listing:
                match = RECORD_RE.match(entry.name)
                if not match:
                    continue
                incident_id = match.group(1)
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                stamp = (stat.st_mtime_ns, stat.st_size)
                known = entries.get(incident_id)
                if known is not None and tuple(known['_stat']) == stamp:
                    current[incident_id] = known
                    continue
                try:
                    document = self.loader(entry.path)
                except RecordError as exc:
                    invalid.append({'path': entry.path, 'error': exc.message})
                    continue
                if document is None:
                    continue
                summary = summary_of(document)
                summary['_stat'] = stamp
                current[incident_id] = summary
                changed.append(incident_id)
        removed = [incident_id for incident_id in entries if incident_id not in current]
        return current, invalid, changed, removed

    # -- writes (store lock held) --------------------------------------------------------
    def begin_write(self, incident_id):
        """Mark the index stale before a record is renamed into place."""
        db = self._connect()
        db.execute('INSERT OR REPLACE INTO meta VALUES (?, ?)', ('pending', incident_id))

    def finish_write(self, record, path):
        """Store the new summary and clear the pending mark (after the rename)."""
        db = self._connect()
        stat = os.stat(path)
        summary = summary_of(record)
        db.execute('BEGIN IMMEDIATE')
        try:
            self._put(db, summary, (stat.st_mtime_ns, stat.st_size))
            previous = self._meta(db, 'dir_mtime_ns')
            db.execute('INSERT OR REPLACE INTO meta VALUES (?, ?)', ('pending', None))
            # The index was fresh before this write (the caller reconciled under the lock),
            # so after it the directory time is this write's.
            dir_mtime = self._dir_mtime()
            db.execute('INSERT OR REPLACE INTO meta VALUES (?, ?)',
                       ('dir_mtime_ns', dir_mtime if previous is not None or self._settled(dir_mtime) else None))
            db.execute('COMMIT')
        except BaseException:
            if db.in_transaction:
                db.execute('ROLLBACK')
            raise
