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

import importlib.util
import json
import re

from ansible.module_utils.basic import env_fallback

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError, ValidationError

# The kubernetes package is imported when a client is made, not when this file is: importing it costs about half a
# CPU-second (its kubeconfig loader pulls in requests, oauthlib, yaml, pydantic...), and most modules of the collection
# import this file only through the incident store, which needs the client for the cluster store alone.
_MISSING = [name for name in ('kubernetes', 'urllib3') if importlib.util.find_spec(name) is None]
HAS_KUBERNETES = not _MISSING
KUBERNETES_IMPORT_ERROR = ImportError('No module named %r' % _MISSING[0]) if _MISSING else None

_LIBRARY = {}


def kubernetes_library():
    """The kubernetes client's ``client`` and ``config`` modules, its ``ConfigException``, ``urllib3`` and the bounded
    Retry class, imported (and made) once, on first use."""
    if not _LIBRARY:
        # pylint: disable-next=import-outside-toplevel
        import urllib3
        # pylint: disable-next=import-outside-toplevel
        from kubernetes import client, config
        # pylint: disable-next=import-outside-toplevel
        from kubernetes.config.config_exception import ConfigException

        class BoundedRetry(urllib3.util.Retry):
            """urllib3's Retry with Retry-After honoured up to MAX_RETRY_AFTER seconds (a server cannot stall a response)."""

            MAX_RETRY_AFTER = 30.0

            def get_retry_after(self, response):
                value = super().get_retry_after(response)
                return None if value is None else min(value, self.MAX_RETRY_AFTER)

        _LIBRARY.update(client=client, config=config, ConfigException=ConfigException, urllib3=urllib3, BoundedRetry=BoundedRetry)
    return _LIBRARY


K8S_AUTH_ARGUMENT_SPEC = {
    'kubeconfig': {'type': 'path', 'fallback': (env_fallback, ['K8S_AUTH_KUBECONFIG'])},
    'context': {'type': 'str', 'fallback': (env_fallback, ['K8S_AUTH_CONTEXT'])},
    'host': {'type': 'str', 'fallback': (env_fallback, ['K8S_AUTH_HOST'])},
    'api_key': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['K8S_AUTH_API_KEY'])},
    'validate_certs': {'type': 'bool', 'default': True, 'aliases': ['verify_ssl'], 'fallback': (env_fallback, ['K8S_AUTH_VERIFY_SSL'])},
    'ca_cert': {'type': 'path', 'aliases': ['ssl_ca_cert'], 'fallback': (env_fallback, ['K8S_AUTH_SSL_CA_CERT'])},
    'request_timeout': {'type': 'float', 'default': 30.0},
}

# Transient answers worth another attempt: rate limiting and server-side failures. urllib3 honours Retry-After on them.
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
RETRY_SPEC = {
    'type': 'dict',
    'default': {},
    'options': {
        'total': {'type': 'int', 'default': 4},
        'backoff_factor': {'type': 'float', 'default': 0.5},
        'backoff_max': {'type': 'float', 'default': 8.0},
    },
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

    def __init__(self, params, retry=None):
        """``retry``: None keeps the read-only default (refused connections twice, nothing else); a mapping
        ``{total, backoff_factor, backoff_max}`` retries every request on 429, 5xx, refused or reset connections
        and time-outs with bounded exponential backoff (honouring Retry-After) through urllib3's Retry. Only for
        callers whose writes are idempotent (module_utils/workload.py makes sure of it); every retry is logged in
        :attr:`retries`."""
        if not HAS_KUBERNETES:
            raise IncidentResponseError('the kubernetes Python library is required: %s' % KUBERNETES_IMPORT_ERROR)
        try:
            library = kubernetes_library()
        except ImportError as exc:
            raise IncidentResponseError('the kubernetes Python library cannot be imported: %s' % exc) from None
        self._api_exception = library['client'].ApiException
        self._transport_errors = (library['urllib3'].exceptions.HTTPError, OSError)
        self._max_retry_error = library['urllib3'].exceptions.MaxRetryError
        configuration = library['client'].Configuration()
        try:
            if params.get('kubeconfig') or not params.get('host'):
                library['config'].load_kube_config(config_file=params.get('kubeconfig'), context=params.get('context'),
                                                   client_configuration=configuration)
        except (library['ConfigException'], OSError) as exc:
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
        configuration.retries = retry_policy(retry)
        # One pooled connection per worker thread (the default, 5 per CPU, would make workers open and drop connections).
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, int(params.get('workers') or 0) + 2)
        self.timeout = params.get('request_timeout') or 30.0
        self.api = library['client'].ApiClient(configuration)
        self.host = configuration.host
        self.successful_calls = 0  # answered requests other than /version: did anything reach the data?
        # Every request that needed more than one attempt: {request, attempts, errors} (for the incident's timeline).
        self.retries = []
        self._retry = retry

    @staticmethod
    def _in_cluster(params, configuration):
        """Fall back to the pod's service account (AWX, EDA in a cluster) when no kubeconfig was named and none exists."""
        if params.get('kubeconfig') or params.get('context'):
            return False
        library = kubernetes_library()
        try:
            library['config'].load_incluster_config(client_configuration=configuration)
        except library['ConfigException']:
            return False
        return True

    def close(self):
        self.api.close()

    def _send(self, path, query=None, method='GET', accept='application/json', timeout=None, body=None, content_type=None):
        query_params = [(key, value) for key, value in (query or {}).items() if value is not None]
        headers = {'Accept': accept}
        if body is not None:
            headers['Content-Type'] = content_type or ('application/merge-patch+json' if method == 'PATCH' else 'application/json')
        request = self.api.param_serialize(method, path, query_params=query_params, header_params=headers, body=body,
                                           auth_settings=['BearerToken'])
        source = '%s %s' % (method, path)
        try:
            response = self.api.call_api(*request[:4], _request_timeout=timeout or self.timeout)
        except self._api_exception as exc:
            raise KubernetesError('%s: %s %s' % (source, exc.status, exc.reason), exc.status or 0, exc.reason or '', source) from None
        except self._transport_errors as exc:  # pylint: disable=catching-non-exception
            reason = describe_failure(exc, timeout or self.timeout)
            if self._retry is not None and isinstance(exc, self._max_retry_error):
                self.retries.append({'request': source, 'attempts': int(self._retry.get('total', 0)) + 1, 'errors': [reason],
                                     'outcome': 'no answer'})
                reason = '%s, after %d attempts' % (reason, int(self._retry.get('total', 0)) + 1)
            raise KubernetesError('%s: no answer (%s)' % (source, reason), 0, reason, source) from None
        self._note_retries(source, response)
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

    def _note_retries(self, source, response):
        history = getattr(getattr(getattr(response, 'response', None), 'retries', None), 'history', None) or ()
        if history:
            errors = [str(item.status) if item.status else describe_failure(item.error, self.timeout) if item.error else 'retry'
                      for item in history]
            self.retries.append({'request': source, 'attempts': len(history) + 1, 'errors': errors,
                                 'outcome': str(response.status)})

    def get_json(self, path, query=None, accept='application/json'):
        """``(document, source)`` for a GET (``accept``: another representation, such as a Table or metadata only)."""
        response, source = self._send(path, query, accept=accept)
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
            except self._transport_errors as exc:  # pylint: disable=catching-non-exception
                reason = describe_failure(exc, timeout or self.timeout)
                raise KubernetesError('%s: the stream broke (%s)' % (source, reason), 0, reason, source) from None
            finally:
                response.response.release_conn()

        return chunks(), source

    def post_json(self, path, body=None):
        return self.request_json('POST', path, body)

    def request_json(self, method, path, body=None, query=None, content_type=None):
        """``(document, source)`` for a write (POST, PUT, PATCH with a JSON merge patch unless ``content_type`` names
        another patch flavour, DELETE)."""
        response, source = self._send(path, query, method=method, body=body, content_type=content_type)
        raw = response.read()
        try:
            return json.loads(raw or b'{}'), source
        except ValueError as exc:
            raise KubernetesError('%s: the answer is not JSON (%s)' % (source, exc), 0, 'invalid JSON', source) from None


def retry_policy(retry=None):
    """The urllib3 Retry for a client: the read-only default, or the bounded policy for idempotent writes."""
    urllib3 = kubernetes_library()['urllib3']
    if retry is None:
        # A refused connection is retried twice; a request that timed out is not (urllib3 would by default, making one
        # hung call cost four time-outs): it is recorded, and capture goes on.
        return urllib3.util.Retry(total=2, connect=2, read=0, redirect=0, status=0, backoff_factor=0.2)
    total = retry.get('total', 4)
    backoff_factor = retry.get('backoff_factor', 0.5)
    backoff_max = retry.get('backoff_max', 8.0)
    if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= 20:
        raise ValidationError('retries.total: expected an integer from 0 to 20, got %r' % (total,))
    for name, value in (('backoff_factor', backoff_factor), ('backoff_max', backoff_max)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 300:
            raise ValidationError('retries.%s: expected a number of seconds from 0 to 300, got %r' % (name, value))
    bounded_retry = kubernetes_library()['BoundedRetry']
    policy = bounded_retry(total=total, connect=total, read=total, status=total, other=total, redirect=0,
                           allowed_methods=None, status_forcelist=TRANSIENT_STATUSES, backoff_factor=backoff_factor,
                           respect_retry_after_header=True, raise_on_status=False)
    # urllib3 >= 2 takes backoff_max as an argument; 1.26 as a class attribute (DEFAULT_BACKOFF_MAX).
    if hasattr(policy, 'backoff_max'):
        policy.backoff_max = backoff_max
    else:  # pragma: no cover - urllib3 1.26
        policy.DEFAULT_BACKOFF_MAX = backoff_max
    return policy


def describe_failure(exc, timeout):
    """A short reason for a request that got no (complete) answer: time-out, refused connection, or the error's type."""
    urllib3 = kubernetes_library()['urllib3']
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
