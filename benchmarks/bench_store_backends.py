# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Open, update and list incidents: the file store versus the kubernetes store (the emulated API server, over HTTP).

Usage: python benchmarks/bench_store_backends.py [--count 1000] [--repeat 3]

The same lifecycle service operations on both stores in the same run: ``count`` incidents opened (one alert each),
each one acknowledged (a read-modify-write under the store's concurrency control), then a filtered listing (open
critical incidents) repeated ``repeat`` times. The table prints the wall time and operations per second of each
phase, and the ratio kubernetes / file (how many times slower the cluster store is; the file store is the baseline).
The default count keeps ``make bench`` short: an open selects the incidents holding its alert's fingerprint by label,
which the emulator answers by scanning every object (so its open time grows with the count); ``--count 10000`` for
the full figure.
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


def phases(config, count, repeat, catalog):
    """``{phase: (seconds, result)}`` for one store."""
    factory = stores.StoreFactory(config)
    service = IncidentService(factory(), catalog, actor='bench')
    ids = []
    start = time.perf_counter()
    for number in range(count):
        service.store = factory()
        ids.append(service.open(alerts=[alert(number)]).after['id'])
    opened = time.perf_counter() - start
    start = time.perf_counter()
    for incident_id in ids:
        service.store = factory()
        service.acknowledge(incident_id, reason='bench')
    updated = time.perf_counter() - start
    predicate = query.build_filter(catalog, statuses=['investigating', 'identified', 'monitoring'], severities=['critical'])
    listed, _min, summaries = timed(lambda: factory().list(predicate)[0], repeat=repeat)
    factory.close()
    assert len(set(ids)) == count and len(summaries) == count, 'the store lost incidents'
    return {'open': opened, 'update': updated, 'list': listed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=1000)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, REPO_ROOT)
    from tests.emulator import Emulator  # pylint: disable=import-outside-toplevel

    workdir = tempfile.mkdtemp(prefix='bench-stores-')
    emulator = Emulator.start(seed=False)
    try:
        kubeconfig = emulator.write_kubeconfig(os.path.join(workdir, 'kubeconfig'))
        with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'), encoding='utf-8') as handle:
            emulator.create(yaml.safe_load(handle))
        emulator.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
        catalog = load_catalog()
        file_times = phases(stores.settings('file', os.path.join(workdir, 'files')), args.count, args.repeat, catalog)
        kube_times = phases(stores.settings('kubernetes', os.path.join(workdir, 'local'), NS, {'kubeconfig': kubeconfig}),
                            args.count, args.repeat, catalog)
        rows = []
        for phase, operations in (('open', args.count), ('update', args.count), ('list', 1)):
            for name, times in (('file', file_times), ('kubernetes (emulated API server)', kube_times)):
                rows.append([phase, name, operations, '%.3f' % times[phase], '%.0f' % (operations / times[phase]),
                             '%.2fx' % (times[phase] / file_times[phase])])
        print_table('%d incidents: open, update (acknowledge), list open critical ones (median of %d listings); '
                    'ratio = time / file store time' % (args.count, args.repeat),
                    ['phase', 'store', 'operations', 'seconds', 'per second', 'ratio'], rows)
    finally:
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
