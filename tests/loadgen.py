# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile HTTP clients for the intake tests and benchmarks: slow (slowloris) and reconnecting sockets.

Loopback only (any 127.0.0.0/8 source address), every loop bounded in connects and seconds, in a child process
so that the attacker does not share the interpreter lock of the process under test.
"""

from __future__ import annotations

import multiprocessing
import socket
import time


class Attack:
    """Raw sockets against the port from ``sources``, in a child process (its own interpreter lock, as a real attacker),
    for at most ``seconds`` and ``max_connects`` connects.

    slow: each socket sends one byte of a request's headers every ``interval`` seconds (slowloris); a socket the
    launcher closed is opened again. reconnect: each socket sends the start of a request line, waits ``interval``
    seconds, is closed and opened again.
    """

    def __init__(self, port, sources, sockets, mode, seconds, interval=0.3, max_connects=20000):
        self.port, self.sources, self.count, self.mode = port, sources, sockets, mode
        self.seconds, self.interval, self.max_connects = seconds, interval, max_connects
        context = multiprocessing.get_context('fork')
        self.counter = context.Value('i', 0)
        self.stop_event = context.Event()
        self.process = context.Process(target=self._run, daemon=True)

    @property
    def connects(self):
        return self.counter.value

    def __enter__(self):
        self.process.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.process.join(self.seconds + 10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    def _open(self, number):
        if self.counter.value >= self.max_connects:
            return None
        self.counter.value += 1
        sock = socket.socket()
        sock.settimeout(0.5)
        try:
            sock.bind((self.sources[number % len(self.sources)], 0))
            sock.connect(('127.0.0.1', self.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            return None
        return sock

    def _run(self):
        deadline = time.monotonic() + self.seconds
        request = b'POST /webhook HTTP/1.1\r\nHost: launcher\r\nContent-Type: application/json\r\nX-Padding: ' + b'a' * 200
        sockets = [self._open(number) for number in range(self.count)]
        sent = [0] * self.count
        while time.monotonic() < deadline and not self.stop_event.is_set():
            if self.mode == 'reconnect':
                self.stop_event.wait(self.interval)
            for number in range(self.count):
                sock = sockets[number]
                if sock is None or self.mode == 'reconnect':
                    if sock is not None:
                        sock.close()
                    sockets[number], sent[number] = self._open(number), 0
                    if self.mode == 'reconnect' and sockets[number] is not None:
                        try:
                            sockets[number].send(request[:40])
                        except OSError:
                            pass
                    continue
                try:
                    sock.send(request[sent[number] % len(request):][:1])
                    sent[number] += 1
                except OSError:
                    sock.close()
                    sockets[number] = None
            if self.mode == 'slow':
                self.stop_event.wait(self.interval)
        for sock in sockets:
            if sock is not None:
                sock.close()
