# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m tests.kube build|up|down|gomod|info``: the real control plane of the tests (see tests/kube/README.md)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from tests.kube import build
from tests.kube.cluster import Cluster, ClusterError, stop_from_pidfile


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.kube', description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    build_parser = commands.add_parser('build', help='build the binaries, or reuse the cached build')
    build_parser.add_argument('--rebuild', action='store_true', help='build even when a cached build is current')
    up = commands.add_parser('up', help='start a cluster in the foreground until interrupted (Ctrl-C, SIGTERM)')
    up.add_argument('--dir', default=None, help='work directory (kubeconfig, logs, audit.log, pids.json); default: a temporary one')
    up.add_argument('--no-seed', action='store_true', help='do not apply the slurm-exporter manifests')
    down = commands.add_parser('down', help='stop the cluster that `up --dir DIR` started (its pids.json)')
    down.add_argument('dir')
    commands.add_parser('gomod', help='regenerate tests/kube/go.mod and kwok/go.mod (and go.sum) for the pinned versions')
    commands.add_parser('info', help='the cached build: versions, cold build time, binary sizes')
    args = parser.parse_args(argv)

    try:
        if args.command == 'build':
            started = build.cached() is None or args.rebuild
            path = build.ensure_binaries(rebuild=args.rebuild)
            info = build.cached()
            if not started:
                print('reusing the cached control plane %s in %s (its cold build took %.0f s)'
                      % (info['kubernetes'], path, info['cold_build_seconds']))
            return 0
        if args.command == 'gomod':
            build.generate_gomod()
            return 0
        if args.command == 'info':
            info = build.cached()
            if info is None:
                print('no current build in %s: run `python -m tests.kube build`' % build.version_dir())
                return 1
            print(json.dumps(dict(info, bin_dir=build.bin_dir()), indent=1, sort_keys=True))
            return 0
        if args.command == 'down':
            stop_from_pidfile(os.path.abspath(args.dir), out=sys.stdout)
            return 0
        return _up(args)
    except (build.BuildError, ClusterError) as error:
        print('tests.kube: %s' % error, file=sys.stderr)
        return 1


def _up(args):
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    with Cluster.start(workdir=os.path.abspath(args.dir) if args.dir else None, out=sys.stdout) as cluster:
        if not args.no_seed:
            cluster.seed()
        info = cluster.info()
        print('control plane %s up in %.1f s' % (build.KUBERNETES_VERSION, info['started_seconds']))
        for key in ('server', 'kubeconfig', 'audit_log', 'workdir'):
            print('  %-10s %s' % (key, info[key]))
        print('  pids       %s' % ', '.join('%s=%d' % item for item in info['pids'].items()))
        print('export KUBECONFIG=%s K8S_AUTH_KUBECONFIG=%s' % (cluster.kubeconfig, cluster.kubeconfig))
        print('Ctrl-C (or `python -m tests.kube down %s`) stops it.' % cluster.workdir)
        sys.stdout.flush()
        while not stop.wait(1.0):
            dead = [name for name, process in cluster.processes.items() if process.poll() is not None]
            if dead:
                print('tests.kube: %s exited; stopping the rest' % ', '.join(dead), file=sys.stderr)
                return 1
    print('stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
