# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Listing 10,000 stored incidents with a filter: the store's index versus glob + json.load of every file.

Usage: python benchmarks/bench_incident_list.py [--count 10000] [--repeat 5]

Both sides answer the same query (open critical real incidents created in a time range)
on the same store in the same run; the table prints the median wall time and the ratio
against the naive baseline. The cold row includes rebuilding a missing index.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import random
import shutil
import tempfile
import time

from _common import print_table, timed, use_checkout

use_checkout()

# pylint: disable=wrong-import-position
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import query  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore, atomic_write, dump_json  # noqa: E402

SINCE = '2026-01-10T00:00:00Z'
UNTIL = '2026-01-20T23:59:59Z'


def populate(root, count):
    """``count`` realistic records spread over January 2026, written directly (no index yet)."""
    catalog = load_catalog()
    types = sorted(catalog.types)
    rng = random.Random(42)
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    per_day = {}
    os.makedirs(root)
    for number in range(count):
        created = start + datetime.timedelta(seconds=rng.randrange(31 * 86400))
        day = created.strftime('%Y%m%d')
        per_day[day] = per_day.get(day, 0) + 1
        record = rec.new_record(catalog, 'INC-%s-%04d' % (day, per_day[day]), rng.choice(types), created,
                                drill=rng.random() < 0.1)
        entry = rec.normalise_alert({'fingerprint': '%016x' % number, 'labels': {
            'alertname': 'SlurmExporterDown', 'namespace': 'slurm-exporter', 'pod': 'slurm-exporter-%d' % number}}, created)
        rec.merge_alert(record, entry, created, 'bench')
        for step in range(rng.randrange(2, 8)):
            rec.add_timeline(record, created, 'investigation', 'note', 'step %d of the response' % step, 'bench')
        record['status'] = rng.choice(rec.STATUSES)
        record['revision'] = 1
        atomic_write(os.path.join(root, 'incident-%s.json' % record['id']), dump_json(record))


def naive(root):
    """The baseline: glob every record file, json.load it, filter."""
    found = []
    for path in glob.glob(os.path.join(root, 'incident-*.json')):
        with open(path, encoding='utf-8') as handle:
            record = json.load(handle)
        if (record['status'] != 'resolved' and record['severity'] == 'critical' and not record['drill']
                and SINCE <= record['created_at'] <= UNTIL):
            found.append(record['id'])
    return sorted(found)


def indexed(root):
    store = IncidentStore(root)
    predicate = query.build_filter(load_catalog(), statuses=['investigating', 'identified', 'monitoring'],
                                   severities=['critical'], drill=False, since=SINCE, until=UNTIL)
    summaries, _invalid = store.list(predicate)
    return sorted(summary['id'] for summary in summaries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=10000)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='bench-list-')
    root = os.path.join(workdir, 'store')
    try:
        populate(root, args.count)

        def drop_index():
            shutil.rmtree(os.path.join(root, '.index'), ignore_errors=True)

        def cold():
            drop_index()
            return indexed(root)

        def reconcile():
            # The store directory changed since the index last looked (a write by hand, a fresh
            # start): every record file is stat()ed, none is read again.
            os.utime(root)
            return indexed(root)

        base_median, _base_min, base_ids = timed(lambda: naive(root), repeat=args.repeat)
        cold_median, _cold_min, cold_ids = timed(cold, repeat=max(1, args.repeat // 2))
        reconcile_median, _rec_min, reconcile_ids = timed(reconcile, repeat=args.repeat)
        time.sleep(1.2)  # let the directory time settle (a store is not written every second)
        indexed(root)
        warm_median, _warm_min, warm_ids = timed(lambda: indexed(root), repeat=args.repeat)
        assert base_ids == warm_ids == cold_ids == reconcile_ids, 'the listings disagree'
        rows = [
            ['glob + json.load (baseline)', args.count, len(base_ids), '%.3f' % base_median, '1.00x'],
            ['incident_info, no index yet (builds it)', args.count, len(cold_ids), '%.3f' % cold_median,
             '%.2fx' % (base_median / cold_median)],
            ['incident_info, index + stat() of every record', args.count, len(reconcile_ids), '%.3f' % reconcile_median,
             '%.2fx' % (base_median / reconcile_median)],
            ['incident_info, index fresh', args.count, len(warm_ids), '%.3f' % warm_median,
             '%.2fx' % (base_median / warm_median)],
        ]
        print_table('Listing %d incidents with a filter (median of %d runs; speed-up = baseline time / time)'
                    % (args.count, args.repeat), ['method', 'records', 'matches', 'seconds', 'speed-up'], rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
