# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An in-memory Kubernetes API emulator for the collection's tests, benchmarks and demo.

    from tests.emulator import Emulator
    with Emulator.start() as emu:                 # 127.0.0.1:<free port>, seeded from the slurm-exporter manifests
        kubeconfig = emu.write_kubeconfig('/tmp/kubeconfig')
        ...                                       # run ansible-playbook with K8S_AUTH_KUBECONFIG=kubeconfig
        assert not emu.writes()                   # the request log: which writes were made, where

See tests/emulator/README.md.
"""

from __future__ import annotations

import copy
import os

import yaml

from tests.emulator.logs import LogSource
from tests.emulator.resources import BY_KIND
from tests.emulator.seed import add_pods, seed as seed_cluster
from tests.emulator.server import WRITE_VERBS, EmulatorCore, Fault

__all__ = ['Emulator', 'LogSource']


class Emulator:
    """A running emulator. Use :meth:`start`; stop it with :meth:`stop` or a ``with`` block."""

    def __init__(self, core):
        self._core = core
        self.kubeconfig = None

    @classmethod
    def start(cls, seed=True, seed_dir=None, log_lines=20, pod_logs=None, extra_pods=0, host='127.0.0.1', port=0,
              log_bytes=None):
        """Start serving on a free loopback port.

        ``pod_logs`` maps ``(namespace, pod, container)`` or ``(namespace, pod, container, previous)``
        to text; ``log_lines`` is the length of every other container's generated log;
        ``extra_pods`` adds that many more pods to the slurm-exporter ReplicaSet and ``log_bytes``
        makes every generated log that many bytes (benchmarks; generated lazily, not stored).
        """
        core = EmulatorCore()
        core.state.default_lines = log_lines
        core.state.default_bytes = log_bytes
        if seed:
            seed_cluster(core.state, seed_dir, extra_pods)
        emulator = cls(core)
        for key, text in (pod_logs or {}).items():
            emulator.set_pod_log(*key[:3], text, previous=bool(key[3]) if len(key) > 3 else False)
        core.serve(host, port)
        return emulator

    # -- connection ----------------------------------------------------------------------
    @property
    def url(self):
        return self._core.url

    @property
    def token(self):
        return self._core.token

    def write_kubeconfig(self, path, namespace='slurm-exporter'):
        """A kubeconfig (context ``emulator``, bearer token) pointing at this emulator; returns ``path``."""
        config = {
            'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'emulator', 'preferences': {},
            'clusters': [{'name': 'emulator', 'cluster': {'server': self.url}}],
            'users': [{'name': 'responder', 'user': {'token': self.token}}],
            'contexts': [{'name': 'emulator', 'context': {'cluster': 'emulator', 'user': 'responder', 'namespace': namespace}}],
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(config, handle, sort_keys=False)
        self.kubeconfig = path
        return path

    # -- the request log -----------------------------------------------------------------
    @property
    def requests(self):
        """Every request so far: method, path, query, namespace, resource, subresource, name, verb, status, dry_run."""
        with self._core.log_lock:
            return [dict(entry) for entry in self._core.log]

    def writes(self):
        """Requests that changed (or tried to change) the cluster: write verbs, not server-side dry runs."""
        return [entry for entry in self.requests if entry['verb'] in WRITE_VERBS and not entry['dry_run']]

    def clear_requests(self):
        with self._core.log_lock:
            self._core.log.clear()

    # -- direct access ---------------------------------------------------------------------
    def get(self, api_version, kind, namespace, name):
        """The stored object (a copy), or None."""
        return self._core.state.find(api_version, kind, namespace, name)

    def list(self, api_version, kind, namespace=None, label_selector=None):
        items, _rv = self._core.state.list(BY_KIND[(api_version, kind)], namespace, label_selector)
        return items

    def create(self, obj):
        """Create an object directly (no request logged)."""
        resource = BY_KIND[(obj['apiVersion'], obj['kind'])]
        return self._core.state.create(resource, obj['metadata'].get('namespace'), copy.deepcopy(obj))

    # -- behaviour -----------------------------------------------------------------------
    def add_fault(self, method=None, path_regex='.*', status=500, times=None, delay=None, hang=False, reason='InternalError'):
        """Fail matching requests: answer ``status`` with a Status body, after ``delay`` seconds, or hang.

        A hanging request holds its connection until the emulator stops (or ``delay`` seconds).
        ``times`` limits how many requests the fault hits. Returns the Fault (``.hits`` counts them).
        """
        fault = Fault(method, path_regex, status if not hang else None, times, delay, hang, reason)
        with self._core.log_lock:
            self._core.faults.append(fault)
        return fault

    def clear_faults(self):
        with self._core.log_lock:
            self._core.faults.clear()

    def set_pod_log(self, namespace, pod, container, text=None, previous=False, lines=None, size=None):
        """Set a container's log: exact ``text`` (str or bytes), or ``lines``/``size`` bytes generated lazily."""
        with self._core.state.lock:
            self._core.state.logs[(namespace, pod, container, previous)] = LogSource(text=text, lines=lines, size=size,
                                                                                     seed='%s/%s' % (pod, container))

    def set_unhealthy(self, namespace, deployment, unhealthy=True):
        """Make the deployment's pods not ready (a rollout that never becomes available), or healthy again."""
        self._core.state.set_unhealthy(namespace, deployment, unhealthy)

    def add_pods(self, count, namespace='slurm-exporter', deployment='slurm-exporter'):
        return add_pods(self._core.state, count, namespace, deployment)

    def restart_container(self, namespace, pod, container):
        self._core.state.restart_container(namespace, pod, container)

    # -- lifecycle ------------------------------------------------------------------------
    def stop(self):
        self._core.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()
