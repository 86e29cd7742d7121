# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulated cluster's objects, their metadata, selectors, patches and the few controllers tests need.

Everything here is plain data manipulation under one lock; the HTTP layer is in server.py.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import re
import threading
import uuid

from tests.emulator import crd as crds
from tests.emulator import defaults
from tests.emulator.logs import LogSource
from tests.emulator.resources import BY_KIND, BY_PATH, api_version

REVISION = 'deployment.kubernetes.io/revision'


def _without_version(obj):
    """The object without its resourceVersion: what a no-op update leaves unchanged."""
    meta = dict(obj.get('metadata') or {})
    meta.pop('resourceVersion', None)
    return dict(obj, metadata=meta)


class ApiError(Exception):
    """An answer with a Kubernetes Status body (``details``: name, group, kind and causes, as the API server sends)."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        status = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure', 'message': self.message,
                  'reason': self.reason, 'code': self.code}
        if self.details:
            status['details'] = self.details
        return status


def details(resource, name, causes=None):
    """A Status's details for an object: its name, its resource's group (core: none) and plural."""
    found = {'name': name}
    if resource.group:
        found['group'] = resource.group
    found['kind'] = resource.plural
    if causes:
        found['causes'] = causes
    return found


# What the API server checks of metadata.name (apimachinery validation): most kinds take a DNS-1123 subdomain,
# namespaces and services a DNS-1123 label.
_DNS_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
_DNS_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')


def _validate_limit_range(obj, name):
    """At most one item per type (the API server's validation of LimitRange)."""
    seen = set()
    for index, item in enumerate((obj.get('spec') or {}).get('limits') or []):
        kind = item.get('type')
        if kind in seen:
            message = 'Duplicate value: "%s"' % kind
            raise ApiError(422, 'Invalid', 'LimitRange "%s" is invalid: spec.limits[%d].type: %s' % (name, index, message),
                           {'name': name, 'kind': 'LimitRange', 'causes': [{'reason': 'FieldValueDuplicate', 'message': message,
                                                                           'field': 'spec.limits[%d].type' % index}]})
        seen.add(kind)


def _validate_secret(obj, name):
    """A kubernetes.io/dockerconfigjson Secret holds a JSON document in .dockerconfigjson (the API server checks it)."""
    if obj.get('type') != 'kubernetes.io/dockerconfigjson':
        return
    field = 'data[.dockerconfigjson]'
    try:
        json.loads(base64.b64decode((obj.get('data') or {}).get('.dockerconfigjson') or '', validate=True) or b'')
    except ValueError:
        message = 'Invalid value: "<secret contents redacted>": unexpected end of JSON input'
        raise ApiError(422, 'Invalid', 'Secret "%s" is invalid: %s: %s' % (name, field, message),
                       {'name': name, 'kind': 'Secret', 'causes': [{'reason': 'FieldValueInvalid', 'message': message,
                                                                   'field': field}]}) from None


_DNS1035_LABEL = re.compile(r'^[a-z]([-a-z0-9]*[a-z0-9])?$')
_NAME_RULES = {
    'Namespace': (_DNS_LABEL, 63, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                                  "start and end with an alphanumeric character"),
    # Service names are DNS-1035 labels (ValidateServiceName): they must start with a letter.
    'Service': (_DNS1035_LABEL, 63, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                                    "alphabetic character, and end with an alphanumeric character"),
}
_SUBDOMAIN_RULE = (_DNS_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                                        "'.', and must start and end with an alphanumeric character")


def invalid_name(resource, name):
    """The 422 Invalid error the API server answers for a bad metadata.name, or None."""
    pattern, limit, rule = _NAME_RULES.get(resource.kind, _SUBDOMAIN_RULE)
    if pattern.match(name) and len(name) <= limit:
        return None
    if len(name) > limit:
        rule = 'must be no more than %d characters' % limit
    message = 'Invalid value: "%s": %s' % (name, rule)
    found = dict(details(resource, name, [{'reason': 'FieldValueInvalid', 'message': message, 'field': 'metadata.name'}]),
                 kind=resource.kind)  # Invalid names the Kind, NotFound and AlreadyExists the resource
    return ApiError(422, 'Invalid', '%s "%s" is invalid: metadata.name: %s' % (resource.kind, name, message), found)


def now_ts():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# -- selectors -------------------------------------------------------------------------
_TERM_SPLIT = re.compile(r',(?![^()]*\))')
_SET_TERM = re.compile(r'^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$')


_LABEL_KEY = re.compile(r'^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')
_LABEL_VALUE = re.compile(r'^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$')


def _selector_error(text, why):
    return ApiError(400, 'BadRequest', 'unable to parse requirement: %s (in label selector %r)' % (why, text))


def parse_label_selector(text):
    """A predicate over a labels mapping, from a label selector string (400 BadRequest when it does not parse)."""
    terms = label_terms(text)

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


def label_terms(text):
    """``[(key, operator, value)]`` of a label selector (operators ``=``, ``!=``, ``in``, ``notin``, ``exists``, ``!exists``)."""
    terms = []
    for raw in _TERM_SPLIT.split(text or ''):
        term = raw.strip()
        if not term:
            continue
        match = _SET_TERM.match(term)
        if not match and ('(' in term or ')' in term):
            raise _selector_error(text, 'found %r, expected a set of values in parentheses' % term)
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
    for key, _operator, value in terms:
        if not _LABEL_KEY.match(key) or len(key.rsplit('/', 1)[-1]) > 63:
            raise _selector_error(text, 'key %r is not a valid label key' % key)
        for one in value if isinstance(value, set) else [value] if value is not None else []:
            if not _LABEL_VALUE.match(one) or len(one) > 63:
                raise _selector_error(text, 'value %r is not a valid label value' % one)
    return terms


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


def _is_crd(resource):
    return resource.kind == 'CustomResourceDefinition' and resource.group == 'apiextensions.k8s.io'


def _qualified(resource):
    """``plural.group`` (``plural`` for the core group), as the API server names a resource in its messages."""
    return '%s.%s' % (resource.plural, resource.group) if resource.group else resource.plural


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
        # CustomResourceDefinitions: what each serves, by path and by kind, and a label index of the custom resources
        # (label key -> value -> object keys), so that selecting a few among many is not a scan.
        self.crds = {}           # CRD name -> the CRD object
        self.custom = {}         # (group, version, plural) -> Resource
        self.custom_kinds = {}   # (apiVersion, kind) -> Resource
        self._labels = {}        # (group, plural) -> {label key: {value: {(namespace, name)}}}

    # -- bookkeeping -------------------------------------------------------------------------
    def _bucket(self, resource):
        return self.objects.setdefault((resource.group, resource.plural), {})

    def resource_by_path(self, group, version, plural):
        """The resource served at /apis/<group>/<version>/<plural> (built in, or of a CRD), or None."""
        return BY_PATH.get((group, version, plural)) or self.custom.get((group, version, plural))

    def resource_by_kind(self, kind_api_version, kind):
        return BY_KIND.get((kind_api_version, kind)) or self.custom_kinds.get((kind_api_version, kind))

    def _put(self, resource, key, obj):
        bucket = self._bucket(resource)
        if resource.crd is not None:
            self._unindex(resource, key, bucket.get(key))
            for label, value in (obj['metadata'].get('labels') or {}).items():
                self._labels.setdefault((resource.group, resource.plural), {}).setdefault(label, {}).setdefault(value, set()).add(key)
        bucket[key] = obj

    def _remove(self, resource, key):
        bucket = self._bucket(resource)
        if resource.crd is not None:
            self._unindex(resource, key, bucket.get(key))
        del bucket[key]

    def _unindex(self, resource, key, obj):
        index = self._labels.get((resource.group, resource.plural))
        if obj is None or index is None:
            return
        for label, value in (obj['metadata'].get('labels') or {}).items():
            keys = index.get(label, {}).get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[label][value]

    def _candidates(self, resource, terms):
        """The keys of the objects that can match the ``=`` and exists terms (the label index); None: every object."""
        index = self._labels.get((resource.group, resource.plural))
        if resource.crd is None or index is None:
            return None
        found = None
        for key, operator, value in terms:
            if operator == '=':
                keys = index.get(key, {}).get(value, set())
            elif operator == 'exists':
                keys = set().union(*index.get(key, {}).values()) if index.get(key) else set()
            elif operator == 'in':
                keys = set().union(*(index.get(key, {}).get(one, set()) for one in value))
            else:
                continue
            found = set(keys) if found is None else found & keys
        return found

    # -- custom resources ----------------------------------------------------------------------
    def _crd_of(self, resource):
        return self.crds.get(resource.crd) if resource.crd else None

    def _serve(self, crd):
        """Serve the versions of ``crd`` (created or updated); its status says it was accepted."""
        name = crd['metadata']['name']
        for key in [key for key, resource in self.custom.items() if resource.crd == name]:
            del self.custom[key]
        for key in [key for key, resource in self.custom_kinds.items() if resource.crd == name]:
            del self.custom_kinds[key]
        for resource in crds.resources_of(crd):
            self.custom[(resource.group, resource.version, resource.plural)] = resource
            self.custom_kinds.setdefault((api_version(resource), resource.kind), resource)
        self.crds[name] = crd

    def _unserve(self, crd):
        """A deleted CRD takes every object of its resource with it."""
        name = crd['metadata']['name']
        spec = crd.get('spec') or {}
        self.objects.pop((spec.get('group'), (spec.get('names') or {}).get('plural')), None)
        self._labels.pop((spec.get('group'), (spec.get('names') or {}).get('plural')), None)
        for key in [key for key, resource in self.custom.items() if resource.crd == name]:
            del self.custom[key]
        for key in [key for key, resource in self.custom_kinds.items() if resource.crd == name]:
            del self.custom_kinds[key]
        self.crds.pop(name, None)

    def _admit(self, resource, obj, name):
        """A custom resource as the API server stores it (pruned, validated against its version's schema), or 422."""
        crd = self._crd_of(resource)
        if crd is None:
            return obj
        try:
            return crds.admit(obj, crd, resource.version)
        except crds.Invalid as exc:
            kind = '%s.%s' % (resource.kind, resource.group)
            listed = ['%s: %s' % (cause['field'], cause['message']) for cause in exc.causes]
            message = listed[0] if len(listed) == 1 else '[%s]' % ', '.join(listed)
            raise ApiError(422, 'Invalid', '%s "%s" is invalid: %s' % (kind, name, message),
                           {'name': name, 'group': resource.group, 'kind': resource.kind, 'causes': exc.causes}) from None

    def _has_status(self, resource):
        return resource.crd is not None and 'status' in resource.subresources

    def _as_version(self, resource, obj):
        """A custom resource read through another served version than the one it was written with."""
        if resource.crd is not None and obj.get('apiVersion') != api_version(resource):
            return dict(obj, apiVersion=api_version(resource))
        return obj

    def crd_table(self, resource, objects, include_object='Metadata'):
        """The Table (printer columns) of ``objects``, or None for a built-in resource."""
        crd = self._crd_of(resource)
        if crd is None:
            return None
        return crds.table(objects, crd, resource.version, str(self.revision), include_object)

    def _next_rv(self):
        self.revision += 1
        return str(self.revision)

    def _stamp(self, resource, namespace, obj, previous=None):
        obj['apiVersion'] = api_version(resource)
        obj['kind'] = resource.kind
        defaults.apply(resource.kind, obj)
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
            if resource.crd is not None:
                # A custom resource's generation follows every change but of its metadata (and status, when a subresource).
                ignored = ('apiVersion', 'kind', 'metadata') + (('status',) if 'status' in resource.subresources else ())
                if {k: v for k, v in obj.items() if k not in ignored} != {k: v for k, v in previous.items() if k not in ignored}:
                    generation += 1
            elif obj.get('spec') != previous.get('spec'):
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
                plural = '%s.%s' % (resource.plural, resource.group) if resource.crd else resource.plural
                raise ApiError(404, 'NotFound', '%s "%s" not found' % (plural, name), details(resource, name))
            return copy.deepcopy(self._as_version(resource, obj))

    def _select(self, resource, namespace, label_selector, field_selector, after=None):
        """Matching objects; ``after`` (a key) continues a paged list: keys in order, after that one."""
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector) if field_selector else None
        bucket = self._bucket(resource)
        candidates = self._candidates(resource, label_terms(label_selector))
        keys = bucket.keys() if candidates is None else [key for key in candidates if key in bucket]
        if after is not None:
            keys = sorted(key for key in keys if key > after)
        for key in keys:
            obj = bucket[key]
            if (namespace is None or not resource.namespaced or key[0] == namespace) and labels(obj['metadata'].get('labels')) \
                    and (fields is None or fields(obj)):
                yield key, self._as_version(resource, obj)

    def page(self, resource, namespace=None, label_selector=None, field_selector=None, limit=None, after=None):
        """``(objects, continue key or None, resourceVersion)``: a list in key order, ``limit`` objects at a time."""
        with self.lock:
            found = sorted(self._select(resource, namespace, label_selector, field_selector, after), key=lambda item: item[0])
            more = None
            if limit and len(found) > limit:
                found = found[:limit]
                more = found[-1][0]
            return [json.dumps(obj).encode() for _key, obj in found], more, str(self.revision)

    def list(self, resource, namespace=None, label_selector=None, field_selector=None):
        """Copies of the matching objects, and the current resourceVersion."""
        with self.lock:
            return [copy.deepcopy(obj) for _key, obj in self._select(resource, namespace, label_selector, field_selector)], \
                str(self.revision)

    def list_json(self, resource, namespace=None, label_selector=None, field_selector=None):
        """The matching objects serialised (one ``bytes`` each; cheaper than copying), and the resourceVersion."""
        with self.lock:
            return [json.dumps(obj).encode() for _key, obj in self._select(resource, namespace, label_selector, field_selector)], \
                str(self.revision)

    def find(self, kind_api_version, kind, namespace, name):
        resource = self.resource_by_kind(kind_api_version, kind)
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
            if invalid_name(resource, name):
                raise invalid_name(resource, name)
            if resource.kind == 'LimitRange':
                _validate_limit_range(obj, name)
            if resource.kind == 'Secret':
                _validate_secret(obj, name)
            if resource.namespaced and meta.get('namespace') not in (None, namespace):
                raise ApiError(400, 'BadRequest', 'the namespace of the object (%s) does not match the namespace on the request (%s)'
                               % (meta.get('namespace'), namespace))
            if resource.namespaced and resource.plural != 'events' and not self._namespace_exists(namespace):
                raise ApiError(404, 'NotFound', 'namespaces "%s" not found' % namespace, {'name': namespace, 'kind': 'namespaces'})
            key = (namespace if resource.namespaced else '', name)
            bucket = self._bucket(resource)
            if key in bucket:
                raise ApiError(409, 'AlreadyExists', '%s "%s" already exists' % (_qualified(resource), name), details(resource, name))
            obj = copy.deepcopy(obj)
            if self._has_status(resource):
                # With the status subresource, a create sets no status (as an update of the object does not).
                obj.pop('status', None)
            obj = self._admit(resource, obj, name)
            if _is_crd(resource):
                self._accept_crd(obj, name)
            obj = self._stamp(resource, namespace, obj)
            if resource.kind == 'Namespace':
                obj.setdefault('status', {'phase': 'Active'})
            if dry_run:
                return obj
            self._put(resource, key, obj)
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
            if not wanted_rv and resource.crd is not None:
                # Custom resources allow no unconditional update.
                raise ApiError(422, 'Invalid', '%s "%s" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified '
                               'for an update' % (_qualified(resource), name),
                               dict(details(resource, name, [{'reason': 'FieldValueInvalid', 'field': 'metadata.resourceVersion',
                                                              'message': 'Invalid value: 0: must be specified for an update'}])))
            if wanted_rv and wanted_rv != previous['metadata']['resourceVersion']:
                raise ApiError(409, 'Conflict', 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                               'please apply your changes to the latest version and try again' % (_qualified(resource), name))
            if subresource == 'status':
                obj = dict(previous, status=obj.get('status'))
                if obj['status'] is None:
                    del obj['status']
            elif self._has_status(resource):
                obj = dict(obj)
                obj.pop('status', None)
                if 'status' in previous:
                    obj['status'] = previous['status']
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
            elif resource.crd is not None and content_type.startswith('application/strategic-merge-patch'):
                raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types '
                               'include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, '
                               'application/apply-patch+cbor')
            else:  # strategic merge and server-side apply
                patched = strategic_merge_patch(previous, body)
            if subresource == 'status':
                patched = dict(previous, status=patched.get('status'))
            elif self._has_status(resource):
                patched = {key: value for key, value in patched.items() if key != 'status'}
                if 'status' in previous:
                    patched['status'] = previous['status']
            return self._store(resource, namespace, name, patched, previous, dry_run)

    def _store(self, resource, namespace, name, obj, previous, dry_run):
        meta = obj.setdefault('metadata', {})
        if meta.get('name', name) != name:
            raise ApiError(400, 'BadRequest', 'the name of the object (%s) does not match the name on the URL (%s)' % (meta.get('name'), name))
        meta['name'] = name
        obj = self._admit(resource, copy.deepcopy(obj), name)
        if _is_crd(resource):
            self._accept_crd(obj, name, previous)
        obj = self._stamp(resource, namespace, obj, previous)
        if _without_version(obj) == _without_version(previous):
            # A no-op update is not persisted: same resourceVersion, no controller run (as the API server does).
            return copy.deepcopy(previous)
        if dry_run:
            return obj
        self._put(resource, (namespace if resource.namespaced else '', name), obj)
        self._after_write(resource, obj)
        return copy.deepcopy(self._bucket(resource)[(namespace if resource.namespaced else '', name)])

    def delete(self, resource, namespace, name, dry_run=False, preconditions=None):
        with self.lock:
            obj = self.get(resource, namespace, name)
            for field, value in sorted((preconditions or {}).items()):
                # DeleteOptions.preconditions (uid, resourceVersion): 409 Conflict when the object changed, as the API server.
                if value and obj['metadata'].get(field) != value:
                    raise ApiError(409, 'Conflict', 'Precondition failed: %s in precondition: %s, %s in object meta: %s'
                                   % (field.capitalize(), value, field.capitalize(), obj['metadata'].get(field)))
            if dry_run:
                return obj
            self._remove(resource, (namespace if resource.namespaced else '', name))
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
    def _reindex(self, bucket_key):
        index = self._labels[bucket_key] = {}
        for key, obj in self.objects.get(bucket_key, {}).items():
            for label, value in (obj['metadata'].get('labels') or {}).items():
                index.setdefault(label, {}).setdefault(value, set()).add(key)

    def _accept_crd(self, obj, name, previous=None):
        try:
            crds.validate_crd(obj)
        except crds.Invalid as exc:
            listed = ['%s: %s' % (cause['field'], cause['message']) for cause in exc.causes]
            raise ApiError(422, 'Invalid', 'CustomResourceDefinition.apiextensions.k8s.io "%s" is invalid: %s'
                           % (name, listed[0] if len(listed) == 1 else '[%s]' % ', '.join(listed)),
                           {'name': name, 'group': 'apiextensions.k8s.io', 'kind': 'CustomResourceDefinition',
                            'causes': exc.causes}) from None
        obj['status'] = crds.accepted_status(obj, (previous or {}).get('status'))

    def _after_write(self, resource, obj):
        if _is_crd(resource):
            self._serve(obj)
            return
        if resource.kind == 'Deployment':
            self.reconcile_deployment(obj['metadata']['namespace'], obj['metadata']['name'])
        elif resource.kind == 'ReplicaSet' and not self._owner(obj, 'Deployment'):
            self.reconcile_replicaset(obj['metadata']['namespace'], obj['metadata']['name'])

    def _after_delete(self, resource, obj, by_controller=False):
        """Garbage-collect what the deleted object owned; a ReplicaSet replaces a deleted pod."""
        uid = obj['metadata']['uid']
        if _is_crd(resource):
            self._unserve(obj)
            return
        if resource.kind == 'Namespace':
            for bucket_key, bucket in self.objects.items():
                gone = [key for key in bucket if key[0] == obj['metadata']['name']]
                for key in gone:
                    del bucket[key]
                if gone and bucket_key in self._labels:
                    self._reindex(bucket_key)
            for log_key in [key for key in self.logs if key[0] == obj['metadata']['name']]:
                del self.logs[log_key]
            return
        if uid in self._owner_uids:
            self._owner_uids.discard(uid)
            for bucket in list(self.objects.values()):
                for key, item in list(bucket.items()):
                    if any(ref.get('uid') == uid for ref in item['metadata'].get('ownerReferences', [])):
                        owned = self.resource_by_kind(item['apiVersion'], item['kind'])
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
