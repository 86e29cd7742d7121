# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m incident_launcher --config FILE``: run the webhook launcher until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from incident_launcher import LauncherError, __version__
from incident_launcher.collection import use_collection_loader
from incident_launcher.config import load
from incident_launcher.log import JsonLogger


def main(argv=None):
    parser = argparse.ArgumentParser(prog='incident_launcher', description='Alertmanager webhook -> incident response launcher')
    parser.add_argument('--config', required=True, help='the YAML configuration file (docs/launcher.md)')
    parser.add_argument('--check-config', action='store_true', help='validate the configuration and exit')
    parser.add_argument('--version', action='version', version='%(prog)s ' + __version__)
    args = parser.parse_args(argv)
    logger = JsonLogger()
    try:
        config = load(args.config)
        logger = JsonLogger(level=config['log_level'])
        use_collection_loader(config['collections_path'])
        # Imported now: the launcher's modules import the collection, which the collection loader has just made importable.
        from incident_launcher.server import Launcher  # pylint: disable=import-outside-toplevel

        launcher = Launcher(config, logger)
        if args.check_config:
            logger.info('config_ok', config=args.config, backend=config['backend'])
            return 0
        done = threading.Event()

        def on_signal(signum, _frame):
            logger.info('signal', signal=signal.Signals(signum).name)
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        launcher.start()
    except LauncherError as exc:
        logger.error('startup_failed', error=str(exc))
        return 2
    while not done.wait(1.0):
        pass
    launcher.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
