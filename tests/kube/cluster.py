# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.

    from tests.kube.cluster import Cluster
    with Cluster.start() as cluster:                  # free loopback ports, a fresh CA, keys and tokens
        cluster.seed()                                # the slurm-exporter manifests; kwok runs the pods
        cluster.kubeconfig                            # admin (system:masters), context namespace slurm-exporter
        token = cluster.service_account_token('incident-response', 'incident-response')   # TokenRequest API
        mark = cluster.audit_mark()
        ...                                           # ansible-playbook with K8S_AUTH_KUBECONFIG
        cluster.audit_events(mark)                    # what the API server recorded since the mark

The API server runs with ``--authorization-mode=Node,RBAC``, Pod Security admission, a static token file (an admin
in system:masters; the controller manager and the scheduler as their bootstrap users), service-account signing keys,
and an audit log whose policy records every request (writes with their request body, Secrets' at metadata level
only), so a test can prove what was written, dry run or not. kwok makes the nodes Ready and the pods Running and
serves pod logs (CRI-format files under ``<workdir>/logs``) to the API server as a kubelet would.

Every process is started in a session of its own; :meth:`Cluster.stop` (also at interpreter exit) ends exactly
those process groups, and ``python -m tests.kube down DIR`` ends the ones listed in ``DIR/pids.json`` after checking
that each PID still runs a binary of the build.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import datetime
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests
import yaml

from tests.emulator.seed import corrected, load_documents
from tests.kube import build
from tests.kube.pki import Pki

LOG = logging.getLogger(__name__)
HOST = '127.0.0.1'
NAMESPACE = 'slurm-exporter'
NODES = ('kwok-node-a', 'kwok-node-b')
SERVICE_CIDR = '10.96.0.0/16'
NODE_CAPACITY = {'cpu': '32', 'memory': '128Gi', 'ephemeral-storage': '500Gi', 'pods': '110'}
# Seeding order: what the Deployment's pods need (service account, secrets, config, quota defaults) before it.
SEED_ORDER = ('Namespace', 'ResourceQuota', 'LimitRange', 'ServiceAccount', 'Secret', 'ConfigMap')
ISSUER = 'https://kubernetes.default.svc.cluster.local'
ADMIN = 'admin'
WRITE_VERBS = frozenset(('create', 'update', 'patch', 'delete', 'deletecollection'))

# Every request is recorded: writes with their body (so a dry run, ?dryRun=All in requestURI, and the object
# written can be told apart), Secrets and token requests at metadata level only (no secret value on disk), reads at
# metadata level. The control plane's own chatter (its reads and watches, node and leader Leases) is left out; the
# response's own Leases are recorded like any other request.
AUDIT_POLICY = {
    'apiVersion': 'audit.k8s.io/v1', 'kind': 'Policy', 'omitStages': ['RequestReceived'],
    'rules': [
        {'level': 'None', 'users': ['kwok', 'system:kube-scheduler', 'system:kube-controller-manager', 'system:apiserver'],
         'verbs': ['get', 'list', 'watch']},
        {'level': 'None', 'users': ['kwok', 'system:kube-scheduler', 'system:kube-controller-manager', 'system:apiserver'],
         'resources': [{'group': 'coordination.k8s.io', 'resources': ['leases']}]},
        {'level': 'None', 'namespaces': ['kube-node-lease']},
        {'level': 'None', 'nonResourceURLs': ['/healthz*', '/readyz*', '/livez*', '/version']},
        {'level': 'Metadata', 'resources': [{'group': '', 'resources': ['secrets', 'serviceaccounts/token']}]},
        {'level': 'Request', 'verbs': sorted(WRITE_VERBS)},
        {'level': 'Metadata'},
    ],
}

# What monitoring.coreos.com/v1 PrometheusRule needs to be served (the deploy role installs one); the schema is left
# open, as the Prometheus operator's own CRD validates only the shape the rules have anyway.
PROMETHEUS_RULE_CRD = {
    'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
    'metadata': {'name': 'prometheusrules.monitoring.coreos.com'},
    'spec': {'group': 'monitoring.coreos.com', 'scope': 'Namespaced',
             'names': {'kind': 'PrometheusRule', 'listKind': 'PrometheusRuleList', 'plural': 'prometheusrules',
                       'singular': 'prometheusrule', 'shortNames': ['promrule']},
             'versions': [{'name': 'v1', 'served': True, 'storage': True,
                           'schema': {'openAPIV3Schema': {'type': 'object', 'properties': {
                               'spec': {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True}}}}}]},
}


class ClusterError(Exception):
    """The control plane could not be started or did not answer as expected."""


class ApiError(ClusterError):
    """An API request answered with an error status; ``status`` and ``body`` (the Status object) are kept."""

    def __init__(self, method, path, status, body):
        self.status = status
        self.body = body
        message = body.get('message') if isinstance(body, dict) else body
        super().__init__('%s %s: %s %s' % (method, path, status, message))


def free_port(host=HOST):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _write(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w', encoding='utf-8') as handle:
        handle.write(text)
    return path


def cri_log(lines, start=None, step=1.0):
    """Container log lines in the CRI file format kwok serves (``<RFC3339Nano> stdout F <line>``)."""
    start = start or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=len(lines) * step)
    out = []
    for index, line in enumerate(lines):
        moment = start + datetime.timedelta(seconds=index * step)
        out.append('%s stdout F %s\n' % (moment.strftime('%Y-%m-%dT%H:%M:%S.%f000Z'), line))
    return ''.join(out)


def exporter_log_lines(count=20, seed='slurm-exporter'):
    """JSON lines like the exporter's own log (level, msg, collector, duration), some warnings and an error."""
    lines = []
    collectors = ('jobs', 'nodes', 'partitions', 'qos', 'reservations')
    for index in range(count):
        level = 'error' if index % 13 == 12 else 'warn' if index % 7 == 6 else 'info'
        message = {'error': 'collection failed: context deadline exceeded', 'warn': 'slow collection'}.get(level, 'collected')
        lines.append(json.dumps({'level': level, 'msg': message, 'collector': collectors[index % len(collectors)],
                                 'duration': '%dms' % (10 + (index * 37 + len(seed)) % 900), 'source': seed},
                                sort_keys=True))
    return lines


class Cluster:  # pylint: disable=too-many-instance-attributes
    """A running control plane. Use :meth:`start`; stop it with :meth:`stop` or a ``with`` block."""

    def __init__(self, workdir, bin_dir, stages, owns_workdir, out):  # pylint: disable=too-many-arguments
        self.workdir = workdir
        self.bin_dir = bin_dir
        self.stages = stages
        self.owns_workdir = owns_workdir
        self.out = out
        self.processes = {}
        self.ports = {}
        self.admin_token = secrets.token_hex(24)
        self.kubeconfig = os.path.join(workdir, 'kubeconfig')
        self.audit_log = os.path.join(workdir, 'audit.log')
        self.logs_dir = os.path.join(workdir, 'logs')
        self.pki = None
        self.session = None
        self.started_seconds = None
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    def start(cls, workdir=None, bin_dir=None, out=None, nodes=NODES):
        """Build (or reuse) the binaries, start every component on free loopback ports, wait until ready."""
        out = out or sys.stderr
        bin_dir = bin_dir or build.ensure_binaries(out=out)
        owns = workdir is None
        workdir = workdir or tempfile.mkdtemp(prefix='slurm-ir-kube-')
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        cluster = cls(os.path.abspath(workdir), bin_dir, build.stages_file(), owns, out)
        atexit.register(cluster.stop)
        began = time.monotonic()
        try:
            cluster._start(nodes)
        except BaseException:
            cluster.stop()
            raise
        cluster.started_seconds = round(time.monotonic() - began, 1)
        return cluster

    def _start(self, nodes):
        os.makedirs(self.logs_dir, exist_ok=True)
        self.pki = Pki(os.path.join(self.workdir, 'pki'), HOST)
        for name in ('etcd-client', 'etcd-peer', 'apiserver', 'controller-manager', 'scheduler', 'kwok-server', 'kwok-node'):
            self.ports[name] = free_port()
        tokens = {name: secrets.token_hex(24) for name in ('kube-controller-manager', 'kube-scheduler', 'kwok')}
        _write(self.path('tokens.csv'), ''.join([
            '%s,%s,%s,"system:masters"\n' % (self.admin_token, ADMIN, 'uid-admin'),
            '%s,system:kube-controller-manager,uid-kcm\n' % tokens['kube-controller-manager'],
            '%s,system:kube-scheduler,uid-scheduler\n' % tokens['kube-scheduler'],
            '%s,kwok,uid-kwok,"system:masters"\n' % tokens['kwok']]))
        _write(self.path('audit-policy.yaml'), yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
        self.write_kubeconfig(self.kubeconfig)
        for name, token in tokens.items():
            self.write_kubeconfig(self.path('%s.kubeconfig' % name), token=token, user=name)
        self.session = requests.Session()
        self.session.headers['Authorization'] = 'Bearer %s' % self.admin_token

        self._spawn('etcd', [
            '--name', 'default', '--data-dir', self.path('etcd'),
            '--listen-client-urls', self.etcd_url, '--advertise-client-urls', self.etcd_url,
            '--listen-peer-urls', 'http://%s:%d' % (HOST, self.ports['etcd-peer']),
            '--initial-advertise-peer-urls', 'http://%s:%d' % (HOST, self.ports['etcd-peer']),
            '--initial-cluster', 'default=http://%s:%d' % (HOST, self.ports['etcd-peer']),
            '--unsafe-no-fsync', '--log-level', 'warn', '--quota-backend-bytes', str(2 << 30)])
        self._wait('etcd', lambda: requests.get(self.etcd_url + '/health', timeout=2).json().get('health') == 'true', 60)

        self._spawn('kube-apiserver', [
            '--etcd-servers', self.etcd_url, '--bind-address', HOST, '--advertise-address', HOST,
            '--secure-port', str(self.ports['apiserver']), '--tls-cert-file', self.pki.apiserver_cert,
            '--tls-private-key-file', self.pki.apiserver_key, '--client-ca-file', self.pki.ca_cert,
            '--token-auth-file', self.path('tokens.csv'), '--authorization-mode', 'Node,RBAC',
            '--enable-admission-plugins', 'NodeRestriction,PodSecurity',
            '--service-account-issuer', ISSUER, '--service-account-key-file', self.pki.sa_pub,
            '--service-account-signing-key-file', self.pki.sa_key, '--api-audiences', ISSUER,
            '--service-cluster-ip-range', SERVICE_CIDR, '--endpoint-reconciler-type', 'none',
            '--kubelet-certificate-authority', self.pki.ca_cert, '--kubelet-client-certificate', self.pki.kubelet_client_cert,
            '--kubelet-client-key', self.pki.kubelet_client_key, '--kubelet-preferred-address-types', 'InternalIP',
            '--audit-policy-file', self.path('audit-policy.yaml'), '--audit-log-path', self.audit_log,
            '--audit-log-format', 'json', '--audit-log-mode', 'blocking', '--audit-log-maxsize', '0',
            '--profiling=false', '--v', '1'])
        self._wait('kube-apiserver', lambda: self.request('GET', '/readyz', timeout=5).status_code == 200, 180)

        self._spawn('kube-controller-manager', [
            '--kubeconfig', self.path('kube-controller-manager.kubeconfig'),
            '--authentication-kubeconfig', self.path('kube-controller-manager.kubeconfig'),
            '--authorization-kubeconfig', self.path('kube-controller-manager.kubeconfig'),
            '--bind-address', HOST, '--secure-port', str(self.ports['controller-manager']),
            '--service-account-private-key-file', self.pki.sa_key, '--root-ca-file', self.pki.ca_cert,
            '--use-service-account-credentials', '--leader-elect=false', '--service-cluster-ip-range', SERVICE_CIDR,
            '--concurrent-deployment-syncs', '5', '--horizontal-pod-autoscaler-sync-period', '15s', '--v', '1'])
        self._spawn('kube-scheduler', [
            '--kubeconfig', self.path('kube-scheduler.kubeconfig'),
            '--authentication-kubeconfig', self.path('kube-scheduler.kubeconfig'),
            '--authorization-kubeconfig', self.path('kube-scheduler.kubeconfig'),
            '--bind-address', HOST, '--secure-port', str(self.ports['scheduler']), '--leader-elect=false', '--v', '1'])

        self.create(PROMETHEUS_RULE_CRD)
        config = self.path('kwok.yaml')
        with open(self.stages, encoding='utf-8') as handle:
            stages = handle.read()
        self.set_default_log(exporter_log_lines(20))
        logs = {'apiVersion': 'kwok.x-k8s.io/v1alpha1', 'kind': 'ClusterLogs', 'metadata': {'name': 'every-pod'},
                'spec': {'logs': [{'logsFile': os.path.join(self.logs_dir, 'default.log'),
                                   'previousLogsFile': os.path.join(self.logs_dir, 'default-previous.log')}]}}
        _write(config, stages + '\n---\n' + yaml.safe_dump(logs, sort_keys=False))
        self._spawn('kwok', [
            '--kubeconfig', self.path('kwok.kubeconfig'), '--config', config,
            '--manage-nodes-with-annotation-selector', 'kwok.x-k8s.io/node=fake',
            '--node-ip', HOST, '--node-port', str(self.ports['kwok-node']),
            '--server-address', '%s:%d' % (HOST, self.ports['kwok-node']),
            '--tls-cert-file', self.pki.kwok_cert, '--tls-private-key-file', self.pki.kwok_key,
            '--node-lease-duration-seconds', '40', '--cidr', '10.244.0.0/16'])
        for name in nodes:
            self.create(self.node(name))
            # What kwok would default to has no ephemeral storage, which the exporter's pods request.
            self.api('PATCH', '/api/v1/nodes/%s/status' % name, {'status': {'capacity': NODE_CAPACITY, 'allocatable': NODE_CAPACITY}},
                     content_type='application/merge-patch+json')
        self._wait('nodes Ready', lambda: all(self._node_ready(name) for name in nodes), 120)
        self._wait('the default ServiceAccount', lambda: self.get('v1', 'ServiceAccount', 'default', 'default'), 60)
        self._wait('the PrometheusRule API', lambda: self.request('GET', '/apis/monitoring.coreos.com/v1').status_code == 200, 60)

    def _node_ready(self, name):
        node = self.get('v1', 'Node', None, name) or {}
        return any(c['type'] == 'Ready' and c['status'] == 'True' for c in node.get('status', {}).get('conditions', []))

    @staticmethod
    def node(name):
        return {'apiVersion': 'v1', 'kind': 'Node',
                'metadata': {'name': name, 'annotations': {'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0'},
                             'labels': {'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
                                        'kubernetes.io/role': 'agent', 'type': 'kwok',
                                        'topology.kubernetes.io/zone': 'zone-%s' % name[-1]}},
                'spec': {}}

    def _spawn(self, name, arguments):
        binary = os.path.join(self.bin_dir, name)
        log = open(self.path('%s.log' % name), 'ab')  # pylint: disable=consider-using-with
        try:
            process = subprocess.Popen([binary] + arguments, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.workdir, start_new_session=True)
        finally:
            log.close()
        self.processes[name] = process
        self._write_pids()
        return process

    def _write_pids(self):
        _write(self.path('pids.json'), json.dumps({name: {'pid': p.pid, 'exe': os.path.join(self.bin_dir, name)}
                                                   for name, p in self.processes.items()}, indent=1))

    def _wait(self, what, ready, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ClusterError('%s exited (%s) while waiting for %s; last lines of %s:\n%s'
                                       % (name, process.returncode, what, self.path(name + '.log'), self.tail(name)))
            try:
                if ready():
                    return
            except (requests.RequestException, ValueError, ClusterError) as error:
                last = error
            time.sleep(0.25)
        raise ClusterError('timed out after %ds waiting for %s (%s)' % (timeout, what, last))

    def tail(self, name, lines=30):
        try:
            with open(self.path(name + '.log'), 'rb') as handle:
                return b''.join(handle.readlines()[-lines:]).decode('utf-8', 'replace')
        except OSError:
            return ''

    def stop(self):
        """End the process groups this cluster started (SIGTERM, then SIGKILL after 10 s); remove a temporary workdir."""
        if self._stopped:
            return
        self._stopped = True
        for name in reversed(list(self.processes)):
            stop_process_group(self.processes[name].pid, lambda process=self.processes[name]: process.poll() is not None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.processes[name].wait(timeout=1)
        if self.session is not None:
            self.session.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path('pids.json'))
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    # -- connection -----------------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.workdir, name)

    @property
    def url(self):
        return 'https://%s:%d' % (HOST, self.ports['apiserver'])

    @property
    def etcd_url(self):
        return 'http://%s:%d' % (HOST, self.ports['etcd-client'])

    @property
    def ca_cert(self):
        return self.pki.ca_cert

    def write_kubeconfig(self, path, token=None, user=ADMIN, namespace=NAMESPACE):
        """A kubeconfig (CA-verified, bearer token; the admin's unless ``token``) pointing at the API server."""
        config = {
            'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'slurm-ir-kube', 'preferences': {},
            'clusters': [{'name': 'slurm-ir-kube', 'cluster': {'server': self.url, 'certificate-authority': self.pki.ca_cert}}],
            'users': [{'name': user, 'user': {'token': token or self.admin_token}}],
            'contexts': [{'name': 'slurm-ir-kube', 'context': {'cluster': 'slurm-ir-kube', 'user': user, 'namespace': namespace}}],
        }
        _write(path, yaml.safe_dump(config, sort_keys=False))
        return path

    # -- the API ---------------------------------------------------------------------------
    def request(self, method, path, body=None, token=None, content_type=None, params=None, timeout=30):  # pylint: disable=too-many-arguments
        """One HTTP request to the API server (the admin's token unless ``token``); returns the Response."""
        headers = {}
        if token:
            headers['Authorization'] = 'Bearer %s' % token
        data = None
        if body is not None:
            headers['Content-Type'] = content_type or 'application/json'
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        # verify per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a Session's verify
        return self.session.request(method, self.url + path, data=data, headers=headers, params=params, timeout=timeout,
                                    verify=self.pki.ca_cert)

    def api(self, method, path, body=None, **kwargs):
        """A request whose answer must be a success; returns the decoded body (text for non-JSON answers)."""
        response = self.request(method, path, body, **kwargs)
        try:
            decoded = response.json()
        except ValueError:
            decoded = response.text
        if response.status_code >= 300:
            raise ApiError(method, path, response.status_code, decoded)
        return decoded

    def path_for(self, api_version, kind, namespace=None, name=None, plural=None):
        """The REST path of a kind (from discovery), in ``namespace``, of ``name``."""
        plural, namespaced = self.resource(api_version, kind) if plural is None else (plural, namespace is not None)
        base = '/api/%s' % api_version if '/' not in api_version else '/apis/%s' % api_version
        if namespaced and namespace:
            base += '/namespaces/%s' % namespace
        base += '/%s' % plural
        return base + ('/%s' % name if name else '')

    def resource(self, api_version, kind):
        """(plural, namespaced) of a kind, from the API server's discovery document (cached)."""
        cache = self.__dict__.setdefault('_resources', {})
        if api_version not in cache:
            base = '/api/%s' % api_version if '/' not in api_version else '/apis/%s' % api_version
            cache[api_version] = {item['kind']: (item['name'], item['namespaced'])
                                  for item in self.api('GET', base)['resources'] if '/' not in item['name']}
        if kind not in cache[api_version]:
            cache.pop(api_version)
            raise ClusterError('the API server does not serve %s %s' % (api_version, kind))
        return cache[api_version][kind]

    def get(self, api_version, kind, namespace, name):
        """The object, or None when it does not exist."""
        response = self.request('GET', self.path_for(api_version, kind, namespace, name))
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise ApiError('GET', self.path_for(api_version, kind, namespace, name), response.status_code, response.text)
        return response.json()

    def list(self, api_version, kind, namespace=None, label_selector=None):
        params = {'labelSelector': label_selector} if label_selector else None
        return self.api('GET', self.path_for(api_version, kind, namespace), params=params)['items']

    def create(self, obj, namespace=None):
        namespace = namespace or obj.get('metadata', {}).get('namespace')
        return self.api('POST', self.path_for(obj['apiVersion'], obj['kind'], namespace), obj)

    def install_crd(self, crd, timeout=60):
        """Create the CustomResourceDefinition ``crd`` (a document, or the path of its YAML) unless it exists, then wait
        until the API server serves it (condition Established). Returns its name."""
        if isinstance(crd, str):
            with open(crd, encoding='utf-8') as handle:
                crd = yaml.safe_load(handle)
        name = crd['metadata']['name']
        if self.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', None, name) is None:
            self.create(crd)

        def established():
            found = self.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', None, name) or {}
            return any(c['type'] == 'Established' and c['status'] == 'True' for c in (found.get('status') or {}).get('conditions') or [])

        self.wait_for('the CustomResourceDefinition %s established' % name, established, timeout)
        return name

    def delete(self, api_version, kind, namespace, name, **params):
        response = self.request('DELETE', self.path_for(api_version, kind, namespace, name), params=params or None)
        if response.status_code not in (200, 202, 404):
            raise ApiError('DELETE', self.path_for(api_version, kind, namespace, name), response.status_code, response.text)

    def wait_for(self, what, predicate, timeout=60, interval=0.25):
        """Poll ``predicate`` until it returns something true (returned); ClusterError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise ClusterError('timed out after %ss waiting for %s' % (timeout, what))
            time.sleep(interval)

    def service_account_token(self, namespace, name, seconds=3600):
        """A token of the ServiceAccount from the TokenRequest API (audience: the API server)."""
        body = {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest', 'spec': {'expirationSeconds': seconds}}
        return self.api('POST', '/api/v1/namespaces/%s/serviceaccounts/%s/token' % (namespace, name), body)['status']['token']

    # -- the audit log -----------------------------------------------------------------------
    def audit_mark(self):
        """A position in the audit log: :meth:`audit_events` from here on."""
        try:
            return os.path.getsize(self.audit_log)
        except FileNotFoundError:
            return 0

    def audit_events(self, mark=0, user=None):
        """The audit events recorded since ``mark`` (one per request, at ResponseComplete), of ``user`` if given."""
        events = []
        with open(self.audit_log, 'rb') as handle:
            handle.seek(mark)
            for line in handle:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get('stage') != 'ResponseComplete':
                    continue
                if user is not None and event.get('user', {}).get('username') != user:
                    continue
                events.append(event)
        return events

    # -- pod logs (served by kwok) ---------------------------------------------------------------
    def set_default_log(self, lines, previous_lines=None):
        """What every container's log (and previous log) shows, as kwok serves it."""
        _write(os.path.join(self.logs_dir, 'default.log'), cri_log(lines), 0o644)
        _write(os.path.join(self.logs_dir, 'default-previous.log'),
               cri_log(previous_lines if previous_lines is not None else ['{"level": "info", "msg": "previous run"}']), 0o644)

    # -- seeding ------------------------------------------------------------------------------
    def seed(self, namespace=NAMESPACE, seed_dir=None, wait=True):
        """Apply the slurm-exporter manifests (tests/fixtures/slurm-exporter) into ``namespace``; wait for the rollout.

        As the emulator seeds: every manifest unchanged but for the namespace (and the cluster-scoped objects' names,
        suffixed with it when it is not slurm-exporter, so that several copies can live side by side); the VPA,
        declared as autoscaling/v2 which no API server serves, and what the API server refuses as invalid (the
        registry-credentials Secret, an empty .dockerconfigjson), are skipped with a warning, as the emulator's seed skips
        them; the LimitRange is corrected as the emulator's
        seed corrects it (tests.emulator.seed.corrected: the upstream one is invalid).
        Returns the created objects.
        """
        created = []
        documents = load_documents(seed_dir)
        documents.sort(key=lambda doc: SEED_ORDER.index(doc['kind']) if doc['kind'] in SEED_ORDER else len(SEED_ORDER))
        for document in documents:
            obj = self._for_namespace(copy.deepcopy(document), namespace)
            if obj is None:
                continue
            try:
                created.append(self.create(obj))
            except ApiError as error:
                if error.status == 422:
                    LOG.warning('skipped %s %s: the API server refuses it: %s', obj['kind'], obj['metadata']['name'], error)
                    continue
                if error.status != 409 or obj['metadata'].get('namespace'):
                    raise
        if wait:
            self.wait_rollout(namespace, 'slurm-exporter')
        return created

    def _for_namespace(self, obj, namespace):
        if obj['apiVersion'] == 'autoscaling/v2' and obj['kind'] == 'VerticalPodAutoscaler':
            LOG.warning('skipped %s %s: the API server does not serve it', obj['apiVersion'], obj['kind'])
            return None
        metadata = obj['metadata']
        if obj['kind'] == 'Namespace':
            metadata['name'] = namespace
        elif metadata.get('namespace'):
            metadata['namespace'] = namespace
        elif namespace != NAMESPACE:
            metadata['name'] = '%s-%s' % (metadata['name'], namespace)
        for subject in obj.get('subjects', []):
            if subject.get('namespace'):
                subject['namespace'] = namespace
        if obj['kind'] == 'ClusterRoleBinding' and namespace != NAMESPACE:
            obj['roleRef']['name'] = '%s-%s' % (obj['roleRef']['name'], namespace)
        return corrected(obj)

    def wait_rollout(self, namespace, name, timeout=120):
        """Wait until the Deployment's observed generation is current and every replica is updated and available."""
        def done():
            deployment = self.get('apps/v1', 'Deployment', namespace, name)
            status = deployment.get('status', {})
            want = deployment['spec'].get('replicas', 1)
            return (status.get('observedGeneration', 0) >= deployment['metadata']['generation']
                    and status.get('updatedReplicas', 0) == want and status.get('availableReplicas', 0) == want
                    and status.get('replicas', 0) == want) and deployment
        return self.wait_for('Deployment %s/%s rolled out' % (namespace, name), done, timeout)

    def delete_namespace(self, namespace, wait=False, timeout=120):
        self.delete('v1', 'Namespace', None, namespace)
        if wait:
            self.wait_for('namespace %s deleted' % namespace, lambda: self.get('v1', 'Namespace', None, namespace) is None, timeout)

    def info(self):
        """What a person needs to use the cluster (printed by ``make cluster``)."""
        return {'kubeconfig': self.kubeconfig, 'server': self.url, 'workdir': self.workdir, 'audit_log': self.audit_log,
                'pids': {name: process.pid for name, process in self.processes.items()},
                'started_seconds': self.started_seconds}


def stop_process_group(pid, gone, timeout=10.0):
    """SIGTERM the process group led by ``pid``, SIGKILL it if ``gone()`` is still false after ``timeout`` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if gone():
                return
            time.sleep(0.05)


def stop_from_pidfile(workdir, out=sys.stderr):
    """End the processes of a cluster started elsewhere (``make cluster``), as listed in ``workdir/pids.json``.

    A PID is signalled only while /proc/<pid>/exe is still the binary that was started there.
    """
    path = os.path.join(workdir, 'pids.json')
    try:
        with open(path, encoding='utf-8') as handle:
            pids = json.load(handle)
    except FileNotFoundError:
        out.write('no cluster running in %s (no pids.json)\n' % workdir)
        return 0
    stopped = 0
    for name in reversed(list(pids)):
        entry = pids[name]
        try:
            exe = os.readlink('/proc/%d/exe' % entry['pid'])
        except OSError:
            continue
        if os.path.realpath(exe) != os.path.realpath(entry['exe']):
            out.write('%s: PID %d now runs %s, left alone\n' % (name, entry['pid'], exe))
            continue
        stop_process_group(entry['pid'], lambda pid=entry['pid']: not os.path.exists('/proc/%d/exe' % pid)
                           or _zombie(pid))
        stopped += 1
    os.remove(path)
    out.write('stopped %d processes of the cluster in %s\n' % (stopped, workdir))
    return stopped


def _zombie(pid):
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            return handle.read().split(') ', 1)[1].startswith('Z')
    except OSError:
        return True
