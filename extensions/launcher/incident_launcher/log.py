# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Structured logs: one JSON object per line on stderr.

Only the fields a caller passes are logged; request headers, bodies and secrets never are.
"""

from __future__ import annotations

import datetime
import json
import sys
import threading

LEVELS = {'debug': 10, 'info': 20, 'warning': 30, 'error': 40}


class JsonLogger:
    """``logger.info('event', key=value, ...)`` writes ``{"time", "level", "event", ...}``."""

    def __init__(self, stream=None, level='info'):
        self.stream = stream if stream is not None else sys.stderr
        self.threshold = LEVELS[level]
        self.lock = threading.Lock()

    def log(self, level, event, **fields):
        if LEVELS[level] < self.threshold:
            return
        now = datetime.datetime.now(datetime.timezone.utc)
        document = {'time': now.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z', 'level': level, 'event': event}
        document.update(fields)
        line = json.dumps(document, default=str, ensure_ascii=True) + '\n'
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must never stop intake

    def debug(self, event, **fields):
        self.log('debug', event, **fields)

    def info(self, event, **fields):
        self.log('info', event, **fields)

    def warning(self, event, **fields):
        self.log('warning', event, **fields)

    def error(self, event, **fields):
        self.log('error', event, **fields)
