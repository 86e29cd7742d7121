# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Forensic evidence bundles: capture from the Kubernetes API, manifest, archive, verification.

A bundle is a directory (mode 0700, files 0600) under ``<store>/evidence/<incident>/``::

    manifest.json          every file with size, SHA-256, API source and UTC collection time; errors; counts
    manifest.json.sha256   SHA-256 of manifest.json
    pods/<pod>.json        full pod objects
    logs/<pod>/<container>[.previous].log   streamed to disk, with API timestamps
    owners/...             ReplicaSets, Deployments with their revision history
    <kind>.json            events, services, endpoints, network policies, ingresses, HPAs, PVCs,
                           config maps, service accounts, RBAC bindings and roles, nodes, images
    secrets.json           Secret metadata only: name, type, keys and SHA-256 of each value
    prometheus.json        optional query results
    checkpoint.json        optional kubelet checkpoint attempts

and ``<bundle>.tar.gz`` beside it. Secret values never reach a file or the result.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import getpass
import hashlib
import json
import os
import platform
import re
import secrets
import socket
import stat
import tarfile
import threading
import zlib

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError, ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.k8s import (
    KubernetesError, core_path, group_path, validate_name)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

COLLECTOR = 'slurm_exporter.incident_response.k8s_evidence'
COLLECTOR_VERSION = '0.1.0'
MANIFEST = 'manifest.json'
DIGEST = 'manifest.json.sha256'
LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'
SAFE_NAME = re.compile(r'^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')
TS_PREFIX = re.compile(rb'^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z ')
OWNER_KINDS = {'Deployment': ('apps/v1', 'deployments'), 'StatefulSet': ('apps/v1', 'statefulsets'),
               'DaemonSet': ('apps/v1', 'daemonsets'), 'ReplicaSet': ('apps/v1', 'replicasets')}
NAMESPACED_LISTS = (
    # (file, count key, path builder)
    ('services.json', 'services', lambda ns: core_path(ns, 'services')),
    ('endpoints.json', 'endpoints', lambda ns: core_path(ns, 'endpoints')),
    ('networkpolicies.json', 'networkpolicies', lambda ns: group_path('networking.k8s.io/v1', ns, 'networkpolicies')),
    ('ingresses.json', 'ingresses', lambda ns: group_path('networking.k8s.io/v1', ns, 'ingresses')),
    ('horizontalpodautoscalers.json', 'horizontalpodautoscalers', lambda ns: group_path('autoscaling/v2', ns, 'horizontalpodautoscalers')),
    ('persistentvolumeclaims.json', 'persistentvolumeclaims', lambda ns: core_path(ns, 'persistentvolumeclaims')),
    ('configmaps.json', 'configmaps', lambda ns: core_path(ns, 'configmaps')),
)


def safe_component(name):
    """A path component from an API name: the name itself when it is a DNS name, else a digest."""
    if isinstance(name, str) and SAFE_NAME.match(name) and '..' not in name:
        return name
    return 'name-%s' % hashlib.sha256(str(name).encode('utf-8', 'replace')).hexdigest()[:16]


def scrub_secret(secret):
    """A Secret reduced to metadata: name, type, labels, annotations (no last-applied), keys and SHA-256 per value."""
    meta = secret.get('metadata', {})
    annotations = {key: value for key, value in (meta.get('annotations') or {}).items() if key != LAST_APPLIED}
    values = {}
    for key, encoded in (secret.get('data') or {}).items():
        try:
            raw = base64.b64decode(encoded or '', validate=False)
        except (ValueError, TypeError):
            raw = (encoded or '').encode()
        values[key] = {'sha256': hashlib.sha256(raw).hexdigest(), 'size': len(raw)}
    for key, text in (secret.get('stringData') or {}).items():
        raw = (text or '').encode()
        values[key] = {'sha256': hashlib.sha256(raw).hexdigest(), 'size': len(raw)}
    return {
        'name': meta.get('name'), 'namespace': meta.get('namespace'), 'type': secret.get('type'),
        'uid': meta.get('uid'), 'resourceVersion': meta.get('resourceVersion'), 'creationTimestamp': meta.get('creationTimestamp'),
        'labels': meta.get('labels') or {}, 'annotations': annotations, 'keys': sorted(values), 'values': values,
    }


def strip_last_applied(obj):
    """The object with its last-applied-configuration annotation replaced by the annotation's SHA-256.

    The annotation is a copy of the manifest as last applied, and it is stale after any edit or patch
    that is not an apply: a literal credential removed from a pod template (or a ConfigMap) by
    ``kubectl edit`` stays in it. Its digest still lets a responder check the object against a known
    manifest. Secrets never get here: :func:`scrub_secret` drops their annotation outright.
    """
    meta = obj.get('metadata') or {}
    annotations = meta.get('annotations') or {}
    if LAST_APPLIED in annotations:
        value = annotations[LAST_APPLIED]
        digest = hashlib.sha256(str(value).encode('utf-8', 'replace')).hexdigest()
        annotations = dict(annotations, **{LAST_APPLIED: 'removed by k8s_evidence; sha256:%s' % digest})
        obj = dict(obj, metadata=dict(meta, annotations=annotations))
    return obj


def utc_ts():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _lines_until(chunks, until, state):
    """Re-cut ``chunks`` at line ends and stop before the first line stamped after ``until``.

    ``state['cut']`` is set when a whole line was dropped for being too late.
    """
    pending = b''
    for chunk in chunks:
        pending += chunk
        lines = pending.split(b'\n')
        pending = lines.pop()
        out = []
        for line in lines:
            match = TS_PREFIX.match(line)
            if match and match.group(1) > until:
                state['cut'] = True
                yield b''.join(out)
                return
            out.append(line + b'\n')
        yield b''.join(out)
    match = TS_PREFIX.match(pending)
    if pending and not (match and match.group(1) > until):
        yield pending


def gaps(errors):
    """What a capture missed, for the evidence gate: ``{'logs': pods whose current log could not be read ('*' when the
    pods could not even be listed), 'previous_logs': pods, 'other': kinds}``; empty lists when it is complete."""
    logs, previous, other = set(), set(), set()
    for error in errors or []:
        kind, name = error.get('kind'), error.get('name') or ''
        if kind == 'PodLog':
            pod = name.split('/', 1)[0]
            (previous if name.endswith(' (previous)') else logs).add(pod)
        elif kind == 'Pod':
            logs.add('*')
        else:
            other.add(kind or 'unknown')
    return {'logs': sorted(logs), 'previous_logs': sorted(previous), 'other': sorted(other)}


class BundleWriter:
    """Writes files into a bundle directory and keeps the manifest entries (thread-safe)."""

    def __init__(self, root):
        self.root = root
        self.files = []
        self.lock = threading.Lock()
        os.makedirs(root, mode=0o700)

    def _path(self, relative):
        path = os.path.normpath(os.path.join(self.root, relative))
        if not path.startswith(self.root + os.sep):
            raise ValidationError('refusing to write outside the bundle: %r' % relative)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return path

    def _record(self, relative, size, digest, source, **extra):
        entry = {'path': relative, 'size': size, 'sha256': digest, 'source': source, 'collected_at': utc_ts()}
        entry.update(extra)
        with self.lock:
            self.files.append(entry)
        return entry

    def write_json(self, relative, document, source):
        data = (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')
        path = self._path(relative)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        return self._record(relative, len(data), hashlib.sha256(data).hexdigest(), source)

    def write_stream(self, relative, chunks, source, limit=None, until=None):
        """Stream ``chunks`` to a file, hashing as it goes; stops at ``limit`` bytes or after ``until`` (bytes timestamp)."""
        path = self._path(relative)
        digest = hashlib.sha256()
        size = 0
        newlines = 0
        truncated = False
        state = {'cut': False}
        pieces = chunks if until is None else _lines_until(chunks, until, state)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            for chunk in pieces:
                if limit is not None and size + len(chunk) > limit:
                    chunk = chunk[:limit - size]
                    truncated = 'limit_bytes'
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                newlines += chunk.count(b'\n')
                if truncated:
                    break
        if not truncated and state['cut']:
            truncated = 'until'
        # Closing the generator releases the connection even when we stopped early.
        if hasattr(chunks, 'close'):
            chunks.close()
        return self._record(relative, size, digest.hexdigest(), source, truncated=truncated or False, lines=newlines)


class EvidenceCollector:  # pylint: disable=too-many-instance-attributes
    """Capture one namespace's evidence for the selected pods."""

    def __init__(self, kube, namespace, label_selector=None, objects=None, since=None, until=None, tail_lines=None,
                 limit_bytes=None, previous=True, workers=8, prometheus=None, checkpoint=False):
        self.kube = kube
        self.namespace = validate_name(namespace, 'namespace', namespace=True)
        self.label_selector = label_selector
        self.objects = objects or []
        for index, item in enumerate(self.objects):
            if item.get('kind') not in ('Pod',) + tuple(OWNER_KINDS):
                raise ValidationError('objects[%d].kind: expected Pod, %s; got %r' % (index, ', '.join(OWNER_KINDS), item.get('kind')))
            validate_name(item.get('name'), 'objects[%d].name' % index)
        self.since = timeutil.parse_ts(since, 'since') if since else None
        self.until = timeutil.parse_ts(until, 'until') if until else None
        if self.since and self.until and self.since > self.until:
            raise ValidationError('since (%s) is after until (%s)' % (since, until))
        self.tail_lines = tail_lines
        self.limit_bytes = limit_bytes
        self.previous = previous
        self.workers = max(1, min(int(workers), 64))
        self.prometheus = prometheus
        self.checkpoint = checkpoint
        self.errors = []
        self.counts = {}
        self._lock = threading.Lock()

    # -- bookkeeping ---------------------------------------------------------------------
    def _error(self, kind, name, exc):
        entry = {'kind': kind, 'name': name, 'source': getattr(exc, 'source', ''), 'status': getattr(exc, 'status', 0),
                 'reason': (getattr(exc, 'reason', '') or str(exc))[:500], 'time': utc_ts()}
        with self._lock:
            self.errors.append(entry)

    def _count(self, key, number=1):
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + number

    # -- selection -------------------------------------------------------------------------
    def select_pods(self):
        """The pods to capture: by label selector, by name, or owned by named workloads (all pods if none given)."""
        pods = {}
        if self.label_selector or not self.objects:
            document, _source = self.kube.get_json(core_path(self.namespace, 'pods'), {'labelSelector': self.label_selector or None})
            for pod in document.get('items', []):
                pods[pod['metadata']['name']] = pod
        for item in self.objects:
            try:
                if item['kind'] == 'Pod':
                    pod, _source = self.kube.get_json(core_path(self.namespace, 'pods', item['name']))
                    pods[pod['metadata']['name']] = pod
                    continue
                group_version, plural = OWNER_KINDS[item['kind']]
                workload, _source = self.kube.get_json(group_path(group_version, self.namespace, plural, item['name']))
                selector = ','.join('%s=%s' % pair for pair in sorted(((workload.get('spec') or {}).get('selector') or {})
                                                                      .get('matchLabels', {}).items()))
                document, _source = self.kube.get_json(core_path(self.namespace, 'pods'), {'labelSelector': selector or None})
                for pod in document.get('items', []):
                    pods[pod['metadata']['name']] = pod
            except KubernetesError as exc:
                self._error(item['kind'], item['name'], exc)
        return [pods[name] for name in sorted(pods)]

    @staticmethod
    def containers(pod):
        """``(name, kind, restarted)`` for every init and regular container of the pod."""
        statuses = {status['name']: status for status in ((pod.get('status') or {}).get('containerStatuses') or []) +
                    ((pod.get('status') or {}).get('initContainerStatuses') or [])}
        result = []
        for kind in ('initContainers', 'containers'):
            for container in (pod.get('spec') or {}).get(kind) or []:
                status = statuses.get(container['name'], {})
                restarted = bool(status.get('restartCount')) or bool(status.get('lastState'))
                result.append((container['name'], kind, restarted))
        return result

    # -- plan (check mode) ----------------------------------------------------------------
    def plan(self):
        """What a capture would take, from list calls only (reads); nothing is written."""
        pods = self.select_pods()
        containers = sum(len(self.containers(pod)) for pod in pods)
        previous = sum(1 for pod in pods for _name, _kind, restarted in self.containers(pod) if restarted) if self.previous else 0
        lists = [(key, builder(self.namespace)) for _filename, key, builder in NAMESPACED_LISTS]
        lists += [('events', core_path(self.namespace, 'events')), ('secrets', core_path(self.namespace, 'secrets'))]
        objects = {}

        def count(key, path):
            try:
                document, _source = self.kube.get_json(path)
                objects[key] = len(document.get('items') or [])
            except KubernetesError as exc:
                self._error(key, '*', exc)

        with concurrent.futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix='evidence-plan') as pool:
            list(pool.map(lambda item: count(*item), lists))
        return {'pods': len(pods), 'container_logs': containers, 'previous_logs': previous,
                'nodes': len({(pod.get('spec') or {}).get('nodeName') for pod in pods} - {None, ''}),
                'pod_names': [pod['metadata']['name'] for pod in pods], 'objects': dict(sorted(objects.items())),
                'errors': self.errors}

    # -- capture -------------------------------------------------------------------------------
    def capture(self, bundle_dir, incident_id=None):
        """Write the bundle; returns the manifest (also written) and its SHA-256."""
        started = utc_ts()
        writer = BundleWriter(bundle_dir)
        try:
            pods = self.select_pods()
        except KubernetesError as exc:
            self._error('Pod', self.label_selector or '*', exc)
            pods = []
        server = None
        try:
            server, _source = self.kube.get_json('/version')
        except KubernetesError as exc:
            self._error('Version', '', exc)
        jobs = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix='evidence') as pool:
            for pod in pods:
                jobs.append(pool.submit(self._pod, writer, pod))
                for name, _kind, restarted in self.containers(pod):
                    jobs.append(pool.submit(self._log, writer, pod, name, False))
                    if self.previous and restarted:
                        jobs.append(pool.submit(self._log, writer, pod, name, True))
            jobs.append(pool.submit(self._owners, writer, pods))
            jobs.append(pool.submit(self._events, writer, pods))
            for filename, key, builder in NAMESPACED_LISTS:
                jobs.append(pool.submit(self._list, writer, filename, key, builder(self.namespace)))
            jobs.append(pool.submit(self._secrets, writer))
            jobs.append(pool.submit(self._rbac, writer, pods))
            jobs.append(pool.submit(self._nodes, writer, pods))
            if self.prometheus:
                jobs.append(pool.submit(self._prometheus, writer))
            if self.checkpoint:
                jobs.append(pool.submit(self._checkpoints, writer, pods))
            for job in concurrent.futures.as_completed(jobs):
                exc = job.exception()
                if exc is not None:
                    self._error('internal', '', exc)
        if pods:
            images = self._images(pods)
            writer.write_json('images.json', images, 'pods[].status.containerStatuses[].imageID')
            self._count('images', sum(len(entries) for entries in images.values()))
        manifest = {
            'schema_version': 1,
            'bundle': os.path.basename(bundle_dir),
            'incident_id': incident_id,
            'namespace': self.namespace,
            'label_selector': self.label_selector,
            'objects': self.objects,
            'since': timeutil.format_ts(self.since) if self.since else None,
            'until': timeutil.format_ts(self.until) if self.until else None,
            'limits': {'tail_lines': self.tail_lines, 'limit_bytes': self.limit_bytes, 'previous': self.previous},
            'collector': collector_identity(),
            'server': {'host': self.kube.host, 'version': server},
            'started_at': started,
            'finished_at': utc_ts(),
            'counts': dict(sorted(self.counts.items())),
            'errors': sorted(self.errors, key=lambda e: (e['kind'], e['name'], e['source'])),
            'files': sorted(writer.files, key=lambda entry: entry['path']),
        }
        data = (json.dumps(manifest, indent=1, sort_keys=True) + '\n').encode('utf-8')
        digest = hashlib.sha256(data).hexdigest()
        for name, content in ((MANIFEST, data), (DIGEST, ('%s  %s\n' % (digest, MANIFEST)).encode())):
            fd = os.open(os.path.join(bundle_dir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'wb') as handle:
                handle.write(content)
        return manifest, digest

    def _pod(self, writer, pod):
        name = pod['metadata']['name']
        writer.write_json('pods/%s.json' % safe_component(name), strip_last_applied(pod), core_path(self.namespace, 'pods', name))
        self._count('pods')

    def _log(self, writer, pod, container, previous):
        name = pod['metadata']['name']
        query = {'container': container, 'timestamps': 'true', 'previous': 'true' if previous else None,
                 'tailLines': self.tail_lines, 'sinceTime': timeutil.format_ts(self.since) if self.since else None,
                 'limitBytes': self.limit_bytes + 1 if self.limit_bytes else None}
        path = core_path(self.namespace, 'pods', name, 'log')
        relative = 'logs/%s/%s%s.log' % (safe_component(name), safe_component(container), '.previous' if previous else '')
        try:
            chunks, source = self.kube.stream(path, query)
            until = timeutil.format_ts(self.until)[:-1].encode() if self.until else None
            entry = writer.write_stream(relative, chunks, source + ('?previous=true' if previous else ''), self.limit_bytes, until)
            if self.tail_lines is not None and entry['truncated'] is False and entry['lines'] >= self.tail_lines:
                # The API gave as many lines as asked for: earlier lines, if the log has any, were not captured.
                entry['truncated'] = 'tail_lines'
                entry['note'] = 'the last %d lines only; earlier lines, if any, were not requested' % self.tail_lines
            self._count('previous_logs' if previous else 'logs')
        except KubernetesError as exc:
            self._error('PodLog', '%s/%s%s' % (name, container, ' (previous)' if previous else ''), exc)

    def _list(self, writer, filename, key, path, query=None):
        try:
            document, source = self.kube.get_json(path, query)
        except KubernetesError as exc:
            self._error(key, '*', exc)
            return None
        items = [strip_last_applied(item) for item in document.get('items', [])]
        writer.write_json(filename, items, source)
        self._count(key, len(items))
        return items

    def _get(self, path, kind, name):
        try:
            return self.kube.get_json(path)
        except KubernetesError as exc:
            self._error(kind, name, exc)
            return None, None

    def _owners(self, writer, pods):
        """ReplicaSets that own the pods, their Deployments, and each Deployment's revision history."""
        replicasets = {}
        for pod in pods:
            for ref in pod['metadata'].get('ownerReferences') or []:
                if ref.get('controller') and ref.get('kind') in OWNER_KINDS:
                    replicasets.setdefault((ref['kind'], ref['name']), None)
        deployments = {}
        for (kind, name) in sorted(replicasets):
            group_version, plural = OWNER_KINDS[kind]
            obj, source = self._get(group_path(group_version, self.namespace, plural, name), kind, name)
            if obj is None:
                continue
            writer.write_json('owners/%s/%s.json' % (plural, safe_component(name)), strip_last_applied(obj), source)
            self._count(plural)
            for ref in obj['metadata'].get('ownerReferences') or []:
                if ref.get('controller') and ref.get('kind') == 'Deployment':
                    deployments[ref['name']] = ref.get('uid')
        for name, uid in sorted(deployments.items()):
            obj, source = self._get(group_path('apps/v1', self.namespace, 'deployments', name), 'Deployment', name)
            if obj is None:
                continue
            history = []
            try:
                listed, _src = self.kube.get_json(group_path('apps/v1', self.namespace, 'replicasets'))
                for rs in listed.get('items', []):
                    if any(ref.get('uid') == uid for ref in rs['metadata'].get('ownerReferences') or []):
                        template = (rs.get('spec') or {}).get('template') or {}
                        history.append({
                            'revision': int((rs['metadata'].get('annotations') or {}).get('deployment.kubernetes.io/revision', 0)),
                            'replicaset': rs['metadata']['name'], 'replicas': (rs.get('spec') or {}).get('replicas'),
                            'created': rs['metadata'].get('creationTimestamp'),
                            'images': [c.get('image') for c in (template.get('spec') or {}).get('containers') or []],
                            'template': template,
                        })
            except KubernetesError as exc:
                self._error('ReplicaSet', '*', exc)
            history.sort(key=lambda item: item['revision'])
            writer.write_json('owners/deployments/%s.json' % safe_component(name),
                              {'deployment': strip_last_applied(obj), 'revision_history': history}, source)
            self._count('deployments')

    def _events(self, writer, pods):
        items = self._list(writer, 'events.json', 'events', core_path(self.namespace, 'events'))
        if items is None:
            return
        if self.since or self.until:
            low = timeutil.format_ts(self.since) if self.since else ''
            high = timeutil.format_ts(self.until) if self.until else '9999'
            kept = [event for event in items
                    if low <= (event.get('lastTimestamp') or event.get('eventTime') or event['metadata'].get('creationTimestamp') or '') <= high]
            writer.write_json('events-in-window.json', kept, 'events.json filtered to since/until')
        names = {pod['metadata']['name'] for pod in pods}
        by_object = {}
        for event in items:
            involved = event.get('involvedObject') or {}
            if involved.get('kind') == 'Pod' and involved.get('name') not in names:
                continue
            by_object.setdefault('%s/%s' % (involved.get('kind'), involved.get('name')), []).append(
                {key: event.get(key) for key in ('type', 'reason', 'message', 'count', 'firstTimestamp', 'lastTimestamp')})
        writer.write_json('events-by-object.json', by_object, 'events.json grouped by involvedObject')

    def _secrets(self, writer):
        try:
            document, source = self.kube.get_json(core_path(self.namespace, 'secrets'))
        except KubernetesError as exc:
            self._error('secrets', '*', exc)
            return
        scrubbed = [scrub_secret(secret) for secret in document.get('items', [])]
        del document
        writer.write_json('secrets.json', scrubbed, source + ' (metadata and SHA-256 of values only)')
        self._count('secrets', len(scrubbed))

    def _rbac(self, writer, pods):
        """The pods' service accounts, every (Cluster)RoleBinding naming them, and the roles those bind."""
        accounts = sorted({(pod.get('spec') or {}).get('serviceAccountName') or 'default' for pod in pods}) if pods else []
        found = []
        for account in accounts:
            obj, source = self._get(core_path(self.namespace, 'serviceaccounts', account), 'ServiceAccount', account)
            if obj is not None:
                found.append(strip_last_applied(obj))
        writer.write_json('serviceaccounts.json', found, core_path(self.namespace, 'serviceaccounts'))
        self._count('serviceaccounts', len(found))
        bindings = []
        roles = []
        for plural, path in (('rolebindings', group_path('rbac.authorization.k8s.io/v1', self.namespace, 'rolebindings')),
                             ('clusterrolebindings', group_path('rbac.authorization.k8s.io/v1', None, 'clusterrolebindings'))):
            try:
                document, _source = self.kube.get_json(path)
            except KubernetesError as exc:
                self._error(plural, '*', exc)
                continue
            for binding in document.get('items', []):
                if any(subject.get('kind') == 'ServiceAccount' and subject.get('name') in accounts
                       and (subject.get('namespace') or self.namespace) == self.namespace for subject in binding.get('subjects') or []):
                    bindings.append(strip_last_applied(binding))
                    ref = binding.get('roleRef') or {}
                    namespace = self.namespace if ref.get('kind') == 'Role' and plural == 'rolebindings' else None
                    role, _src = self._get(group_path('rbac.authorization.k8s.io/v1', namespace,
                                                      'roles' if namespace else 'clusterroles', ref.get('name')),
                                           ref.get('kind'), ref.get('name'))
                    if role is not None:
                        roles.append(strip_last_applied(role))
        writer.write_json('rbac-bindings.json', bindings, 'rolebindings + clusterrolebindings naming the service accounts')
        writer.write_json('rbac-roles.json', roles, 'roles and clusterroles referenced by those bindings')
        self._count('rbac_bindings', len(bindings))
        self._count('rbac_roles', len(roles))

    def _nodes(self, writer, pods):
        nodes = []
        for name in sorted({(pod.get('spec') or {}).get('nodeName') for pod in pods} - {None, ''}):
            obj, _source = self._get(core_path(None, 'nodes', name), 'Node', name)
            if obj is None:
                continue
            status = obj.get('status') or {}
            nodes.append({'name': name, 'labels': obj['metadata'].get('labels') or {}, 'conditions': status.get('conditions') or [],
                          'nodeInfo': status.get('nodeInfo') or {}, 'kubeletVersion': (status.get('nodeInfo') or {}).get('kubeletVersion'),
                          'addresses': status.get('addresses') or [], 'unschedulable': (obj.get('spec') or {}).get('unschedulable', False)})
            try:
                events, _src = self.kube.get_json(core_path(None, 'events'), {'fieldSelector': 'involvedObject.kind=Node,involvedObject.name=%s' % name})
                nodes[-1]['events'] = [{key: event.get(key) for key in ('type', 'reason', 'message', 'lastTimestamp')}
                                       for event in events.get('items', [])]
            except KubernetesError as exc:
                self._error('Event', 'node/%s' % name, exc)
        writer.write_json('nodes.json', nodes, core_path(None, 'nodes'))
        self._count('nodes', len(nodes))

    @staticmethod
    def _images(pods):
        images = {}
        for pod in pods:
            statuses = ((pod.get('status') or {}).get('containerStatuses') or []) + ((pod.get('status') or {}).get('initContainerStatuses') or [])
            images[pod['metadata']['name']] = [{
                'container': status.get('name'), 'image': status.get('image'), 'imageID': status.get('imageID'),
                'digest': (status.get('imageID') or '').rpartition('@')[2] or None,
            } for status in statuses]
        return images

    def _prometheus(self, writer):
        url = self.prometheus['url'].rstrip('/')
        results = []
        for query in self.prometheus.get('queries') or []:
            params = {'query': query['query']}
            endpoint = '/api/v1/query'
            if query.get('start') or query.get('end'):
                endpoint = '/api/v1/query_range'
                params.update(start=query.get('start'), end=query.get('end'), step=query.get('step') or '30s')
            entry = {'name': query.get('name') or query['query'], 'endpoint': endpoint, 'params': params}
            try:
                entry['response'] = self.prometheus['get'](url + endpoint, params)
            except IncidentResponseError as exc:
                entry['error'] = exc.message
                self._error('Prometheus', entry['name'], exc)
            results.append(entry)
        writer.write_json('prometheus.json', {'url': url, 'results': results}, url)
        self._count('prometheus_queries', len(results))

    def _checkpoints(self, writer, pods):
        attempts = []
        for pod in pods:
            node = (pod.get('spec') or {}).get('nodeName')
            for name, kind, _restarted in self.containers(pod):
                if kind != 'containers' or not node:
                    continue
                path = '/api/v1/nodes/%s/proxy/checkpoint/%s/%s/%s' % (node, self.namespace, pod['metadata']['name'], name)
                attempt = {'pod': pod['metadata']['name'], 'container': name, 'node': node, 'source': 'POST ' + path}
                try:
                    answer, _source = self.kube.post_json(path)
                    attempt.update(result='created', items=answer.get('items'))
                except KubernetesError as exc:
                    attempt.update(result='unsupported' if exc.status in (403, 404, 405, 501) else 'failed', status=exc.status,
                                   reason=exc.reason[:200])
                attempts.append(attempt)
        writer.write_json('checkpoint.json', attempts, 'kubelet checkpoint API via the node proxy')
        self._count('checkpoints', sum(1 for attempt in attempts if attempt['result'] == 'created'))


def collector_identity():
    versions = {'python': platform.python_version()}
    try:
        import kubernetes  # pylint: disable=import-outside-toplevel
        versions['kubernetes_client'] = kubernetes.__version__
    except ImportError:
        pass
    try:
        from ansible.module_utils.ansible_release import __version__ as ansible_version  # pylint: disable=import-outside-toplevel
        versions['ansible_core'] = ansible_version
    except ImportError:
        pass
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {'name': COLLECTOR, 'version': COLLECTOR_VERSION, 'host': socket.gethostname(), 'user': user, 'pid': os.getpid(),
            'versions': versions}


def new_bundle_dir(store_root, incident_id=None):
    """``<store>/evidence/<incident or adhoc>/<UTC time>-<random>``; the caller creates it."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    parent = os.path.join(store_root, 'evidence', incident_id or 'adhoc')
    os.makedirs(parent, mode=0o750, exist_ok=True)
    return os.path.join(parent, '%s-%s' % (stamp, secrets.token_hex(3)))


def make_archive(bundle_dir):
    """``<bundle>.tar.gz`` (0600) of the bundle directory; returns (path, sha256)."""
    path = bundle_dir + '.tar.gz'
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        # Fast compression: the archive is for transport; integrity comes from the manifest's digests.
        with tarfile.open(fileobj=handle, mode='w:gz', compresslevel=1) as archive:
            archive.add(bundle_dir, arcname=os.path.basename(bundle_dir))
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return path, digest.hexdigest()


# -- verification ------------------------------------------------------------------------
def _hash_file(handle):
    digest = hashlib.sha256()
    size = 0
    for block in iter(lambda: handle.read(1 << 20), b''):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def _directory_contents(path):
    """``{relative path: (sha256, size)}`` of every file below ``path``, plus the manifest's and digest's bytes."""
    found, small = {}, {}
    for directory, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, path)
            if not stat.S_ISREG(os.lstat(full).st_mode):
                found[relative] = ('not a regular file', None)  # never followed: a planted symlink or FIFO
                continue
            with open(full, 'rb') as handle:
                if relative in (MANIFEST, DIGEST):
                    small[relative] = handle.read()
                    found[relative] = (hashlib.sha256(small[relative]).hexdigest(), len(small[relative]))
                else:
                    found[relative] = _hash_file(handle)
    return found, small


def _archive_contents(path):
    """The same for a ``.tar.gz``, in one sequential pass: members are hashed as they stream by, never held whole."""
    found, small = {}, {}
    tops = set()
    with tarfile.open(path, 'r|*') as archive:
        for member in archive:
            top, _sep, relative = member.name.partition('/')
            tops.add(top)
            if not member.isfile() or not relative:
                continue
            handle = archive.extractfile(member)
            if relative in (MANIFEST, DIGEST):
                small[relative] = handle.read()
                found[relative] = (hashlib.sha256(small[relative]).hexdigest(), len(small[relative]))
            else:
                found[relative] = _hash_file(handle)
    if len(tops) != 1:
        raise ValidationError('%s: expected one bundle directory in the archive, found %s' % (path, sorted(tops)))
    return found, small


def verify_bundle(path):
    """Re-hash a bundle (directory or .tar.gz) against its manifest.

    Returns a dict: verified, manifest_sha256_ok, manifest_sha256, altered, missing, added, files.
    Files are hashed in blocks (an archive in one streamed pass), so memory does not grow with the bundle.
    """
    if os.path.isdir(path):
        found, small = _directory_contents(path)
    elif os.path.isfile(path):
        try:
            if not tarfile.is_tarfile(path):
                raise ValidationError('%s is neither an evidence bundle directory nor a .tar.gz archive' % path)
            found, small = _archive_contents(path)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise ValidationError('%s: the archive is damaged (%s: %s)' % (path, type(exc).__name__, exc)) from None
    else:
        raise ValidationError('%s is neither an evidence bundle directory nor a .tar.gz archive' % path)
    return compare(found, small)


def compare(found, small):
    """Compare ``{relative: (sha256, size)}`` with the manifest in ``small`` (the manifest's and digest file's bytes)."""
    if MANIFEST not in small:
        raise ValidationError('no %s in the bundle: it is not an evidence bundle, or the manifest was removed' % MANIFEST)
    raw = small[MANIFEST]
    actual = hashlib.sha256(raw).hexdigest()
    recorded = (small.get(DIGEST) or b'').decode('utf-8', 'replace').split()
    manifest_ok = bool(recorded) and recorded[0] == actual
    try:
        manifest = json.loads(raw)
        listed = {entry['path']: entry for entry in manifest['files']}
    except (ValueError, KeyError, TypeError):
        return {'verified': False, 'manifest_sha256_ok': manifest_ok, 'manifest_sha256': actual, 'altered': [MANIFEST],
                'missing': [], 'added': [], 'files': 0}
    altered, missing = [], []
    for relative, entry in sorted(listed.items()):
        if relative not in found:
            missing.append(relative)
        elif found[relative] != (entry.get('sha256'), entry.get('size')):
            altered.append(relative)
    added = sorted(relative for relative in found if relative not in listed and relative not in (MANIFEST, DIGEST))
    if DIGEST not in found:
        missing.append(DIGEST)
    if not manifest_ok:
        altered.insert(0, MANIFEST)
    return {'verified': not (altered or missing or added) and manifest_ok, 'manifest_sha256_ok': manifest_ok,
            'manifest_sha256': actual, 'altered': altered, 'missing': missing, 'added': added, 'files': len(listed)}
