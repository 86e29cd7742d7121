# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The durable spool (atomic writes, resume after a crash) and the dedup window."""

from __future__ import annotations

import json
import os
import stat

import pytest

from incident_launcher import spool as spool_mod
from incident_launcher.spool import Deduplicator, Spool


def entry(spool, fingerprint='abc1', **extra):
    document = {'id': spool.new_id(fingerprint), 'key': fingerprint, 'dedup_key': '%s|firing|t' % fingerprint, 'received_unix': 1.0,
                'attempts': 0, 'starts': 0, 'errors': [], 'payload': {'alerts': [{'fingerprint': fingerprint}]}}
    document.update(extra)
    return document


def files(root):
    return sorted(os.path.relpath(os.path.join(directory, name), root) for directory, _dirs, names in os.walk(root) for name in names)


def test_add_is_durable_before_it_returns(tmp_path, monkeypatch):
    spool = Spool(str(tmp_path / 'spool'))
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(spool_mod.os, 'fsync', lambda fd: synced.append(os.readlink('/proc/self/fd/%d' % fd)) or real_fsync(fd))
    entries = [entry(spool, 'aa'), entry(spool, 'bb')]
    spool.add(entries)
    pending = str(tmp_path / 'spool' / 'pending')
    # each file synced (under its temporary name), then the directory once, after both renames
    assert len(synced) == 3 and synced[-1] == pending
    assert all(os.path.dirname(path) == pending and os.path.basename(path).startswith('.tmp-') for path in synced[:2])
    assert files(pending) == sorted(item['id'] + '.json' for item in entries)
    assert oct(os.stat(os.path.join(pending, entries[0]['id'] + '.json')).st_mode & 0o777) == '0o600'


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    spool = Spool(str(tmp_path / 'spool'))
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, 'No space left on device')
        return os.rename(src, dst)

    monkeypatch.setattr(spool_mod.os, 'replace', failing_replace)
    with pytest.raises(OSError):
        spool.add([entry(spool, 'aa'), entry(spool, 'bb')])
    # all or nothing: the first file is removed again, no temporary file is left
    assert files(str(tmp_path / 'spool' / 'pending')) == []


def test_recover_resumes_in_arrival_order_and_cleans_up_a_crash(tmp_path):
    root = tmp_path / 'spool'
    spool = Spool(str(root))
    first, second, third = entry(spool, 'aa'), entry(spool, 'bb'), entry(spool, 'aa')
    spool.add([first, second, third])
    spool.finish(dict(second, result='ok'), 'done')
    # a crash between writing done/ and removing pending/: both exist
    spool_mod.write_file(spool.path('pending', second['id']), spool_mod.encode(second))
    (root / 'pending' / '.tmp-half-written').write_bytes(b'{"trunc')
    (root / 'work' / first['id']).mkdir()
    (root / 'work' / first['id'] / 'alert.json').write_text('{}')
    broken = spool.new_id('cc')
    (root / 'pending' / (broken + '.json')).write_bytes(b'{"not json')

    restarted = Spool(str(root))
    resumed = restarted.recover()
    assert [item['id'] for item in resumed] == [first['id'], third['id']]
    assert restarted.pending_count == 2
    assert files(str(root / 'pending')) == sorted([first['id'] + '.json', third['id'] + '.json'])
    assert files(str(root / 'work')) == []
    # the unreadable entry is set aside with its reason, never dropped
    assert (root / 'failed' / (broken + '.json')).exists()
    rejections = [json.loads(line) for line in (root / 'rejections.jsonl').read_text().splitlines()]
    assert rejections[0]['reason'] == 'unreadable_spool_entry' and broken in rejections[0]['message']


def test_finish_moves_and_counts(tmp_path):
    spool = Spool(str(tmp_path / 'spool'), max_pending=2)
    assert spool.reserve(2) and not spool.reserve(1)
    one, two = entry(spool, 'aa'), entry(spool, 'bb')
    spool.add([one, two])
    spool.finish(dict(one, failed_reason='boom'), 'failed')
    assert spool.pending_count == 1 and spool.reserve(1)
    assert spool.read('failed', one['id'])['failed_reason'] == 'boom'
    assert spool.count('pending') == 1 and spool.count('failed') == 1


def test_paths_accept_only_spool_ids(tmp_path):
    spool = Spool(str(tmp_path / 'spool'))
    for bad in ('../../etc/passwd', '0' * 20 + '-000001-../x', 'x'):
        with pytest.raises(ValueError):
            spool.path('pending', bad)
        with pytest.raises(ValueError):
            spool.work_dir(bad)


def test_prune_and_recent(tmp_path):
    spool = Spool(str(tmp_path / 'spool'))
    old = entry(spool, 'aa')
    old['id'] = '%020d-000000-aa' % (1000 * 10 ** 9)
    new = entry(spool, 'bb', received_unix=5000.0)
    new['id'] = '%020d-000001-bb' % (5000 * 10 ** 9)
    spool.add([old, new])
    spool.finish(old, 'done')
    spool.finish(new, 'done')
    assert spool.recent(4000) == [('bb|firing|t', 5000.0)]
    assert spool.prune(retention_s=100, now=5050) == 1
    assert spool.count('done') == 1


def test_rejection_log_rotation_is_bounded(tmp_path):
    spool = Spool(str(tmp_path / 'spool'), rejection_log_max_bytes=4096, rejection_log_backups=3)
    spool.log_rejection('unclassified', 'the first alert', alert={'fingerprint': 'f1257'})
    for number in range(200):
        spool.log_rejection('schema', 'message %d ' % number + 'x' * 200)
    logs = spool.rejection_logs()
    assert logs == [spool.rejection_log] + ['%s.%d' % (spool.rejection_log, number) for number in (1, 2, 3)]
    assert all(os.path.getsize(path) <= 4096 for path in logs) and not os.path.exists(spool.rejection_log + '.4')
    newest = [json.loads(line)['message'] for line in open(spool.rejection_log, encoding='utf-8')]
    assert newest[-1].startswith('message 199 ')


def test_the_spool_tree_is_private(tmp_path):
    root = tmp_path / 'var' / 'spool'
    Spool(str(root))
    for path in [root] + [root / name for name in ('pending', 'done', 'failed', 'work')]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    root.chmod(0o755)
    Spool(str(root))
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_dedup_window():
    clock = Clock()
    dedup = Deduplicator(window=300, clock=clock)
    assert dedup.check_and_remember(['a', 'b', 'a']) == [False, False, True]
    clock.now += 299
    assert dedup.check_and_remember(['a']) == [True]
    clock.now += 2
    # the window counts from the first sighting; after it the alert is new again
    assert dedup.check_and_remember(['a', 'b']) == [False, False]
    dedup.forget(['a'])
    assert dedup.check_and_remember(['a']) == [False]


def test_dedup_disabled_and_bounded():
    clock = Clock()
    assert Deduplicator(window=0, clock=clock).check_and_remember(['a', 'a']) == [False, False]
    bounded = Deduplicator(window=300, max_keys=3, clock=clock)
    bounded.check_and_remember(['k%d' % number for number in range(10)])
    assert len(bounded) == 3
    bounded.remember('old', 10.0)
    clock.now += 1
    bounded.check_and_remember(['x'])
    assert 'old' not in bounded.seen
