# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A thin, streaming access to the Kubernetes API through the kubernetes client's own ApiClient.

Requests are serialised, authenticated and sent by the client library (so kubeconfig
handling, TLS and tokens behave as everywhere else); responses are read as raw JSON or
streamed in chunks, never deserialised into the client's model classes.
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.basic import env_fallback

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError, ValidationError

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException
    import urllib3
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as import_error:  # pragma: no cover - reported by the module
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = import_error

K8S_AUTH_ARGUMENT_SPEC = {
    'kubeconfig': {'type': 'path', 'fallback': (env_fallback, ['K8S_AUTH_KUBECONFIG'])},
    'context': {'type': 'str', 'fallback': (env_fallback, ['K8S_AUTH_CONTEXT'])},
    'host': {'type': 'str', 'fallback': (env_fallback, ['K8S_AUTH_HOST'])},
    'api_key': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['K8S_AUTH_API_KEY'])},
    'validate_certs': {'type': 'bool', 'default': True, 'aliases': ['verify_ssl'], 'fallback': (env_fallback, ['K8S_AUTH_VERIFY_SSL'])},
    'ca_cert': {'type': 'path', 'aliases': ['ssl_ca_cert'], 'fallback': (env_fallback, ['K8S_AUTH_SSL_CA_CERT'])},
    'request_timeout': {'type': 'float', 'default': 30.0},
}

DNS_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
DNS_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')


class KubernetesError(IncidentResponseError):
    """A failed API call: status (0 for no answer), reason and the request that failed."""

    def __init__(self, message, status=0, reason='', source=''):
        super().__init__(message, status=status, reason=reason, source=source)
        self.status = status
        self.reason = reason
        self.source = source


def validate_name(value, field, namespace=False):
    pattern = DNS_LABEL if namespace else DNS_SUBDOMAIN
    if not isinstance(value, str) or not pattern.match(value):
        raise ValidationError("%s: %r is not a valid Kubernetes %s" % (field, value, 'namespace name' if namespace else 'object name'))
    return value


class Kubernetes:
    """GETs (JSON or streamed) against one cluster."""

    def __init__(self, params):
        if not HAS_KUBERNETES:
            raise IncidentResponseError('the kubernetes Python library is required: %s' % KUBERNETES_IMPORT_ERROR)
        configuration = k8s_client.Configuration()
        try:
            if params.get('kubeconfig') or not params.get('host'):
                k8s_config.load_kube_config(config_file=params.get('kubeconfig'), context=params.get('context'),
                                            client_configuration=configuration)
        except (ConfigException, OSError) as exc:
            if not params.get('host') and not self._in_cluster(params, configuration):
                raise IncidentResponseError('cannot load the kubeconfig %s: %s' % (params.get('kubeconfig') or '(default)', exc)) from None
        if params.get('host'):
            configuration.host = params['host']
        if params.get('api_key'):
            configuration.api_key = {'BearerToken': 'Bearer %s' % params['api_key']}
        if params.get('ca_cert'):
            configuration.ssl_ca_cert = params['ca_cert']
        configuration.verify_ssl = params.get('validate_certs', True)
        # A refused connection is retried twice; a request that timed out is not (urllib3 would by default, making one
        # hung call cost four time-outs): it is recorded, and capture goes on.
        configuration.retries = urllib3.util.Retry(total=2, connect=2, read=0, redirect=0, status=0, backoff_factor=0.2)
        # One pooled connection per worker thread (the default, 5 per CPU, would make workers open and drop connections).
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, int(params.get('workers') or 0) + 2)
        self.timeout = params.get('request_timeout') or 30.0
        self.api = k8s_client.ApiClient(configuration)
        self.host = configuration.host
        self.successful_calls = 0  # answered requests other than /version: did anything reach the data?

    @staticmethod
    def _in_cluster(params, configuration):
        """Fall back to the pod's service account (AWX, EDA in a cluster) when no kubeconfig was named and none exists."""
        if params.get('kubeconfig') or params.get('context'):
            return False
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except ConfigException:
            return False
        return True

    def close(self):
        self.api.close()

    def _send(self, path, query=None, method='GET', accept='application/json', timeout=None, body=None):
        query_params = [(key, value) for key, value in (query or {}).items() if value is not None]
        headers = {'Accept': accept}
        if body is not None:
            headers['Content-Type'] = 'application/merge-patch+json' if method == 'PATCH' else 'application/json'
        request = self.api.param_serialize(method, path, query_params=query_params, header_params=headers, body=body,
                                           auth_settings=['BearerToken'])
        source = '%s %s' % (method, path)
        try:
            response = self.api.call_api(*request[:4], _request_timeout=timeout or self.timeout)
        except k8s_client.ApiException as exc:
            raise KubernetesError('%s: %s %s' % (source, exc.status, exc.reason), exc.status or 0, exc.reason or '', source) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = describe_failure(exc, timeout or self.timeout)
            raise KubernetesError('%s: no answer (%s)' % (source, reason), 0, reason, source) from None
        if response.status >= 400:
            raw = response.read()
            reason = response.reason or ''
            try:
                reason = json.loads(raw).get('message') or reason
            except (ValueError, AttributeError):
                pass
            raise KubernetesError('%s: %s %s' % (source, response.status, reason), response.status, reason, source)
        if path != '/version':
            self.successful_calls += 1
        return response, source

    def get_json(self, path, query=None):
        """``(document, source)`` for a GET."""
        response, source = self._send(path, query)
        try:
            return json.loads(response.read()), source
        except ValueError as exc:
            raise KubernetesError('%s: the answer is not JSON (%s)' % (source, exc), 0, 'invalid JSON', source) from None

    def stream(self, path, query=None, chunk_size=65536, method='GET', timeout=None):
        """``(chunks iterator, source)``: the body in chunks, for logs and other large answers."""
        response, source = self._send(path, query, method=method, accept='*/*', timeout=timeout)

        def chunks():
            try:
                yield from response.response.stream(chunk_size)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                reason = describe_failure(exc, timeout or self.timeout)
                raise KubernetesError('%s: the stream broke (%s)' % (source, reason), 0, reason, source) from None
            finally:
                response.response.release_conn()

        return chunks(), source

    def post_json(self, path, body=None):
        return self.request_json('POST', path, body)

    def request_json(self, method, path, body=None, query=None):
        """``(document, source)`` for a write (POST, PUT, PATCH with a JSON merge patch, DELETE)."""
        response, source = self._send(path, query, method=method, body=body)
        raw = response.read()
        try:
            return json.loads(raw or b'{}'), source
        except ValueError as exc:
            raise KubernetesError('%s: the answer is not JSON (%s)' % (source, exc), 0, 'invalid JSON', source) from None


def describe_failure(exc, timeout):
    """A short reason for a request that got no (complete) answer: time-out, refused connection, or the error's type."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError derives from urllib3's ConnectTimeoutError: test it first.
    if isinstance(exc, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)):
        return 'connection refused or unreachable'
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return 'timed out after %gs' % timeout
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return 'connection broken'
    return type(exc).__name__


def core_path(namespace, plural, name=None, sub=None):
    parts = ['/api/v1']
    if namespace:
        parts += ['namespaces', namespace]
    parts.append(plural)
    if name:
        parts.append(name)
    if sub:
        parts.append(sub)
    return '/'.join(parts)


def group_path(group_version, namespace, plural, name=None):
    parts = ['/apis', group_version]
    if namespace:
        parts += ['namespaces', namespace]
    parts.append(plural)
    if name:
        parts.append(name)
    return '/'.join(parts)
