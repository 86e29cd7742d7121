# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one place that turns the store settings into a store: the file store (default) or the kubernetes store.

Every path that reads or writes incidents goes through :func:`open_store` with the same settings: the modules
(module.py, the ``store*`` options of the ``slurm_exporter.incident_response.store`` doc fragment), the launcher
(its ``incident_store`` and ``store`` keys) and the migration (:func:`copy_store`).

Settings: ``{'backend': 'file'|'kubernetes', 'path': <directory>, 'namespace': <namespace>,
'kubernetes': {kubeconfig, context, host, api_key, validate_certs, ca_cert, request_timeout}, 'lock_timeout': <s>}``.
``path`` is the store directory of the file backend, and with the kubernetes backend the local directory of
evidence bundles, reports and the notification outbox (files, on the machine that runs the task).
"""

from __future__ import annotations

import threading

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError, ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import Kubernetes
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.kubestore import (
    DEFAULT_NAMESPACE, RETRIES, KubernetesStore, connection_params)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import (
    DEFAULT_STORE, IncidentStore, record_digest)

BACKENDS = ('file', 'kubernetes')
CONNECTION_KEYS = ('kubeconfig', 'context', 'host', 'api_key', 'validate_certs', 'ca_cert', 'request_timeout')


def settings(backend='file', path=DEFAULT_STORE, namespace=DEFAULT_NAMESPACE, kubernetes=None, lock_timeout=30.0):
    """Validated store settings."""
    if backend not in BACKENDS:
        raise ValidationError('store_backend: expected file or kubernetes, got %r' % (backend,))
    if not isinstance(path, str) or not path:
        raise ValidationError('store: expected a directory path, got %r' % (path,))
    kubernetes = dict(kubernetes or {})
    unknown = sorted(set(kubernetes) - set(CONNECTION_KEYS))
    if unknown:
        raise ValidationError('store_kubernetes: unknown key(s) %s; known: %s' % (', '.join(unknown), ', '.join(CONNECTION_KEYS)))
    if not isinstance(lock_timeout, (int, float)) or isinstance(lock_timeout, bool) or lock_timeout <= 0:
        raise ValidationError('lock_timeout: must be greater than zero')
    return {'backend': backend, 'path': path, 'namespace': namespace or DEFAULT_NAMESPACE,
            'kubernetes': {key: value for key, value in kubernetes.items() if value is not None}, 'lock_timeout': float(lock_timeout)}


def from_params(params):
    """Store settings from a module's parameters (module.STORE_ARGUMENT_SPEC)."""
    return settings(params.get('store_backend') or 'file', params['store'], params.get('store_namespace'),
                    params.get('store_kubernetes'), params['lock_timeout'])


def describe(config):
    """Where the incidents are, for messages: a directory or kubernetes://<namespace>."""
    return config['path'] if config['backend'] == 'file' else 'kubernetes://%s' % config['namespace']


def open_store(config, read_only=False, kube=None):
    """The store of ``config`` (see :func:`settings`); ``kube``: a shared API client for the kubernetes store."""
    if config['backend'] == 'kubernetes':
        return KubernetesStore(config['path'], config['namespace'], config['kubernetes'], config['lock_timeout'], read_only, kube=kube)
    return IncidentStore(config['path'], config['lock_timeout'], read_only=read_only)


class StoreFactory:  # pylint: disable=too-few-public-methods
    """Stores for a long-running process (the launcher): one per operation, sharing one API client (thread-safe)."""

    def __init__(self, config):
        self.config = config
        self._kube = None
        self._lock = threading.Lock()

    def __call__(self, read_only=False):
        if self.config['backend'] != 'kubernetes':
            return open_store(self.config, read_only)
        return open_store(self.config, read_only, kube=self.client())

    def client(self):
        """The shared Kubernetes API client of the kubernetes store (its connection settings)."""
        with self._lock:
            if self._kube is None:
                try:
                    self._kube = Kubernetes(connection_params(self.config['kubernetes']), retry=RETRIES)
                except IncidentResponseError as exc:
                    raise ValidationError('store kubernetes://%s: cannot reach the Kubernetes API: %s'
                                          % (self.config['namespace'], exc.message)) from None
            return self._kube

    @property
    def location(self):
        return describe(self.config)

    def close(self):
        if self._kube is not None:
            self._kube.close()
            self._kube = None


def copy_store(source, destination, overwrite=False, check_mode=False, ids=None):
    """Copy every record (and its audit trail) of store ``source`` into store ``destination``, then read each one back
    from the destination and compare its SHA-256 (module_utils/store.py record_digest) with the source's.

    Returns ``{'copied': [...], 'unchanged': [...], 'replaced': [...], 'invalid': [...], 'digests': {id: sha256}}``;
    raises StoreError when a record is different in the destination (without ``overwrite``) or when a copy does not
    read back identical. ``ids`` limits the copy to those incidents. In check mode nothing is written: the result says
    what would be copied.
    """
    result = {'copied': [], 'unchanged': [], 'replaced': [], 'invalid': [], 'digests': {}}
    wanted = set(ids) if ids else None
    for record, error in source.records():
        if record is None:
            result['invalid'].append(error)
            continue
        if wanted is not None and record['id'] not in wanted:
            continue
        digest = record_digest(record)
        result['digests'][record['id']] = digest
        if check_mode:
            try:
                existing = destination.read(record['id'])
            except IncidentResponseError:
                existing = None
            if existing is None:
                result['copied'].append(record['id'])
            elif record_digest(existing) == digest:
                result['unchanged'].append(record['id'])
            elif overwrite:
                result['replaced'].append(record['id'])
            else:
                raise ValidationError('incident %s exists in %s with other content; nothing would be copied (overwrite replaces it)'
                                      % (record['id'], destination.location))
            continue
        outcome = destination.import_record(record, source.audit_entries(record['id']), overwrite=overwrite)
        result[{'created': 'copied', 'unchanged': 'unchanged', 'replaced': 'replaced'}[outcome]].append(record['id'])
        copied = record_digest(destination.read(record['id']))
        if copied != digest:
            raise ValidationError('incident %s reads back from %s with SHA-256 %s, not %s as in %s: the copy is not exact'
                                  % (record['id'], destination.location, copied, digest, source.location))
    return result
