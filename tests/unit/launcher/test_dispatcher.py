# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The worker pool: a global concurrency limit, one run at a time per key, arrival order per key, retries."""

from __future__ import annotations

import threading
import time

from incident_launcher.dispatcher import Dispatcher


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_concurrency_limit_and_one_run_per_key():
    lock = threading.Lock()
    state = {'running': 0, 'peak': 0, 'keys': set(), 'overlap': False, 'order': []}

    def process(item):
        key, number = item
        with lock:
            state['running'] += 1
            state['peak'] = max(state['peak'], state['running'])
            if key in state['keys']:
                state['overlap'] = True
            state['keys'].add(key)
            state['order'].append(item)
        time.sleep(0.02)
        with lock:
            state['running'] -= 1
            state['keys'].discard(key)

    dispatcher = Dispatcher(process, concurrency=3)
    dispatcher.start()
    for number in range(30):
        dispatcher.submit('k%d' % (number % 5), ('k%d' % (number % 5), number))
    assert wait_for(lambda: dispatcher.depth() == 0)
    dispatcher.stop(5)
    assert len(state['order']) == 30
    assert state['peak'] == 3 and not state['overlap']
    for key in range(5):
        numbers = [number for name, number in state['order'] if name == 'k%d' % key]
        assert numbers == sorted(numbers)


def test_a_retry_holds_its_key_back():
    attempts = []

    def process(item):
        attempts.append((item, time.monotonic()))
        if item == 'first' and len([entry for entry in attempts if entry[0] == 'first']) < 3:
            return 0.05
        return None

    dispatcher = Dispatcher(process, concurrency=2)
    dispatcher.start()
    dispatcher.submit('k', 'first')
    dispatcher.submit('k', 'second')
    assert wait_for(lambda: dispatcher.depth() == 0)
    dispatcher.stop(5)
    names = [name for name, _when in attempts]
    assert names == ['first', 'first', 'first', 'second']
    assert attempts[1][1] - attempts[0][1] >= 0.045


def test_on_change_reports_depth_and_running():
    seen = []
    release = threading.Event()
    dispatcher = Dispatcher(lambda item: release.wait(5) and None, concurrency=1, on_change=lambda depth, running: seen.append((depth, running)))
    dispatcher.start()
    dispatcher.submit('a', 1)
    dispatcher.submit('b', 2)
    assert wait_for(lambda: (2, 1) in seen)
    release.set()
    assert wait_for(lambda: dispatcher.depth() == 0)
    dispatcher.stop(5)
    assert seen[-1] == (0, 0)
