# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bounded worker pool: at most ``concurrency`` runs at a time, one at a time per incident key.

Entries of one key (the alert fingerprint) run in arrival order; a failed run holds its key
back until its retry is due (so a later resolution never overtakes the firing it resolves).
"""

from __future__ import annotations

import collections
import heapq
import threading
import time


class Dispatcher:
    """Per-key FIFO queues, a ready list of keys and a heap of delayed keys, served by worker threads."""

    def __init__(self, process, concurrency=4, on_change=None, clock=time.monotonic):
        self.process = process
        self.concurrency = concurrency
        self.on_change = on_change
        self.clock = clock
        self.cond = threading.Condition()
        self.queues = {}
        self.ready = collections.deque()
        self.delayed = []
        self.in_flight = set()
        self.waiting = 0
        self.stopping = False
        self.threads = []

    # -- producer side -------------------------------------------------------------------
    def submit(self, key, item):
        with self.cond:
            queue = self.queues.get(key)
            if queue is None:
                queue = self.queues[key] = collections.deque()
                self.ready.append(key)
            queue.append(item)
            self.waiting += 1
            self.cond.notify()
        self._changed()

    def depth(self):
        with self.cond:
            return self.waiting

    def running(self):
        with self.cond:
            return len(self.in_flight)

    # -- workers ---------------------------------------------------------------------------
    def start(self):
        for number in range(self.concurrency):
            thread = threading.Thread(target=self._work, name='launcher-worker-%d' % number, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout=None):
        """No new runs start; wait up to ``timeout`` for the ones in progress. Returns True when all finished."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)

    def alive(self):
        return bool(self.threads) and all(thread.is_alive() for thread in self.threads)

    def _take(self):
        with self.cond:
            while not self.stopping:
                now = self.clock()
                while self.delayed and self.delayed[0][0] <= now:
                    _due, key = heapq.heappop(self.delayed)
                    self.ready.append(key)
                if self.ready:
                    key = self.ready.popleft()
                    self.in_flight.add(key)
                    return key, self.queues[key][0]
                timeout = min(1.0, self.delayed[0][0] - now) if self.delayed else 1.0
                self.cond.wait(max(0.001, timeout))
            return None, None

    def _finish(self, key, retry_at):
        with self.cond:
            self.in_flight.discard(key)
            queue = self.queues[key]
            if retry_at is not None:
                heapq.heappush(self.delayed, (retry_at, key))
            else:
                queue.popleft()
                self.waiting -= 1
                if queue:
                    self.ready.append(key)
                else:
                    del self.queues[key]
            self.cond.notify()
        self._changed()

    def _work(self):
        while True:
            key, item = self._take()
            if key is None:
                return
            self._changed()
            retry_at = None
            try:
                delay = self.process(item)
                if delay is not None:
                    retry_at = self.clock() + delay
            except Exception:  # pylint: disable=broad-exception-caught
                # process() reports its own failures; this keeps the key from being stuck forever.
                retry_at = self.clock() + 60.0
            if self.stopping and retry_at is not None:
                # Stopping: the entry stays in the spool and is resumed by the next start.
                with self.cond:
                    self.in_flight.discard(key)
                self._changed()
                continue
            self._finish(key, retry_at)

    def _changed(self):
        if self.on_change is not None:
            with self.cond:
                depth, running = self.waiting, len(self.in_flight)
            self.on_change(depth, running)
