# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An in-memory Kubernetes API served over real HTTP on a loopback port.

Clients (the kubernetes Python client, kubernetes.core modules run by ansible-playbook,
kubectl) reach it through a kubeconfig with a bearer token. It implements discovery,
CRUD with selectors, the patch flavours, server-side dry run, status and scale
subresources, pod logs, a Deployment -> ReplicaSet -> Pod controller with revisions,
a request log, and injectable faults (error codes, delays, hangs).
"""

from __future__ import annotations

import base64
import datetime
import hmac
import http.server
import json
import re
import secrets
import threading
import time
import urllib.parse

import yaml

from tests.emulator import resources as res
from tests.emulator.state import ApiError, ClusterState

WRITE_VERBS = ('create', 'update', 'patch', 'delete', 'deletecollection')
MAX_BODY = 8 * 1024 * 1024


class Fault:  # pylint: disable=too-few-public-methods
    """An injected failure for requests whose method and path match."""

    def __init__(self, method, path_regex, status, times, delay, hang, reason, message=None):  # pylint: disable=too-many-arguments
        self.method = method.upper() if method else None
        self.pattern = re.compile(path_regex)
        self.status = status
        self.times = times
        self.delay = delay
        self.hang = hang
        self.reason = reason
        self.message = message
        self.hits = 0

    def matches(self, method, path):
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.method is None or self.method == method) and bool(self.pattern.search(path))


class Handler(http.server.BaseHTTPRequestHandler):
    """One request; the emulator is ``self.server.emulator``."""

    protocol_version = 'HTTP/1.1'
    # TCP_NODELAY: headers and body are two writes; with Nagle's algorithm the second waits for the client's
    # delayed ACK, 40 ms on every keep-alive request.
    disable_nagle_algorithm = True
    server_version = 'kube-emulator/1.0'
    # The request being answered (set by _handle); an answer outside it (send_error on a bad request line) is not logged.
    _entry, _recorded = None, True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet: the request log is kept in memory instead."""

    # -- plumbing ------------------------------------------------------------------------
    def _send_json(self, code, document):
        return self._send_bytes(code, json.dumps(document).encode())

    def _send_bytes(self, code, body):
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)
        return code

    def _read_body(self):
        length = int(self.headers.get('Content-Length') or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, 'RequestEntityTooLarge', 'request body too large')
        raw = self.rfile.read(length) if length else b''
        if not raw:
            return None
        content_type = self.headers.get('Content-Type', 'application/json')
        try:
            if 'yaml' in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, 'BadRequest', 'cannot decode the request body: %s' % exc) from None

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        self._handle()

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        self._handle()

    def do_PUT(self):  # noqa: N802  pylint: disable=invalid-name
        self._handle()

    def do_PATCH(self):  # noqa: N802  pylint: disable=invalid-name
        self._handle()

    def do_DELETE(self):  # noqa: N802  pylint: disable=invalid-name
        self._handle()

    # -- dispatch --------------------------------------------------------------------------
    def _handle(self):
        emulator = self.server.emulator
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip('/') or '/'
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        entry = {'time': time.time(), 'method': self.command, 'path': path, 'query': query, 'namespace': None,
                 'resource': None, 'subresource': None, 'name': None, 'verb': None, 'status': None,
                 'dry_run': query.get('dryRun') == 'All', 'client': self.client_address[1]}
        self._entry, self._recorded = entry, False
        try:
            if path in ('/healthz', '/readyz', '/livez'):
                entry['status'] = self._plain(200, b'ok')
                return
            token = emulator.token.encode()
            header = self.headers.get('Authorization', '')
            given = header[7:].encode() if header.startswith('Bearer ') else b''
            if not hmac.compare_digest(given, token):
                self._read_body_quietly()
                raise ApiError(401, 'Unauthorized', 'Unauthorized')
            body = self._read_body() if self.command in ('POST', 'PUT', 'PATCH', 'DELETE') else None
            route = self._route(path, entry)
            fault = emulator.match_fault(self.command, path)
            if fault is not None:
                if fault.hang:
                    emulator.stopping.wait(fault.delay or 300)
                    self.close_connection = True
                    entry['status'] = 0
                    return
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status:
                    raise ApiError(fault.status, fault.reason, fault.message or 'injected fault: %s %s' % (self.command, path))
            entry['status'] = self._dispatch(route, query, body, entry)
        except ApiError as exc:
            entry['status'] = self._send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            entry['status'] = entry['status'] or 499
        except Exception as exc:  # pylint: disable=broad-exception-caught
            entry['status'] = self._send_json(500, ApiError(500, 'InternalError', 'emulator error: %r' % exc).status())
        finally:
            self._record(entry['status'])

    def send_response(self, code, message=None):
        """Every answer starts here: the request is logged first (``_record``)."""
        self._record(code)
        super().send_response(code, message)

    def _record(self, status):
        """Log this request once, with its status, before the client can read the answer.

        A client that reads the answer and then looks at (or clears) the log must find the request there.
        """
        if self._recorded:
            return
        self._recorded = True
        self._entry['status'] = status
        self.server.emulator.record(self._entry)

    def _read_body_quietly(self):
        length = int(self.headers.get('Content-Length') or 0)
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)

    def _plain(self, code, data, content_type='text/plain'):
        self.send_response(code)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return code

    def _route(self, path, entry):
        parts = path.strip('/').split('/')
        if path == '/version':
            return ('version',)
        if path == '/api':
            return ('api',)
        if path == '/apis':
            return ('apis',)
        if parts[0] == 'openapi':
            raise ApiError(404, 'NotFound', 'the emulator serves no OpenAPI document')
        if parts[0] == 'api' and len(parts) >= 2:
            group, version, rest = '', parts[1], parts[2:]
        elif parts[0] == 'apis' and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
        if not rest:
            return ('discovery', group, version)
        namespace = None
        state = self.server.emulator.state
        if rest[0] == 'namespaces' and len(rest) >= 3 and state.resource_by_path(group, version, rest[2]) is not None:
            namespace, rest = rest[1], rest[2:]
        resource = state.resource_by_path(group, version, rest[0])
        if resource is None:
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource (%s)' % path)
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource and subresource not in resource.subresources:
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource (%s)' % path)
        entry.update(namespace=namespace if namespace is not None else (name if resource.kind == 'Namespace' else None),
                     resource=resource.plural, subresource=subresource, name=name)
        return ('resource', resource, namespace, name, subresource)

    def _dispatch(self, route, query, body, entry):
        emulator = self.server.emulator
        state = emulator.state
        kind = route[0]
        if kind == 'version':
            return self._send_json(200, {'major': '1', 'minor': '30', 'gitVersion': 'v1.30.0-emulator', 'platform': 'linux/amd64'})
        if kind == 'api':
            return self._send_json(200, {'kind': 'APIVersions', 'versions': ['v1'], 'serverAddressByClientCIDRs': [
                {'clientCIDR': '0.0.0.0/0', 'serverAddress': emulator.url.split('//', 1)[1]}]})
        if kind == 'apis':
            return self._send_json(200, res.group_list(state.custom.values()))
        if kind == 'discovery':
            document = res.resource_list(route[1], route[2], state.custom.values())
            if document is None:
                raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
            return self._send_json(200, document)
        _kind, resource, namespace, name, subresource = route
        dry_run = query.get('dryRun') == 'All'
        method = self.command
        if method == 'GET':
            if name is None:
                entry['verb'] = 'watch' if query.get('watch') in ('true', '1') else 'list'
                if entry['verb'] == 'watch':
                    items, _revision = state.list(resource, namespace, query.get('labelSelector'), query.get('fieldSelector'))
                    return self._watch(items)
                return self._list(state, resource, namespace, query)
            entry['verb'] = 'get'
            if subresource == 'log':
                return self._log(state, namespace, name, query)
            obj = state.get(resource, namespace, name)
            if subresource == 'scale':
                return self._send_json(200, self._scale(obj))
            answer = self._as(state, resource, [obj], query, single=True)
            if answer is not None:
                return self._send_json(200, answer)
            return self._send_json(200, obj)
        if method == 'POST':
            entry['verb'] = 'create'
            return self._send_json(201, state.create(resource, namespace, body, dry_run))
        if method == 'PUT':
            entry['verb'] = 'update'
            if subresource == 'scale':
                return self._send_json(200, self._set_scale(state, resource, namespace, name, body, dry_run))
            return self._send_json(200, state.replace(resource, namespace, name, body, dry_run, subresource))
        if method == 'PATCH':
            entry['verb'] = 'patch'
            content_type = self.headers.get('Content-Type', 'application/merge-patch+json')
            if subresource == 'scale':
                return self._send_json(200, self._set_scale(state, resource, namespace, name, body, dry_run))
            return self._send_json(200, state.patch(resource, namespace, name, body, content_type, dry_run, subresource))
        if method == 'DELETE':
            if name is None:
                entry['verb'] = 'deletecollection'
                items = state.delete_collection(resource, namespace, query.get('labelSelector'), query.get('fieldSelector'), dry_run)
                return self._send_json(200, {'kind': resource.kind + 'List', 'apiVersion': res.api_version(resource),
                                             'metadata': {}, 'items': items})
            entry['verb'] = 'delete'
            preconditions = (body or {}).get('preconditions') or {} if isinstance(body, dict) else {}
            obj = state.delete(resource, namespace, name, dry_run, preconditions)
            if resource.kind in ('Pod', 'Namespace'):
                # Graceful deletion: the API server answers with the object (being deleted).
                return self._send_json(200, obj)
            found = {'name': name, 'kind': resource.plural, 'uid': obj['metadata'].get('uid')}
            if resource.group:
                found['group'] = resource.group
            return self._send_json(200, {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success', 'details': found})
        raise ApiError(405, 'MethodNotAllowed', 'method %s is not allowed' % method)

    def _wants(self):
        """The representation the client asked for: 'Table', 'PartialObjectMetadata' or None (the objects), from Accept."""
        accept = self.headers.get('Accept', '') or ''
        for part in accept.split(','):
            params = {}
            for item in part.split(';')[1:]:
                key, _sep, value = item.strip().partition('=')
                params[key] = value
            if params.get('g') == 'meta.k8s.io' and params.get('as') in ('Table', 'PartialObjectMetadata', 'PartialObjectMetadataList'):
                return params['as'].replace('List', '')
            media = part.split(';')[0].strip()
            if media in ('application/json', '*/*', 'application/*', ''):
                return None
        return None

    def _as(self, state, resource, objects, query, single=False, revision=None, more=None):
        """The Table or PartialObjectMetadata(List) answer the Accept header asks for, or None for the objects themselves."""
        wanted = self._wants()
        if wanted == 'Table':
            table = state.crd_table(resource, objects, query.get('includeObject') or 'Metadata')
            if table is None:
                return None  # only custom resources have a Table here; the client falls back to the objects
            if not single:
                table['metadata'] = {'resourceVersion': revision or table['metadata']['resourceVersion']}
                if more:
                    table['metadata']['continue'] = more
            return table
        if wanted == 'PartialObjectMetadata':
            items = [{'kind': 'PartialObjectMetadata', 'apiVersion': 'meta.k8s.io/v1', 'metadata': obj.get('metadata') or {}}
                     for obj in objects]
            if single:
                return items[0]
            metadata = {'resourceVersion': revision}
            if more:
                metadata['continue'] = more
            return {'kind': 'PartialObjectMetadataList', 'apiVersion': 'meta.k8s.io/v1', 'metadata': metadata, 'items': items}
        return None

    def _list(self, state, resource, namespace, query):
        """A list, paged by ``limit`` and ``continue`` (objects in namespace/name order), in the representation asked for."""
        limit = int(query['limit']) if (query.get('limit') or '').isdigit() and int(query['limit']) > 0 else None
        after = None
        if query.get('continue'):
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(query['continue'].encode()).decode()))
            except (ValueError, TypeError):
                raise ApiError(400, 'BadRequest', 'continue key is not valid: %s' % query['continue']) from None
        if limit is None and after is None and self._wants() is None:
            items, revision = state.list_json(resource, namespace, query.get('labelSelector'), query.get('fieldSelector'))
            more = None
        else:
            items, more_key, revision = state.page(resource, namespace, query.get('labelSelector'), query.get('fieldSelector'),
                                                   limit, after)
            more = base64.urlsafe_b64encode(json.dumps(list(more_key)).encode()).decode() if more_key else None
            answer = self._as(state, resource, [json.loads(item) for item in items], query, revision=revision, more=more)
            if answer is not None:
                return self._send_json(200, answer)
        metadata = {'resourceVersion': revision}
        if more:
            metadata['continue'] = more
        head = json.dumps({'kind': resource.kind + 'List', 'apiVersion': res.api_version(resource), 'metadata': metadata})
        return self._send_bytes(200, b''.join((head[:-1].encode(), b', "items": [', b', '.join(items), b']}')))

    @staticmethod
    def _scale(obj):
        return {'kind': 'Scale', 'apiVersion': 'autoscaling/v1',
                'metadata': {key: obj['metadata'][key] for key in ('name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp')},
                'spec': {'replicas': obj.get('spec', {}).get('replicas', 1)},
                'status': {'replicas': (obj.get('status') or {}).get('replicas', 0),
                           'selector': ','.join('%s=%s' % item for item in sorted(obj.get('spec', {}).get('selector', {}).get('matchLabels', {}).items()))}}

    def _set_scale(self, state, resource, namespace, name, body, dry_run):
        replicas = ((body or {}).get('spec') or {}).get('replicas')
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(422, 'Invalid', 'spec.replicas: must be a non-negative integer')
        obj = state.patch(resource, namespace, name, {'spec': {'replicas': replicas}}, 'application/merge-patch+json', dry_run)
        return self._scale(obj)

    def _log(self, state, namespace, name, query):
        pod = state.get(state.resource_by_path('', 'v1', 'pods'), namespace, name)
        containers = [container['name'] for container in pod.get('spec', {}).get('containers', [])]
        container = query.get('container')
        if not container:
            if len(containers) != 1:
                raise ApiError(400, 'BadRequest', 'a container name must be specified for pod %s, choose one of: %s' % (name, containers))
            container = containers[0]
        if container not in containers + [c['name'] for c in pod.get('spec', {}).get('initContainers', [])]:
            raise ApiError(400, 'BadRequest', 'container %s is not valid for pod %s' % (container, name))
        previous = query.get('previous') in ('true', '1')
        source = state.log_source(namespace, name, container, previous)
        if source is None:
            raise ApiError(400, 'BadRequest', 'previous terminated container "%s" in pod "%s" not found' % (container, name))
        since = None
        if query.get('sinceSeconds'):
            since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=int(query['sinceSeconds']))
        elif query.get('sinceTime'):
            since = datetime.datetime.fromisoformat(query['sinceTime'].replace('Z', '+00:00'))
        tail = int(query['tailLines']) if query.get('tailLines') else None
        limit = int(query['limitBytes']) if query.get('limitBytes') else None
        lines = source.lines(since=since, tail=tail, timestamps=query.get('timestamps') in ('true', '1'))
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        sent = 0
        buffer = []
        buffered = 0
        for line in lines:
            if limit is not None:
                if sent + buffered >= limit:
                    break
                line = line[:limit - sent - buffered]
            buffer.append(line)
            buffered += len(line)
            if buffered >= 65536:
                self._chunk(b''.join(buffer))
                sent += buffered
                buffer, buffered = [], 0
        if buffer:
            self._chunk(b''.join(buffer))
        self.wfile.write(b'0\r\n\r\n')
        return 200

    def _chunk(self, data):
        self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))

    def _watch(self, items):
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        for item in items:
            self._chunk(json.dumps({'type': 'ADDED', 'object': item}).encode() + b'\n')
        self.wfile.write(b'0\r\n\r\n')
        return 200


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, emulator, host='127.0.0.1', port=0):
        self.emulator = emulator
        super().__init__((host, port), Handler)


class EmulatorCore:
    """State, token, faults and request log; the public wrapper is tests.emulator.Emulator."""

    def __init__(self):
        self.state = ClusterState()
        self.token = secrets.token_hex(16)
        self.faults = []
        self.log = []
        self.log_lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = None
        self.thread = None
        self.url = None

    def serve(self, host='127.0.0.1', port=0):
        if not host.startswith('127.') and host not in ('localhost', '::1'):
            raise ValueError('the emulator only listens on loopback addresses, not %r' % host)
        self.server = Server(self, host, port)
        self.url = 'http://%s:%d' % (host, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1},
                                       name='kube-emulator', daemon=True)
        self.thread.start()

    def shutdown(self):
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def record(self, entry):
        with self.log_lock:
            self.log.append(entry)

    def match_fault(self, method, path):
        with self.log_lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None
