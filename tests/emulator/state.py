# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulated cluster's objects, their metadata, selectors, patches and the few controllers tests need.

Everything here is plain data manipulation under one lock; the HTTP layer is in server.py.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import re
import threading
import uuid

from tests.emulator.logs import LogSource
from tests.emulator.resources import BY_KIND, api_version

REVISION = 'deployment.kubernetes.io/revision'


def _without_version(obj):
    """The object without its resourceVersion: what a no-op update leaves unchanged."""
    meta = dict(obj.get('metadata') or {})
    meta.pop('resourceVersion', None)
    return dict(obj, metadata=meta)


class ApiError(Exception):
    """An answer with a Kubernetes Status body."""

    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def status(self):
        return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure', 'message': self.message,
                'reason': self.reason, 'code': self.code}


def now_ts():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# -- selectors -------------------------------------------------------------------------
_TERM_SPLIT = re.compile(r',(?![^()]*\))')
_SET_TERM = re.compile(r'^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$')


def parse_label_selector(text):
    """A predicate over a labels mapping, from a label selector string."""
    terms = []
    for raw in _TERM_SPLIT.split(text or ''):
        term = raw.strip()
        if not term:
            continue
        match = _SET_TERM.match(term)
        if match:
            values = {value.strip() for value in match.group(3).split(',')}
            terms.append((match.group(1), match.group(2), values))
        elif '!=' in term:
            key, value = term.split('!=', 1)
            terms.append((key.strip(), '!=', value.strip()))
        elif '==' in term:
            key, value = term.split('==', 1)
            terms.append((key.strip(), '=', value.strip()))
        elif '=' in term:
            key, value = term.split('=', 1)
            terms.append((key.strip(), '=', value.strip()))
        elif term.startswith('!'):
            terms.append((term[1:].strip(), '!exists', None))
        else:
            terms.append((term, 'exists', None))

    def predicate(labels):
        labels = labels or {}
        for key, operator, value in terms:
            present = key in labels
            if operator == '=' and labels.get(key) != value:
                return False
            if operator == '!=' and labels.get(key) == value:
                return False
            if operator == 'in' and labels.get(key) not in value:
                return False
            if operator == 'notin' and present and labels[key] in value:
                return False
            if operator == 'exists' and not present:
                return False
            if operator == '!exists' and present:
                return False
        return True

    return predicate


def dig(obj, dotted):
    for part in dotted.split('.'):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def parse_field_selector(text):
    terms = []
    for raw in (text or '').split(','):
        term = raw.strip()
        if not term:
            continue
        if '!=' in term:
            key, value = term.split('!=', 1)
            terms.append((key.strip(), False, value.strip()))
        else:
            key, value = term.replace('==', '=').split('=', 1)
            terms.append((key.strip(), True, value.strip()))

    def predicate(obj):
        for key, equal, value in terms:
            actual = dig(obj, key)
            actual = '' if actual is None else str(actual)
            if (actual == value) != equal:
                return False
        return True

    return predicate


def match_labels_selector(selector):
    """Selector text for a LabelSelector object (matchLabels only, plus matchExpressions In/NotIn/Exists)."""
    parts = ['%s=%s' % item for item in sorted((selector or {}).get('matchLabels', {}).items())]
    for expression in (selector or {}).get('matchExpressions', []):
        operator = expression.get('operator')
        if operator in ('In', 'NotIn'):
            parts.append('%s %s (%s)' % (expression['key'], operator.lower(), ','.join(expression.get('values', []))))
        elif operator == 'Exists':
            parts.append(expression['key'])
        elif operator == 'DoesNotExist':
            parts.append('!' + expression['key'])
    return ','.join(parts)


# -- patches -----------------------------------------------------------------------------
def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Merge keys of the lists that strategic merge patches merge item by item (the rest are replaced).
MERGE_KEYS = {
    'containers': 'name', 'initContainers': 'name', 'ephemeralContainers': 'name', 'env': 'name', 'volumes': 'name',
    'volumeMounts': 'mountPath', 'volumeDevices': 'devicePath', 'imagePullSecrets': 'name', 'conditions': 'type',
    'hostAliases': 'ip', 'ownerReferences': 'uid', 'subsets': None,
}


def _merge_key(field, items):
    """The key that identifies the items of list ``field``, or None when the list is replaced whole."""
    if field == 'ports':
        key = 'containerPort' if all('containerPort' in item for item in items) else 'port'
    else:
        key = MERGE_KEYS.get(field, 'name')
    if key is None or not items or not all(isinstance(item, dict) and key in item for item in items):
        return None
    return key


def strategic_merge_patch(target, patch):
    """An approximation of strategic merge.

    Lists of mappings merge item by item on their merge key (``name`` for containers, env,
    volumes; ``mountPath`` for volume mounts; ``containerPort``/``port`` for ports); an item
    ``{"$patch": "delete", <key>: ...}`` removes one, ``"$patch": "replace"`` replaces a mapping;
    other directives (``$setElementOrder``, ``$retainKeys``) are ignored.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get('$patch') == 'replace':
        return {key: copy.deepcopy(value) for key, value in patch.items() if not key.startswith('$')}
    if patch.get('$patch') == 'delete':
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith('$'):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list) and _merge_key(key, value + result[key]):
            merge_key = _merge_key(key, value + result[key])
            merged = [copy.deepcopy(item) for item in result[key]]
            for item in value:
                index = next((number for number, existing in enumerate(merged) if existing.get(merge_key) == item[merge_key]), None)
                if item.get('$patch') == 'delete':
                    if index is not None:
                        del merged[index]
                elif index is not None:
                    merged[index] = strategic_merge_patch(merged[index], item)
                else:
                    merged.append(strategic_merge_patch({}, item))
            result[key] = merged
        elif isinstance(value, list):
            result[key] = [strategic_merge_patch({}, item) if isinstance(item, dict) else copy.deepcopy(item)
                           for item in value if not (isinstance(item, dict) and item.get('$patch') == 'delete')]
        elif isinstance(value, dict):
            merged_value = strategic_merge_patch(result.get(key), value)
            if merged_value is None:
                result.pop(key, None)
            else:
                result[key] = merged_value
        else:
            result[key] = copy.deepcopy(value)
    return result


def _pointer(path):
    if path == '':
        return []
    return [part.replace('~1', '/').replace('~0', '~') for part in path.lstrip('/').split('/')]


def _walk(doc, parts):
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(target, operations):
    """RFC 6902 (add, remove, replace, move, copy, test)."""
    doc = copy.deepcopy(target)
    if not isinstance(operations, list):
        raise ApiError(422, 'Invalid', 'a JSON patch is a list of operations')
    for operation in operations:
        op = operation.get('op')
        parts = _pointer(operation.get('path', ''))
        try:
            if op == 'test':
                if _walk(doc, parts) != operation.get('value'):
                    raise ApiError(422, 'Invalid', 'test operation failed at %s' % operation.get('path'))
                continue
            if op in ('move', 'copy'):
                value = copy.deepcopy(_walk(doc, _pointer(operation['from'])))
                if op == 'move':
                    source = _pointer(operation['from'])
                    parent = _walk(doc, source[:-1])
                    del parent[int(source[-1]) if isinstance(parent, list) else source[-1]]
                op, operation = 'add', dict(operation, value=value)
            parent = _walk(doc, parts[:-1]) if parts else None
            last = parts[-1] if parts else None
            if not parts:
                if op in ('add', 'replace'):
                    doc = copy.deepcopy(operation['value'])
                continue
            if op == 'add':
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == '-' else int(last), copy.deepcopy(operation['value']))
                else:
                    parent[last] = copy.deepcopy(operation['value'])
            elif op == 'remove':
                del parent[int(last) if isinstance(parent, list) else last]
            elif op == 'replace':
                if isinstance(parent, list):
                    parent[int(last)] = copy.deepcopy(operation['value'])
                else:
                    if last not in parent:
                        raise ApiError(422, 'Invalid', 'replace of a missing path %s' % operation.get('path'))
                    parent[last] = copy.deepcopy(operation['value'])
            else:
                raise ApiError(422, 'Invalid', 'unknown JSON patch operation %r' % op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(422, 'Invalid', 'JSON patch failed at %s: %s' % (operation.get('path'), exc)) from None
    return doc


# -- the cluster ----------------------------------------------------------------------------
class ClusterState:  # pylint: disable=too-many-public-methods
    """Objects by resource, with metadata bookkeeping and small controllers."""

    def __init__(self):
        self.lock = threading.RLock()
        self.objects = {}       # (group, plural) -> {(namespace, name): object}
        self.revision = 1000
        self.logs = {}          # (namespace, pod, container, previous) -> LogSource
        self.unhealthy = set()  # (namespace, deployment)
        self.default_lines = 20  # lines of the generated log of a container without an explicit one
        self.default_bytes = None  # or: bytes of it (generated lazily), for benchmarks
        self._counter = 0
        self._placed = 0
        self._shared_log = None
        self._owner_uids = set()  # uids named in some ownerReferences: only their deletion needs a garbage-collection scan

    # -- bookkeeping -------------------------------------------------------------------------
    def _bucket(self, resource):
        return self.objects.setdefault((resource.group, resource.plural), {})

    def _next_rv(self):
        self.revision += 1
        return str(self.revision)

    def _stamp(self, resource, namespace, obj, previous=None):
        obj['apiVersion'] = api_version(resource)
        obj['kind'] = resource.kind
        meta = obj.setdefault('metadata', {})
        if resource.namespaced:
            meta['namespace'] = namespace
        else:
            meta.pop('namespace', None)
        if previous is None:
            meta['uid'] = str(uuid.uuid4())
            meta['creationTimestamp'] = now_ts()
            meta['generation'] = 1
        else:
            for key in ('uid', 'creationTimestamp'):
                meta[key] = previous['metadata'][key]
            generation = previous['metadata'].get('generation', 1)
            if obj.get('spec') != previous.get('spec'):
                generation += 1
            meta['generation'] = generation
        meta['resourceVersion'] = self._next_rv()
        self._owner_uids.update(ref.get('uid') for ref in meta.get('ownerReferences') or [] if isinstance(ref, dict))
        return obj

    def unique_suffix(self, seed, length=5):
        self._counter += 1
        digest = hashlib.sha256(('%s-%d' % (seed, self._counter)).encode()).hexdigest()
        alphabet = 'bcdfghjklmnpqrstvwxz2456789'
        return ''.join(alphabet[int(digest[i:i + 2], 16) % len(alphabet)] for i in range(0, length * 2, 2))

    # -- reads -----------------------------------------------------------------------------
    def get(self, resource, namespace, name):
        with self.lock:
            obj = self._bucket(resource).get((namespace if resource.namespaced else '', name))
            if obj is None:
                raise ApiError(404, 'NotFound', '%s "%s" not found' % (resource.plural, name))
            return copy.deepcopy(obj)

    def _select(self, resource, namespace, label_selector, field_selector):
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector) if field_selector else None
        for (ns, _name), obj in self._bucket(resource).items():
            if (namespace is None or not resource.namespaced or ns == namespace) and labels(obj['metadata'].get('labels')) \
                    and (fields is None or fields(obj)):
                yield obj

    def list(self, resource, namespace=None, label_selector=None, field_selector=None):
        """Copies of the matching objects, and the current resourceVersion."""
        with self.lock:
            return [copy.deepcopy(obj) for obj in self._select(resource, namespace, label_selector, field_selector)], str(self.revision)

    def list_json(self, resource, namespace=None, label_selector=None, field_selector=None):
        """The matching objects serialised (one ``bytes`` each; cheaper than copying), and the resourceVersion."""
        with self.lock:
            return [json.dumps(obj).encode() for obj in self._select(resource, namespace, label_selector, field_selector)], \
                str(self.revision)

    def find(self, kind_api_version, kind, namespace, name):
        resource = BY_KIND.get((kind_api_version, kind))
        if resource is None:
            return None
        try:
            return self.get(resource, namespace, name)
        except ApiError:
            return None

    # -- writes ------------------------------------------------------------------------------
    def create(self, resource, namespace, obj, dry_run=False):
        with self.lock:
            if not isinstance(obj, dict):
                raise ApiError(400, 'BadRequest', 'the body is not an object')
            meta = obj.setdefault('metadata', {})
            if not meta.get('name') and meta.get('generateName'):
                meta['name'] = meta['generateName'] + self.unique_suffix(meta['generateName'])
            name = meta.get('name')
            if not name:
                raise ApiError(422, 'Invalid', '%s: metadata.name is required' % resource.kind)
            if resource.namespaced and meta.get('namespace') not in (None, namespace):
                raise ApiError(400, 'BadRequest', 'the namespace of the object (%s) does not match the namespace on the request (%s)'
                               % (meta.get('namespace'), namespace))
            if resource.namespaced and resource.plural != 'events' and not self._namespace_exists(namespace):
                raise ApiError(404, 'NotFound', 'namespaces "%s" not found' % namespace)
            key = (namespace if resource.namespaced else '', name)
            bucket = self._bucket(resource)
            if key in bucket:
                raise ApiError(409, 'AlreadyExists', '%s "%s" already exists' % (resource.plural, name))
            obj = self._stamp(resource, namespace, copy.deepcopy(obj))
            if resource.kind == 'Namespace':
                obj.setdefault('status', {'phase': 'Active'})
            if dry_run:
                return obj
            bucket[key] = obj
            self._after_write(resource, obj)
            return copy.deepcopy(bucket[key])

    def _namespace_exists(self, namespace):
        return ('', namespace) in self.objects.get(('', 'namespaces'), {})

    def replace(self, resource, namespace, name, obj, dry_run=False, subresource=None):
        with self.lock:
            previous = self.get(resource, namespace, name)
            if not isinstance(obj, dict):
                raise ApiError(400, 'BadRequest', 'the body is not an object')
            wanted_rv = (obj.get('metadata') or {}).get('resourceVersion')
            if wanted_rv and wanted_rv != previous['metadata']['resourceVersion']:
                raise ApiError(409, 'Conflict', 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                               'please apply your changes to the latest version and try again' % (resource.plural, name))
            if subresource == 'status':
                obj = dict(previous, status=obj.get('status'))
            elif subresource is None and resource.kind not in ('Namespace',):
                obj = dict(obj)
                if 'status' in previous and 'status' not in obj:
                    obj['status'] = previous['status']
            return self._store(resource, namespace, name, obj, previous, dry_run)

    def patch(self, resource, namespace, name, body, content_type, dry_run=False, subresource=None):
        with self.lock:
            try:
                previous = self.get(resource, namespace, name)
            except ApiError:
                if content_type.startswith('application/apply-patch'):
                    return self.create(resource, namespace, body, dry_run)
                raise
            if content_type.startswith('application/json-patch'):
                patched = json_patch(previous, body)
            elif content_type.startswith('application/merge-patch'):
                patched = merge_patch(previous, body)
            else:  # strategic merge and server-side apply
                patched = strategic_merge_patch(previous, body)
            if subresource == 'status':
                patched = dict(previous, status=patched.get('status'))
            return self._store(resource, namespace, name, patched, previous, dry_run)

    def _store(self, resource, namespace, name, obj, previous, dry_run):
        meta = obj.setdefault('metadata', {})
        if meta.get('name', name) != name:
            raise ApiError(400, 'BadRequest', 'the name of the object (%s) does not match the name on the URL (%s)' % (meta.get('name'), name))
        meta['name'] = name
        obj = self._stamp(resource, namespace, copy.deepcopy(obj), previous)
        if _without_version(obj) == _without_version(previous):
            # A no-op update is not persisted: same resourceVersion, no controller run (as the API server does).
            return copy.deepcopy(previous)
        if dry_run:
            return obj
        self._bucket(resource)[(namespace if resource.namespaced else '', name)] = obj
        self._after_write(resource, obj)
        return copy.deepcopy(self._bucket(resource)[(namespace if resource.namespaced else '', name)])

    def delete(self, resource, namespace, name, dry_run=False):
        with self.lock:
            obj = self.get(resource, namespace, name)
            if dry_run:
                return obj
            del self._bucket(resource)[(namespace if resource.namespaced else '', name)]
            self._after_delete(resource, obj)
            return obj

    def delete_collection(self, resource, namespace, label_selector=None, field_selector=None, dry_run=False):
        with self.lock:
            items, _rv = self.list(resource, namespace, label_selector, field_selector)
            if not dry_run:
                for item in items:
                    self.delete(resource, item['metadata'].get('namespace'), item['metadata']['name'])
            return items

    # -- controllers ------------------------------------------------------------------------
    def _after_write(self, resource, obj):
        if resource.kind == 'Deployment':
            self.reconcile_deployment(obj['metadata']['namespace'], obj['metadata']['name'])
        elif resource.kind == 'ReplicaSet' and not self._owner(obj, 'Deployment'):
            self.reconcile_replicaset(obj['metadata']['namespace'], obj['metadata']['name'])

    def _after_delete(self, resource, obj, by_controller=False):
        """Garbage-collect what the deleted object owned; a ReplicaSet replaces a deleted pod."""
        uid = obj['metadata']['uid']
        if resource.kind == 'Namespace':
            for bucket in self.objects.values():
                for key in [key for key in bucket if key[0] == obj['metadata']['name']]:
                    del bucket[key]
            for log_key in [key for key in self.logs if key[0] == obj['metadata']['name']]:
                del self.logs[log_key]
            return
        if uid in self._owner_uids:
            self._owner_uids.discard(uid)
            for bucket in list(self.objects.values()):
                for key, item in list(bucket.items()):
                    if any(ref.get('uid') == uid for ref in item['metadata'].get('ownerReferences', [])):
                        owned = BY_KIND.get((item['apiVersion'], item['kind']))
                        if owned is not None and key in bucket:
                            del bucket[key]
                            self._after_delete(owned, item, by_controller=True)
        if resource.kind == 'Pod':
            namespace, name = obj['metadata']['namespace'], obj['metadata']['name']
            spec = obj.get('spec') or {}
            for container in spec.get('containers', []) + spec.get('initContainers', []):
                for previous in (False, True):
                    self.logs.pop((namespace, name, container.get('name'), previous), None)
            owner = self._owner(obj, 'ReplicaSet')
            if owner is not None and not by_controller:
                self._replace_pods(namespace, owner['name'])

    def _replace_pods(self, namespace, replicaset):
        """What the ReplicaSet controller does after one of its pods was deleted: create a replacement."""
        rs = self._bucket(self._res('apps/v1', 'ReplicaSet')).get((namespace, replicaset))
        if rs is None or sum(1 for _pod in self._pods_of(namespace, rs)) >= rs['spec'].get('replicas', 1):
            return
        deployment = self._owner(rs, 'Deployment')
        if deployment is not None:
            self.reconcile_deployment(namespace, deployment['name'])
        else:
            self.reconcile_replicaset(namespace, replicaset)

    @staticmethod
    def _owner(obj, kind):
        for ref in obj['metadata'].get('ownerReferences', []):
            if ref.get('kind') == kind and ref.get('controller'):
                return ref
        return None

    @staticmethod
    def _owner_ref(owner):
        return {'apiVersion': owner['apiVersion'], 'kind': owner['kind'], 'name': owner['metadata']['name'],
                'uid': owner['metadata']['uid'], 'controller': True, 'blockOwnerDeletion': True}

    def _res(self, api, kind):
        return BY_KIND[(api, kind)]

    def reconcile_deployment(self, namespace, name):
        deployments = self._res('apps/v1', 'Deployment')
        replicasets = self._res('apps/v1', 'ReplicaSet')
        bucket = self._bucket(deployments)
        dep = bucket.get((namespace, name))
        if dep is None:
            return
        spec = dep.setdefault('spec', {})
        replicas = spec.get('replicas', 1)
        template = spec.get('template', {})
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        owned = [rs for (ns, _n), rs in self._bucket(replicasets).items()
                 if ns == namespace and (self._owner(rs, 'Deployment') or {}).get('uid') == dep['metadata']['uid']]
        revisions = [int(rs['metadata'].get('annotations', {}).get(REVISION, '0')) for rs in owned]
        top = max(revisions, default=0)
        current = next((rs for rs in owned if rs['metadata'].get('labels', {}).get('pod-template-hash') == template_hash), None)
        if current is None:
            rs_template = copy.deepcopy(template)
            rs_template.setdefault('metadata', {}).setdefault('labels', {})['pod-template-hash'] = template_hash
            selector = copy.deepcopy(spec.get('selector', {}))
            selector.setdefault('matchLabels', {})['pod-template-hash'] = template_hash
            current = {
                'metadata': {
                    'name': '%s-%s' % (name, template_hash), 'namespace': namespace,
                    'labels': dict(rs_template['metadata']['labels']),
                    'annotations': {REVISION: str(top + 1)},
                    'ownerReferences': [self._owner_ref(dep)],
                },
                'spec': {'replicas': replicas, 'selector': selector, 'template': rs_template},
            }
            current = self._stamp(replicasets, namespace, current)
            self._bucket(replicasets)[(namespace, current['metadata']['name'])] = current
            owned.append(current)
        elif int(current['metadata'].get('annotations', {}).get(REVISION, '0')) != top:
            current['metadata'].setdefault('annotations', {})[REVISION] = str(top + 1)
        dep['metadata'].setdefault('annotations', {})[REVISION] = current['metadata']['annotations'][REVISION]
        ready = total = 0
        for rs in owned:
            desired = replicas if rs is current else 0
            if rs['spec'].get('replicas') != desired:
                rs['spec']['replicas'] = desired
                rs['metadata']['generation'] = rs['metadata'].get('generation', 1) + 1
                rs['metadata']['resourceVersion'] = self._next_rv()
            counts = self.reconcile_replicaset(namespace, rs['metadata']['name'], unhealthy=(namespace, name) in self.unhealthy)
            total += counts[0]
            ready += counts[1]
        updated = sum(1 for _pod in self._pods_of(namespace, current))
        dep['status'] = {
            'observedGeneration': dep['metadata'].get('generation', 1),
            'replicas': total, 'updatedReplicas': updated, 'readyReplicas': ready, 'availableReplicas': ready,
            'unavailableReplicas': max(replicas - ready, 0),
            'conditions': [
                {'type': 'Available', 'status': 'True' if ready >= replicas else 'False', 'reason': 'MinimumReplicasAvailable'
                 if ready >= replicas else 'MinimumReplicasUnavailable', 'lastUpdateTime': now_ts(), 'lastTransitionTime': now_ts()},
                {'type': 'Progressing', 'status': 'True', 'reason': 'NewReplicaSetAvailable', 'lastUpdateTime': now_ts(),
                 'lastTransitionTime': now_ts()},
            ],
        }
        if not ready:
            del dep['status']['readyReplicas']

    def _pods_of(self, namespace, rs):
        uid = rs['metadata']['uid']
        for (ns, _name), pod in self._bucket(self._res('v1', 'Pod')).items():
            if ns == namespace and any(ref.get('uid') == uid for ref in pod['metadata'].get('ownerReferences', [])):
                yield pod

    def reconcile_replicaset(self, namespace, name, unhealthy=False):
        """Create or delete pods to match the ReplicaSet; returns (pods, ready pods)."""
        pods = self._res('v1', 'Pod')
        rs = self._bucket(self._res('apps/v1', 'ReplicaSet')).get((namespace, name))
        if rs is None:
            return 0, 0
        desired = rs['spec'].get('replicas', 1)
        current = sorted(self._pods_of(namespace, rs), key=lambda pod: pod['metadata']['name'])
        for pod in current[desired:]:
            del self._bucket(pods)[(namespace, pod['metadata']['name'])]
            self._after_delete(pods, pod, by_controller=True)
        for _missing in range(desired - len(current)):
            self.add_pod(namespace, rs, unhealthy)
        ready = 0
        for pod in self._pods_of(namespace, rs):
            before = pod.get('status')
            self._set_pod_status(pod, not unhealthy)
            if pod['status'] != before:
                pod['metadata']['resourceVersion'] = self._next_rv()
            ready += 0 if unhealthy else 1
        count = min(desired, max(len(current), desired))
        rs['status'] = {'replicas': count, 'fullyLabeledReplicas': count, 'readyReplicas': ready, 'availableReplicas': ready,
                        'observedGeneration': rs['metadata'].get('generation', 1)}
        return count, ready

    def nodes(self):
        return sorted(name for (_ns, name) in self.objects.get(('', 'nodes'), {}))

    def add_pod(self, namespace, rs, unhealthy=False, name=None):
        """A pod of ReplicaSet ``rs`` (its template), scheduled on a node, with containers running."""
        template = copy.deepcopy(rs['spec']['template'])
        meta = template.get('metadata', {})
        nodes = self.nodes()
        pod = {
            'metadata': {
                'name': name or '%s-%s' % (rs['metadata']['name'], self.unique_suffix(rs['metadata']['name'])),
                'namespace': namespace,
                'labels': dict(meta.get('labels', {})),
                'annotations': dict(meta.get('annotations', {})),
                'ownerReferences': [self._owner_ref(rs)],
            },
            'spec': template.get('spec', {}),
        }
        if nodes:
            self._placed += 1
            pod['spec']['nodeName'] = nodes[self._placed % len(nodes)]
        pods = self._res('v1', 'Pod')
        pod = self._stamp(pods, namespace, pod)
        self._set_pod_status(pod, not unhealthy)
        self._bucket(pods)[(namespace, pod['metadata']['name'])] = pod
        return pod

    def _set_pod_status(self, pod, ready):
        spec = pod.get('spec', {})
        previous = {status['name']: status for status in (pod.get('status') or {}).get('containerStatuses', [])}
        statuses = []
        init_statuses = [{
            'name': container['name'], 'image': container.get('image', 'unknown'),
            'imageID': 'docker-pullable://%s@sha256:%s' % (
                container.get('image', 'unknown').rsplit(':', 1)[0], hashlib.sha256(container.get('image', 'unknown').encode()).hexdigest()),
            'ready': True, 'restartCount': 0,
            'state': {'terminated': {'exitCode': 0, 'reason': 'Completed', 'startedAt': pod['metadata']['creationTimestamp'],
                                     'finishedAt': pod['metadata']['creationTimestamp']}},
        } for container in spec.get('initContainers', [])]
        for container in spec.get('containers', []):
            image = container.get('image', 'unknown')
            digest = hashlib.sha256(image.encode()).hexdigest()
            repository = image.rsplit(':', 1)[0] if ':' in image.rsplit('/', 1)[-1] else image
            status = {
                'name': container['name'], 'image': image, 'imageID': 'docker-pullable://%s@sha256:%s' % (repository, digest),
                'containerID': 'containerd://%s' % hashlib.sha256((pod['metadata']['uid'] + container['name']).encode()).hexdigest(),
                'ready': ready, 'started': True, 'restartCount': 0,
                'state': {'running': {'startedAt': pod['metadata']['creationTimestamp']}} if ready else
                {'waiting': {'reason': 'CrashLoopBackOff', 'message': 'back-off restarting failed container'}},
            }
            old = previous.get(container['name'])
            if old:
                status['restartCount'] = old.get('restartCount', 0)
                if old.get('lastState'):
                    status['lastState'] = old['lastState']
            statuses.append(status)
        node = spec.get('nodeName', '')
        index = int(hashlib.sha256(pod['metadata']['name'].encode()).hexdigest()[:4], 16)
        pod['status'] = {
            'phase': 'Running', 'hostIP': '10.0.0.%d' % (1 + index % 200 if node else 1),
            'podIP': '10.244.%d.%d' % (index % 250, 2 + index % 250), 'startTime': pod['metadata']['creationTimestamp'],
            'qosClass': 'Burstable',
            'conditions': [{'type': kind, 'status': 'True' if ready or kind == 'PodScheduled' else 'False',
                            'lastTransitionTime': pod['metadata']['creationTimestamp']}
                           for kind in ('Initialized', 'Ready', 'ContainersReady', 'PodScheduled')],
            'containerStatuses': statuses,
        }
        if init_statuses:
            pod['status']['initContainerStatuses'] = init_statuses

    def log_source(self, namespace, pod, container, previous=False):
        """The container's log (explicit, or generated); None for a previous log that does not exist."""
        with self.lock:
            source = self.logs.get((namespace, pod, container, previous))
            if source is not None:
                return source
            if previous:
                restarted = any(status['name'] == container and status.get('lastState')
                                for status in ((self._bucket(self._res('v1', 'Pod')).get((namespace, pod)) or {}).get('status') or {})
                                .get('containerStatuses', []))
                if not restarted:
                    return None
                return LogSource(lines=self.default_lines, seed='%s/%s/previous' % (pod, container))
            if self.default_bytes:
                # One log of that size, served to every container (built once, kept in memory).
                if self._shared_log is None or self._shared_log.size != self.default_bytes:
                    self._shared_log = LogSource(size=self.default_bytes, seed='shared')
                return self._shared_log
            return LogSource(lines=self.default_lines, seed='%s/%s' % (pod, container))

    def restart_container(self, namespace, pod_name, container, exit_code=137, reason='OOMKilled'):
        """Mark a container as restarted once (its previous instance terminated)."""
        with self.lock:
            pod = self._bucket(self._res('v1', 'Pod'))[(namespace, pod_name)]
            for status in pod['status']['containerStatuses']:
                if status['name'] == container:
                    status['restartCount'] = status.get('restartCount', 0) + 1
                    status['lastState'] = {'terminated': {'exitCode': exit_code, 'reason': reason, 'startedAt': pod['metadata']['creationTimestamp'],
                                                          'finishedAt': now_ts()}}
            pod['metadata']['resourceVersion'] = self._next_rv()

    def set_unhealthy(self, namespace, deployment, unhealthy=True):
        with self.lock:
            if unhealthy:
                self.unhealthy.add((namespace, deployment))
            else:
                self.unhealthy.discard((namespace, deployment))
            self.reconcile_deployment(namespace, deployment)
