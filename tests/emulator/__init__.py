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
from tests.emulator.seed import add_pods, seed as seed_cluster
from tests.emulator.server import WRITE_VERBS, EmulatorCore, Fault

__all__ = ['Emulator', 'LogSource']


class Emulator:
    """A running emulator. Use :meth:`start`; stop it with :meth:`stop` or a ``with`` block."""

    def __init__(self, core: EmulatorCore) -> None:
        self._core = core
        self.kubeconfig: str | None = None

    @classmethod
    def start(cls, seed: bool = True, seed_dir: str | None = None, log_lines: int = 20,  # pylint: disable=too-many-arguments
              pod_logs: dict[tuple, str | bytes] | None = None, extra_pods: int = 0, host: str = '127.0.0.1', port: int = 0,
              log_bytes: int | None = None, pods: int = 0) -> 'Emulator':
        """Start serving on a free loopback port.

        ``pod_logs`` maps ``(namespace, pod, container)`` or ``(namespace, pod, container, previous)``
        to text; ``log_lines`` is the length of every other container's generated log;
        ``extra_pods`` (or its alias ``pods``) adds that many more pods to the slurm-exporter ReplicaSet
        and ``log_bytes`` makes every generated log that many bytes (benchmarks: one log built once
        and served to every container, so 1000 pods cost one log's memory).
        """
        core = EmulatorCore()
        core.state.default_lines = log_lines
        core.state.default_bytes = log_bytes
        if seed:
            seed_cluster(core.state, seed_dir, extra_pods or pods)
        emulator = cls(core)
        for key, text in (pod_logs or {}).items():
            emulator.set_pod_log(*key[:3], text, previous=bool(key[3]) if len(key) > 3 else False)
        core.serve(host, port)
        return emulator

    # -- connection ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self._core.url

    @property
    def token(self) -> str:
        """The bearer token the kubeconfig carries (every API request must present it)."""
        return self._core.token

    def write_kubeconfig(self, path: str, namespace: str = 'slurm-exporter') -> str:
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
    def requests(self) -> list[dict]:
        """Every request so far: method, path, query, namespace, resource, subresource, name, verb, status, dry_run, and
        client (the client's port: one per connection, so requests of one process over a kept-alive connection share it)."""
        with self._core.log_lock:
            return [dict(entry) for entry in self._core.log]

    def writes(self) -> list[dict]:
        """Requests that changed (or tried to change) the cluster: write verbs, not server-side dry runs."""
        return [entry for entry in self.requests if entry['verb'] in WRITE_VERBS and not entry['dry_run']]

    def clear_requests(self) -> None:
        """Forget the requests logged so far."""
        with self._core.log_lock:
            self._core.log.clear()

    # -- direct access ---------------------------------------------------------------------
    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        """The stored object (a copy), or None."""
        return self._core.state.find(api_version, kind, namespace, name)

    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        """Copies of the stored objects of a kind (in ``namespace``, matching ``label_selector``)."""
        items, _rv = self._core.state.list(self._core.state.resource_by_kind(api_version, kind), namespace, label_selector)
        return items

    def create(self, obj: dict) -> dict:
        """Create an object directly (no request logged)."""
        resource = self._core.state.resource_by_kind(obj['apiVersion'], obj['kind'])
        return self._core.state.create(resource, obj['metadata'].get('namespace'), copy.deepcopy(obj))

    def replace(self, obj: dict) -> dict:
        """Replace a stored object directly (no request logged; the controllers run as for an update)."""
        resource = self._core.state.resource_by_kind(obj['apiVersion'], obj['kind'])
        metadata = obj['metadata']
        return self._core.state.replace(resource, metadata.get('namespace'), metadata['name'], copy.deepcopy(obj))

    # -- behaviour -----------------------------------------------------------------------
    def add_fault(self, method: str | None = None, path_regex: str = '.*', status: int = 500,  # pylint: disable=too-many-arguments
                  times: int | None = None, delay: float | None = None, hang: bool = False, reason: str = 'InternalError',
                  message: str | None = None) -> Fault:
        """Fail matching requests: answer ``status`` with a Status body, after ``delay`` seconds, or hang.

        A hanging request holds its connection until the emulator stops (or ``delay`` seconds).
        ``times`` limits how many requests the fault hits; ``message`` is the Status message (say, an admission
        webhook's denial). Returns the Fault (``.hits`` counts them).
        """
        fault = Fault(method, path_regex, status if not hang else None, times, delay, hang, reason, message)
        with self._core.log_lock:
            self._core.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._core.log_lock:
            self._core.faults.clear()

    def set_pod_log(self, namespace: str, pod: str, container: str, text: str | bytes | None = None,  # pylint: disable=too-many-arguments
                    previous: bool = False, lines: int | None = None, size: int | None = None) -> None:
        """Set a container's log: exact ``text`` (str or bytes), or ``lines``/``size`` bytes generated lazily."""
        with self._core.state.lock:
            self._core.state.logs[(namespace, pod, container, previous)] = LogSource(text=text, lines=lines, size=size,
                                                                                     seed='%s/%s' % (pod, container))

    def set_unhealthy(self, namespace: str, deployment: str, unhealthy: bool = True) -> None:
        """Make the deployment's pods not ready (a rollout that never becomes available), or healthy again."""
        self._core.state.set_unhealthy(namespace, deployment, unhealthy)

    def add_pods(self, count: int, namespace: str = 'slurm-exporter', deployment: str = 'slurm-exporter') -> list[dict]:
        """``count`` more pods of the deployment's current ReplicaSet (its spec unchanged)."""
        return add_pods(self._core.state, count, namespace, deployment)

    def restart_container(self, namespace: str, pod: str, container: str) -> None:
        """Record one restart of the container: it then has a previous log."""
        self._core.state.restart_container(namespace, pod, container)

    # -- lifecycle ------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving (hanging requests are released) and close the socket."""
        self._core.shutdown()

    def __enter__(self) -> 'Emulator':
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
