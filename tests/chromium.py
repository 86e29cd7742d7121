# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Headless Chromium driven over the DevTools protocol: a small CDP client over a websocket (websocket-client).

Chromium starts with a new profile directory and ``--remote-debugging-port=0``; the port it picked is read from
``DevToolsActivePort`` in that directory, so nothing listens on a fixed port and only loopback is used. One page is
opened; ``load(path)`` waits for its load event, ``evaluate(js)`` returns the value of an expression, ``screenshot``
captures the whole page as PNG. Used by the report rendering tests and ``make screenshots``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', '--hide-scrollbars', '--force-device-scale-factor=1')


def find_chromium():
    """The Chromium binary (Debian's ``chromium``), or None."""
    for name in ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'):
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    pass


class Chromium:
    """``with Chromium() as browser: browser.load(path); browser.evaluate('1 + 1')``."""

    def __init__(self, binary=None, width=1200, height=900, timeout=60.0):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise CdpError('chromium is not installed (Debian package chromium; make setup installs it from bindep.txt)')
        self.width, self.height, self.timeout = width, height, timeout
        self.profile = None
        self.process = None
        self.socket = None
        self.session = None
        self.next_id = 0
        self.events = []

    # -- lifecycle
    def __enter__(self):
        # websocket-client is a test dependency (requirements-test.txt): imported only when a browser is used
        import websocket  # pylint: disable=import-outside-toplevel

        self.profile = tempfile.mkdtemp(prefix='ir-chromium-')
        command = [self.binary, *FLAGS, '--user-data-dir=%s' % self.profile, '--remote-debugging-address=127.0.0.1',
                   '--remote-debugging-port=0', '--window-size=%d,%d' % (self.width, self.height), 'about:blank']
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # pylint: disable=consider-using-with
        port_file = os.path.join(self.profile, 'DevToolsActivePort')
        deadline = time.monotonic() + self.timeout
        while True:
            if os.path.exists(port_file):
                with open(port_file, encoding='utf-8') as handle:
                    lines = handle.read().split()
                if len(lines) >= 2:
                    break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise CdpError('chromium did not open its DevTools port (exit code %s)' % self.process.returncode)
            time.sleep(0.05)
        self.socket = websocket.create_connection('ws://127.0.0.1:%s%s' % (lines[0], lines[1]), timeout=self.timeout,
                                                  suppress_origin=True)
        target = self.call('Target.createTarget', {'url': 'about:blank'}, session=False)['targetId']
        self.session = self.call('Target.attachToTarget', {'targetId': target, 'flatten': True}, session=False)['sessionId']
        self.call('Page.enable')
        self.call('Emulation.setDeviceMetricsOverride', {'width': self.width, 'height': self.height, 'deviceScaleFactor': 1,
                                                         'mobile': False})
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.socket is not None:
            try:
                self.call('Browser.close', session=False)
            except Exception:  # pylint: disable=broad-exception-caught
                pass
            self.socket.close()
            self.socket = None
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    # -- protocol
    def call(self, method, params=None, session=True):
        self.next_id += 1
        message = {'id': self.next_id, 'method': method, 'params': params or {}}
        if session and self.session:
            message['sessionId'] = self.session
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            answer = json.loads(self.socket.recv())
            if answer.get('id') == self.next_id:
                if 'error' in answer:
                    raise CdpError('%s: %s' % (method, answer['error'].get('message')))
                return answer.get('result', {})
            if 'method' in answer:
                self.events.append(answer)
        raise CdpError('%s: no answer in %.0f s' % (method, self.timeout))

    def wait_event(self, method):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for index, event in enumerate(self.events):
                if event['method'] == method:
                    return self.events.pop(index)
            answer = json.loads(self.socket.recv())
            if 'method' in answer:
                self.events.append(answer)
        raise CdpError('no %s in %.0f s' % (method, self.timeout))

    # -- page
    def load(self, path):
        """Open a local file and wait for its load event (and its fonts)."""
        self.events = []
        self.call('Page.navigate', {'url': 'file://%s' % os.path.abspath(path)})
        self.wait_event('Page.loadEventFired')
        self.evaluate('document.fonts.ready.then(() => true)', await_promise=True)

    def evaluate(self, expression, await_promise=False):
        result = self.call('Runtime.evaluate', {'expression': expression, 'returnByValue': True, 'awaitPromise': await_promise})
        if result.get('exceptionDetails'):
            raise CdpError('evaluate: %s' % result['exceptionDetails'].get('text'))
        return result['result'].get('value')

    def screenshot(self, path, full_page=True):
        """A PNG of the page (the whole document height when ``full_page``)."""
        height = self.evaluate('Math.ceil(document.documentElement.scrollHeight)') if full_page else self.height
        width = self.evaluate('Math.ceil(document.documentElement.scrollWidth)') if full_page else self.width
        data = self.call('Page.captureScreenshot', {'format': 'png', 'captureBeyondViewport': True,
                                                    'clip': {'x': 0, 'y': 0, 'width': width, 'height': height, 'scale': 1}})['data']
        with open(path, 'wb') as handle:
            handle.write(base64.b64decode(data))
        return path
