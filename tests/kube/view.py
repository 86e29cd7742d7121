# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulator's test-facing interface over the real control plane, so one test body can run against both.

A :class:`KubeView` is one user of the cluster (the admin, or a ServiceAccount token) with its own kubeconfig. Its
request log is read from the API server's audit log: every request that user made since :meth:`clear_requests`, in the
emulator's shape (method, path, query, namespace, resource, subresource, name, verb, status, dry_run).
"""

from __future__ import annotations

import urllib.parse

from tests.kube.cluster import ADMIN, WRITE_VERBS

METHODS = {'get': 'GET', 'list': 'GET', 'watch': 'GET', 'create': 'POST', 'update': 'PUT', 'patch': 'PATCH',
           'delete': 'DELETE', 'deletecollection': 'DELETE'}


def request_entry(event):
    """One audit event as an emulator request-log entry."""
    uri = urllib.parse.urlsplit(event['requestURI'])
    query = urllib.parse.parse_qs(uri.query)
    ref = event.get('objectRef') or {}
    return {
        'method': METHODS.get(event['verb'], event['verb'].upper()), 'path': uri.path, 'query': query,
        'namespace': ref.get('namespace'), 'resource': ref.get('resource'), 'subresource': ref.get('subresource'),
        'name': ref.get('name'), 'group': ref.get('apiGroup', ''), 'verb': event['verb'],
        'status': (event.get('responseStatus') or {}).get('code'), 'dry_run': 'All' in query.get('dryRun', []),
        'user': event['user']['username'], 'reason': (event.get('responseStatus') or {}).get('reason'),
        'message': (event.get('responseStatus') or {}).get('message'),
    }


class KubeView:
    """``url``, ``token``, ``kubeconfig``, ``get``/``list``/``create`` and the request log, as the emulator has them."""

    def __init__(self, cluster, kubeconfig, token=None, user=ADMIN):
        self.cluster = cluster
        self.kubeconfig = kubeconfig
        self.token = token or cluster.admin_token
        self.user = user
        self._mark = cluster.audit_mark()

    @property
    def url(self):
        return self.cluster.url

    # -- objects (always read and written as the admin) ------------------------------------------
    def get(self, api_version, kind, namespace, name):
        return self.cluster.get(api_version, kind, namespace, name)

    def list(self, api_version, kind, namespace=None, label_selector=None):
        return self.cluster.list(api_version, kind, namespace, label_selector)

    def create(self, obj):
        return self.cluster.create(obj)

    # -- the request log -------------------------------------------------------------------------
    @property
    def requests(self):
        """This user's requests since the last :meth:`clear_requests`, from the audit log."""
        return [request_entry(event) for event in self.cluster.audit_events(self._mark, user=self.user)]

    def writes(self):
        """Write requests (create/update/patch/delete), server-side dry runs excluded (as the emulator's)."""
        return [entry for entry in self.requests if entry['verb'] in WRITE_VERBS and not entry['dry_run']]

    def write_requests(self):
        """Every write request, dry runs included."""
        return [entry for entry in self.requests if entry['verb'] in WRITE_VERBS]

    def forbidden(self):
        """Requests the API server refused with 403."""
        return [entry for entry in self.requests if entry['status'] == 403]

    def clear_requests(self):
        self._mark = self.cluster.audit_mark()
