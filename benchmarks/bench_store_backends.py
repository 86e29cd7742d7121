# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Open, update and list incidents: the file store versus the kubernetes store (the emulated API server, over HTTP).

Usage: python benchmarks/bench_store_backends.py [--count 1000] [--repeat 3] [--servers emulator,real]

The same lifecycle service operations on both stores in the same run: ``count`` incidents opened (one alert each),
each one acknowledged (a read-modify-write under the store's concurrency control), then a filtered listing (open
critical incidents) repeated ``repeat`` times. The table prints the wall time and operations per second of each
phase, and the ratio kubernetes / file (how many times slower the cluster store is; the file store is the baseline).
The default count keeps ``make bench`` short (the file store's open and update time grows with the number of records
it holds); ``--count 10000 --servers real`` for the full figure. ``--servers`` names the API servers the kubernetes store is measured on: ``emulator`` (default,
tests/emulator) and/or ``real`` (the kube-apiserver and etcd of tests/kube, built and cached like ``make realkube``;
the store's namespace as the admin), each beside the same file store baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import yaml

from _common import REPO_ROOT, print_table, timed, use_checkout

use_checkout()

# pylint: disable=wrong-import-position
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import query, stores  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService  # noqa: E402

NS = 'incident-response'


def alert(number):
    return {'fingerprint': '%016x' % (number + 1), 'status': 'firing', 'annotations': {'summary': 'bench'},
            'labels': {'alertname': 'SlurmExporterDown', 'pod': 'slurm-exporter-%d' % number}}


def phases(config, count, repeat, catalog, label):
    """``{phase: seconds}`` for one store (each phase also reported on stderr as it ends)."""
    factory = stores.StoreFactory(config)
    service = IncidentService(factory(), catalog, actor='bench')
    ids = []
    start = time.perf_counter()
    for number in range(count):
        service.store = factory()
        ids.append(service.open(alerts=[alert(number)]).after['id'])
    opened = time.perf_counter() - start
    progress(label, 'open', count, opened)
    start = time.perf_counter()
    for incident_id in ids:
        service.store = factory()
        service.acknowledge(incident_id, reason='bench')
    updated = time.perf_counter() - start
    progress(label, 'update', count, updated)
    predicate = query.build_filter(catalog, statuses=['investigating', 'identified', 'monitoring'], severities=['critical'])
    listed, _min, summaries = timed(lambda: factory().list(predicate)[0], repeat=repeat)
    factory.close()
    assert len(set(ids)) == count and len(summaries) == count, 'the store lost incidents'
    progress(label, 'list', 1, listed)
    return {'open': opened, 'update': updated, 'list': listed}


def progress(label, phase, operations, seconds):
    print('%s: %s %d in %.3f s' % (label, phase, operations, seconds), file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=1000)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--servers', default='emulator', help='comma-separated: emulator, real')
    args = parser.parse_args()
    servers = [name.strip() for name in args.servers.split(',') if name.strip()]
    if not servers or set(servers) - {'emulator', 'real'}:
        parser.error('--servers: expected emulator and/or real, got %r' % args.servers)
    sys.path.insert(0, REPO_ROOT)

    workdir = tempfile.mkdtemp(prefix='bench-stores-')
    started = []
    try:
        catalog = load_catalog()
        file_times = phases(stores.settings('file', os.path.join(workdir, 'files')), args.count, args.repeat, catalog, 'file')
        measured = [('file', file_times)]
        for server in servers:
            kubeconfig, label = start_server(server, workdir, started)
            measured.append((label, phases(stores.settings('kubernetes', os.path.join(workdir, 'local-' + server), NS,
                                                           {'kubeconfig': kubeconfig}), args.count, args.repeat, catalog, label)))
        rows = []
        for phase, operations in (('open', args.count), ('update', args.count), ('list', 1)):
            for name, times in measured:
                rows.append([phase, name, operations, '%.3f' % times[phase], '%.0f' % (operations / times[phase]),
                             '%.2fx' % (times[phase] / file_times[phase])])
        print_table('%d incidents: open, update (acknowledge), list open critical ones (median of %d listings); '
                    'ratio = time / file store time (baseline)' % (args.count, args.repeat),
                    ['phase', 'store', 'operations', 'seconds', 'per second', 'ratio'], rows)
    finally:
        for server in started:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def start_server(server, workdir, started):
    """``(kubeconfig, label)`` of a running API server with the Incident CRD and the store's namespace."""
    with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'), encoding='utf-8') as handle:
        crd = yaml.safe_load(handle)
    if server == 'emulator':
        from tests.emulator import Emulator  # pylint: disable=import-outside-toplevel

        emulator = Emulator.start(seed=False)
        started.append(emulator)
        emulator.create(crd)
        emulator.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
        return emulator.write_kubeconfig(os.path.join(workdir, 'kubeconfig-emulator')), 'kubernetes (emulated API server)'
    from tests.kube.cluster import Cluster  # pylint: disable=import-outside-toplevel

    cluster = Cluster.start(workdir=os.path.join(workdir, 'cluster'), out=sys.stderr)
    started.append(cluster)
    cluster.install_crd(crd)
    cluster.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    return cluster.write_kubeconfig(os.path.join(workdir, 'kubeconfig-real'), namespace=NS), 'kubernetes (real kube-apiserver + etcd)'


if __name__ == '__main__':
    main()
