# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""python -m tests.emulator --kubeconfig PATH: serve the emulated cluster until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.emulator import Emulator


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.emulator', description='In-memory Kubernetes API on a loopback port.')
    parser.add_argument('--kubeconfig', required=True, help='where to write the kubeconfig that points at the emulator')
    parser.add_argument('--host', default='127.0.0.1', help='loopback address to listen on (default 127.0.0.1)')
    parser.add_argument('--port', type=int, default=0, help='port (default: a free one)')
    parser.add_argument('--no-seed', action='store_true', help='start empty instead of with the slurm-exporter manifests')
    parser.add_argument('--pods', type=int, default=0, help='add this many pods to the slurm-exporter deployment')
    parser.add_argument('--log-lines', type=int, default=20, help='lines of each generated container log')
    parser.add_argument('--log-bytes', type=int, default=None, help='bytes of each generated container log (instead of --log-lines)')
    args = parser.parse_args(argv)
    try:
        emulator = Emulator.start(seed=not args.no_seed, extra_pods=args.pods, log_lines=args.log_lines, host=args.host,
                                  port=args.port, log_bytes=args.log_bytes)
    except ValueError as exc:
        parser.error(str(exc))
    emulator.write_kubeconfig(args.kubeconfig)
    sys.stdout.write('kube emulator: %s\nkubeconfig: %s\n' % (emulator.url, args.kubeconfig))
    sys.stdout.flush()
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_args: done.set())
    done.wait()
    emulator.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
