# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""16 concurrent writers on one store: throughput and lost updates.

Usage: python benchmarks/bench_concurrent_writers.py [--writers 16] [--updates 25]

Rows, all measured in this run on fresh stores:
- one writer doing all the updates in sequence (the baseline for throughput);
- N processes updating one incident through the store (lock + atomic write);
- N processes opening one incident each (ID allocation under the lock);
- N processes doing a naive read-modify-write of the JSON file without a lock
  (what a shell framework does), to show the updates that a lock prevents losing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import tempfile
import time

from _common import print_table, use_checkout

COLLECTIONS = use_checkout()

# pylint: disable=wrong-import-position
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore  # noqa: E402


def service(root):
    return IncidentService(IncidentStore(root, lock_timeout=120), load_catalog(), actor='bench')


def update_worker(root, incident_id, writer, updates, barrier):
    svc = service(root)
    barrier.wait()
    for number in range(updates):
        svc.update(incident_id, {'timeline': [{'message': 'writer %d update %d' % (writer, number)}]})


def open_worker(root, writer, updates, barrier):
    svc = service(root)
    barrier.wait()
    for number in range(updates):
        svc.open(alerts=[{'fingerprint': '%04x%04x' % (writer + 1, number), 'labels': {'alertname': 'SlurmExporterDown'}}])


def naive_worker(path, writer, updates, barrier):
    barrier.wait()
    for number in range(updates):
        try:
            with open(path, encoding='utf-8') as handle:
                document = json.load(handle)
        except ValueError:
            continue  # a torn file written by another writer: this update is lost
        document['timeline'].append({'message': 'writer %d update %d' % (writer, number)})
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump(document, handle)


def run_processes(target, args_list):
    barrier = multiprocessing.Barrier(len(args_list) + 1)
    processes = [multiprocessing.Process(target=target, args=args + (barrier,)) for args in args_list]
    for process in processes:
        process.start()
    barrier.wait()
    start = time.perf_counter()
    for process in processes:
        process.join(timeout=600)
        if process.is_alive():
            process.kill()
            raise RuntimeError('a writer did not finish within 600 s')
    return time.perf_counter() - start


def timeline_messages(path):
    try:
        with open(path, encoding='utf-8') as handle:
            return sum(1 for entry in json.load(handle)['timeline'] if entry['message'].startswith('writer '))
    except ValueError:
        return 0  # the naive writers can leave a torn file behind


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--writers', type=int, default=16)
    parser.add_argument('--updates', type=int, default=25)
    args = parser.parse_args()
    total = args.writers * args.updates
    workdir = tempfile.mkdtemp(prefix='bench-writers-')
    rows = []
    try:
        # Baseline: one writer, all updates in sequence.
        root = os.path.join(workdir, 'sequential')
        incident_id = service(root).open(type_name='service_outage').after['id']
        start = time.perf_counter()
        svc = service(root)
        for number in range(total):
            svc.update(incident_id, {'timeline': [{'message': 'writer 0 update %d' % number}]})
        baseline = time.perf_counter() - start
        path = IncidentStore(root).record_path(incident_id)
        rows.append(['1 writer, sequential updates (baseline)', total, timeline_messages(path), total - timeline_messages(path),
                     '%.2f' % baseline, '%.0f' % (total / baseline), '1.00x'])

        root = os.path.join(workdir, 'concurrent')
        incident_id = service(root).open(type_name='service_outage').after['id']
        elapsed = run_processes(update_worker, [(root, incident_id, writer, args.updates) for writer in range(args.writers)])
        path = IncidentStore(root).record_path(incident_id)
        kept = timeline_messages(path)
        rows.append(['%d processes updating one incident' % args.writers, total, kept, total - kept, '%.2f' % elapsed,
                     '%.0f' % (total / elapsed), '%.2fx' % (baseline / elapsed)])

        root = os.path.join(workdir, 'opens')
        elapsed = run_processes(open_worker, [(root, writer, args.updates) for writer in range(args.writers)])
        summaries, _invalid = IncidentStore(root).list()
        ids = {summary['id'] for summary in summaries}
        rows.append(['%d processes opening incidents' % args.writers, total, len(ids), total - len(ids), '%.2f' % elapsed,
                     '%.0f' % (total / elapsed), '%.2fx' % (baseline / elapsed)])

        root = os.path.join(workdir, 'naive')
        incident_id = service(root).open(type_name='service_outage').after['id']
        path = IncidentStore(root).record_path(incident_id)
        elapsed = run_processes(naive_worker, [(path, writer, args.updates) for writer in range(args.writers)])
        kept = timeline_messages(path)
        rows.append(['%d naive read-modify-write processes, no lock' % args.writers, total, kept, total - kept,
                     '%.2f' % elapsed, '%.0f' % (total / elapsed), '%.2fx' % (baseline / elapsed)])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table('%d concurrent writers x %d updates (kept = distinct updates or incidents found afterwards)'
                % (args.writers, args.updates),
                ['method', 'writes', 'kept', 'lost', 'seconds', 'writes/s', 'speed vs baseline'], rows)


if __name__ == '__main__':
    main()
