# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Container logs: given text, or generated lazily so that many large logs cost no memory."""

from __future__ import annotations

import collections
import datetime
import json

UTC = datetime.timezone.utc
COLLECTORS = ('jobs', 'nodes', 'partitions', 'qos', 'reservations', 'accounts', 'users', 'cluster')


class LogSource:
    """Lines with timestamps (one second apart, the last one at ``end``)."""

    def __init__(self, text=None, lines=None, size=None, seed='', end=None):
        self.text = text
        self.count = lines
        self.size = size
        self.seed = seed
        self.end = end or datetime.datetime.now(UTC).replace(microsecond=0)
        self._cache = {}

    def _generated(self):
        """Realistic slurm-exporter JSON log lines, deterministic for (seed, index)."""
        index = 0
        produced = 0
        while True:
            if self.count is not None and index >= self.count:
                return
            collector = COLLECTORS[(index + len(self.seed)) % len(COLLECTORS)]
            duration_ms = 40 + (index * 37 + len(self.seed)) % 900
            if index % 23 == 11:
                record = {'level': 'error', 'msg': 'collection failed', 'collector': collector, 'error_type': 'timeout',
                          'error': 'context deadline exceeded'}
            elif index % 17 == 5:
                record = {'level': 'warn', 'msg': 'slow collection', 'collector': collector}
            else:
                record = {'level': 'info', 'msg': 'collection completed', 'collector': collector}
            record.update(duration='%.3fs' % (duration_ms / 1000.0), duration_ms=duration_ms, pod=self.seed, seq=index)
            line = json.dumps(record, sort_keys=True).encode() + b'\n'
            if self.size is not None and produced + len(line) > self.size:
                return
            produced += len(line)
            yield line
            index += 1

    def _raw_lines(self):
        if self.text is not None:
            data = self.text.encode() if isinstance(self.text, str) else self.text
            return [line + b'\n' for line in data.split(b'\n') if line] if data else []
        return self._generated()

    def total_lines(self):
        if self.text is not None:
            return len(self._raw_lines())
        if self.count is not None and self.size is None:
            return self.count
        return sum(1 for _line in self._generated())

    def lines(self, since=None, tail=None, timestamps=False):
        """Yield the log lines as bytes (``since`` an aware datetime, ``tail`` a line count).

        A whole generated log of a given size is built once and then served from memory in
        64 KiB pieces, so that serving many large logs costs the emulator little.
        """
        if self.size is not None and self.text is None and since is None and tail is None:
            if timestamps not in self._cache:
                self._cache[timestamps] = b''.join(self._lines(None, None, timestamps))
            data = self._cache[timestamps]
            return (data[offset:offset + 65536] for offset in range(0, len(data), 65536))
        return self._lines(since, tail, timestamps)

    def _lines(self, since, tail, timestamps):
        total = self.total_lines()
        start = self.end - datetime.timedelta(seconds=max(total - 1, 0))

        def stamped():
            for number, line in enumerate(self._raw_lines()):
                moment = start + datetime.timedelta(seconds=number)
                if since is not None and moment < since:
                    continue
                yield (moment.strftime('%Y-%m-%dT%H:%M:%S.000000000Z ').encode() + line) if timestamps else line

        if tail is not None:
            return iter(collections.deque(stamped(), maxlen=max(tail, 0)))
        return stamped()
