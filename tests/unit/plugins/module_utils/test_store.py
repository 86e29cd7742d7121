# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime
import fcntl
import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import (
    LockTimeoutError, NotFoundError, RecordError, StoreError)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore

NOW = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)


def put(store, incident_id, type_name='service_outage', status='investigating'):
    record = rec.new_record(load_catalog(), incident_id, type_name, NOW)
    record['status'] = status
    with store.locked():
        store.write(record, 'test', 'open')
    return record


def test_write_read_roundtrip_atomic_and_audited(tmp_path):
    store = IncidentStore(str(tmp_path / 's'))
    put(store, 'INC-20260131-0001')
    loaded = store.read('INC-20260131-0001')
    assert loaded['revision'] == 1
    names = sorted(os.listdir(store.root))
    assert 'incident-INC-20260131-0001.json' in names
    assert not [name for name in names if name.startswith('.tmp-')]
    assert oct(os.stat(store.record_path('INC-20260131-0001')).st_mode & 0o777) == '0o640'
    assert [entry['operation'] for entry in store.audit_entries()] == ['open']


def test_next_id_is_a_sequence_per_utc_day(tmp_path):
    store = IncidentStore(str(tmp_path / 's'))
    with store.locked():
        assert store.next_id(NOW) == 'INC-20260131-0001'
    put(store, 'INC-20260131-0001')
    put(store, 'INC-20260131-0002')
    put(store, 'INC-20260130-0007')
    with store.locked():
        assert store.next_id(NOW) == 'INC-20260131-0003'
        assert store.next_id(NOW + datetime.timedelta(days=1)) == 'INC-20260201-0001'


def test_corrupt_record_gives_clear_error_and_is_untouched(tmp_path):
    store = IncidentStore(str(tmp_path / 's'))
    put(store, 'INC-20260131-0001')
    path = store.record_path('INC-20260131-0001')
    with open(path, 'rb') as handle:
        content = handle.read()
    with open(path, 'wb') as handle:
        handle.write(content[: len(content) // 2])
    with pytest.raises(RecordError, match='not valid JSON.*left untouched'):
        store.read('INC-20260131-0001')
    summaries, invalid = store.list()
    assert summaries == [] and invalid[0]['path'] == path
    with open(path, 'rb') as handle:
        assert handle.read() == content[: len(content) // 2]


def test_schema_violation_on_disk_names_the_field(tmp_path):
    store = IncidentStore(str(tmp_path / 's'))
    put(store, 'INC-20260131-0001')
    path = store.record_path('INC-20260131-0001')
    with open(path, encoding='utf-8') as handle:
        document = json.load(handle)
    document['status'] = 'exploded'
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(document, handle)
    with pytest.raises(RecordError, match='schema validation at status'):
        store.read('INC-20260131-0001')


def replace_file(path, document):
    """Replace a record the way any sane tool does: write elsewhere, rename over."""
    with open(path + '.new', 'w', encoding='utf-8') as handle:
        json.dump(document, handle)
    os.replace(path + '.new', path)


def test_index_heals_after_out_of_band_changes(tmp_path):
    store = IncidentStore(str(tmp_path / 's'))
    put(store, 'INC-20260131-0001')
    put(store, 'INC-20260131-0002')
    assert len(store.list()[0]) == 2
    # A record replaced by hand, another removed, one copied in: all seen on the next listing.
    path = store.record_path('INC-20260131-0002')
    with open(path, encoding='utf-8') as handle:
        document = json.load(handle)
    replace_file(path, dict(document, status='resolved'))
    os.unlink(store.record_path('INC-20260131-0001'))
    replace_file(store.record_path('INC-20260131-0005'), dict(document, id='INC-20260131-0005'))
    summaries, _invalid = store.list()
    assert [(s['id'], s['status']) for s in summaries] == [('INC-20260131-0002', 'resolved'), ('INC-20260131-0005', 'investigating')]
    # A lost or corrupt index is rebuilt from the records.
    index_path = store.index.path
    store.index.close()
    for suffix in ('-wal', '-shm'):
        if os.path.exists(index_path + suffix):
            os.unlink(index_path + suffix)
    with open(index_path, 'wb') as handle:
        handle.write(b'garbage' * 100)
    fresh = IncidentStore(store.root)
    with fresh.locked():
        fresh.refresh_index(persist=True)
    assert [s['id'] for s in fresh.list()[0]] == ['INC-20260131-0002', 'INC-20260131-0005']


def test_writer_that_dies_between_rename_and_index_is_reconciled(tmp_path):
    store = IncidentStore(str(tmp_path / 's'))
    put(store, 'INC-20260131-0001')
    record = store.read('INC-20260131-0001')
    with store.locked():
        store.index.begin_write(record['id'])   # what a writer does before its rename ...
        replace_file(store.record_path(record['id']), dict(record, status='identified', revision=2))
        # ... and then it is killed before finish_write
    assert store.list()[0][0]['status'] == 'identified'


def test_missing_incident(tmp_path):
    store = IncidentStore(str(tmp_path / 's'))
    with pytest.raises(NotFoundError, match='INC-20260131-0009 not found'):
        store.read('INC-20260131-0009')


def test_store_path_that_is_a_file(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(StoreError, match='not a directory'):
        with IncidentStore(str(blocker)).locked():
            pass
    with pytest.raises(StoreError, match='cannot create the store directory'):
        with IncidentStore(str(blocker / 'sub')).locked():
            pass


def test_lock_timeout_is_reported(tmp_path):
    store = IncidentStore(str(tmp_path / 's'), lock_timeout=0.2)
    store.ensure()
    fd = os.open(store.path('.lock'), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: conflicts like another process
        with pytest.raises(LockTimeoutError, match='held the lock for more than'):
            with store.locked():
                pass
    finally:
        os.close(fd)


def test_read_only_store_creates_nothing(tmp_path):
    root = tmp_path / 'absent'
    store = IncidentStore(str(root), read_only=True)
    with store.locked():
        assert store.list() == ([], [])
        with pytest.raises(StoreError):
            store.write(rec.new_record(load_catalog(), 'INC-20260131-0001', 'api_failure', NOW), 't', 'open')
    assert not root.exists()


def test_full_disk_keeps_previous_version(tmp_path):
    """A write that hits the file size limit (EFBIG, like ENOSPC) fails clearly and leaves the old record."""
    store = IncidentStore(str(tmp_path / 's'))
    record = put(store, 'INC-20260131-0001')
    path = store.record_path(record['id'])
    with open(path, 'rb') as handle:
        before = handle.read()
    code = textwrap.dedent("""
        import resource, signal, sys
        from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore
        from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import StoreError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = IncidentStore(sys.argv[1])
        record = store.read('INC-20260131-0001')
        changed = dict(record, summary='x' * 60000, impact='y' * 60000, title='z' * 60000, root_cause='w' * 60000)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200000, 200000))
        try:
            with store.locked():
                store.write(changed, 't', 'update', before=record)
        except StoreError as exc:
            print('STORE-ERROR', exc)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, '-c', code, store.root], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert 'STORE-ERROR cannot write' in done.stdout, done.stdout + done.stderr
    assert 'previous version (if any) is intact' in done.stdout
    with open(path, 'rb') as handle:
        assert handle.read() == before
    assert not [name for name in os.listdir(store.root) if name.startswith('.tmp-')]


def test_fresh_index_sql_filter_agrees_with_full_scan(tmp_path):
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import query  # pylint: disable=import-outside-toplevel

    store = IncidentStore(str(tmp_path / 's'))
    catalog = load_catalog()
    types = sorted(catalog.types)
    with store.locked():
        for number in range(1, 41):
            created = NOW + datetime.timedelta(hours=number)
            record = rec.new_record(catalog, 'INC-20260131-%04d' % number, types[number % len(types)], created,
                                    drill=number % 3 == 0)
            record['status'] = rec.STATUSES[number % 4]
            rec.merge_alert(record, rec.normalise_alert({'fingerprint': '%04x' % (number % 7), 'labels': {}}, created), created, 't')
            store.write(record, 'test', 'open')
    filters = [
        query.build_filter(catalog, statuses=['investigating', 'monitoring'], drill=False),
        query.build_filter(catalog, severities=['critical'], since='2026-02-01T00:00:00Z', until='2026-02-01T12:00:00Z'),
        query.build_filter(catalog, fingerprint='0003', types=types[:5]),
        query.build_filter(catalog, overdue=True, now=NOW + datetime.timedelta(days=3)),
    ]
    store.index.close()
    os.utime(store.root, ns=(10 ** 18, 10 ** 18))  # force the slow path: the directory changed
    scanned = [store.list(flt)[0] for flt in filters]
    store.index.close()
    with store.locked():
        store.refresh_index(persist=True)
    # The directory time is older than a second now (set above), so the index is trusted ...
    fresh = [store.list(flt)[0] for flt in filters]
    assert store.index.entries(False)[1] == [] and store.index._meta(store.index._connect(), 'dir_mtime_ns') == 10 ** 18  # pylint: disable=protected-access
    assert fresh == scanned
    assert all(scanned) and [len(found) for found in scanned] != [40] * 4
