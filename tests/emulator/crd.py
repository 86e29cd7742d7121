# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CustomResourceDefinitions as the API server (apiextensions-apiserver) handles them, for the emulator.

What is implemented (tests/realkube/test_cluster_store_real.py runs the same store operations against the real server):

- a CRD is accepted (NamesAccepted, Established, acceptedNames, storedVersions) and every ``served`` version of it
  is served at once (discovery included); deleting the CRD deletes its objects;
- the structural schema of the version written to: unknown fields pruned (except under
  ``x-kubernetes-preserve-unknown-fields``), nulls of specified non-nullable fields dropped, JSON numbers that are
  integral made integers (as the API server's decoder does), then ``type``, ``enum``, ``pattern``, ``minimum``,
  ``maximum``, ``minLength``, ``maxLength``, ``minItems``, ``maxItems`` and ``required`` validated, every failure
  listed in one 422 Invalid with its causes;
- the status subresource: a create or an update of the object keeps the stored status, an update of ``/status``
  changes the status only; ``metadata.generation`` moves when anything but metadata and status changes; an update
  must carry ``metadata.resourceVersion`` (custom resources allow no unconditional update);
- ``additionalPrinterColumns`` through the Table format (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``,
  ``includeObject=None|Metadata|Object``), as kubectl get asks for it: Name, then the columns, dates as ages.
"""

from __future__ import annotations

import datetime
import re

from tests.emulator.resources import Resource

NAME_DESCRIPTION = ('Name must be unique within a namespace. Is required when creating resources, although some resources '
                    'may allow a client to request the generation of an appropriate name automatically. Name is primarily '
                    'intended for creation idempotence and configuration definition. Cannot be updated. More info: '
                    'https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names')
ROOT_KEYS = ('apiVersion', 'kind', 'metadata')


class Invalid(Exception):
    """The object does not match the schema: ``causes`` as the API server lists them."""

    def __init__(self, causes):
        super().__init__('; '.join(cause['message'] for cause in causes))
        self.causes = causes


def resources_of(crd):
    """One emulator Resource per served version of ``crd``."""
    spec = crd.get('spec') or {}
    names = spec.get('names') or {}
    found = []
    for version in spec.get('versions') or []:
        if not version.get('served'):
            continue
        subresources = tuple(sorted((version.get('subresources') or {}).keys()))
        found.append(Resource(spec['group'], version['name'], names['plural'], names['kind'], spec.get('scope') == 'Namespaced',
                              subresources, tuple(names.get('shortNames') or ()), crd['metadata']['name']))
    return found


def version_of(crd, version_name):
    for version in (crd.get('spec') or {}).get('versions') or []:
        if version.get('name') == version_name:
            return version
    return {}


def accepted_status(crd, previous=None):
    """The status a healthy CRD has once the API server took it: names accepted, established, the stored versions. A
    condition whose status does not change keeps its lastTransitionTime (``previous``: the status before an update), as
    on the API server: an unchanged CRD applied again is unchanged."""
    spec = crd.get('spec') or {}
    names = dict(spec.get('names') or {})
    names.setdefault('singular', names.get('kind', '').lower())
    names.setdefault('listKind', names.get('kind', '') + 'List')
    stored = sorted({version['name'] for version in spec.get('versions') or [] if version.get('storage')}
                    | set(((crd.get('status') or {}).get('storedVersions')) or ()))
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    status = {
        'conditions': [
            {'type': 'NamesAccepted', 'status': 'True', 'lastTransitionTime': now, 'reason': 'NoConflicts',
             'message': 'no conflicts found'},
            {'type': 'Established', 'status': 'True', 'lastTransitionTime': now, 'reason': 'InitialNamesAccepted',
             'message': 'the initial names have been accepted'},
        ],
        'acceptedNames': names,
        'storedVersions': stored,
    }
    before = {condition.get('type'): condition for condition in ((previous or {}).get('conditions') or [])}
    for condition in status['conditions']:
        earlier = before.get(condition['type'])
        if earlier and earlier.get('status') == condition['status'] and earlier.get('lastTransitionTime'):
            condition['lastTransitionTime'] = earlier['lastTransitionTime']
    return status


def validate_crd(crd):
    """The checks of a CRD the emulator relies on (group, names, exactly one storage version); raises Invalid."""
    spec = crd.get('spec') or {}
    causes = []
    names = spec.get('names') or {}
    for key in ('plural', 'kind'):
        if not names.get(key):
            causes.append(_cause('FieldValueRequired', 'spec.names.%s' % key, 'Required value'))
    if not spec.get('group') or '.' not in spec['group']:
        causes.append(_cause('FieldValueInvalid', 'spec.group', 'Invalid value: "%s": should be a domain with at least one dot'
                             % spec.get('group')))
    if names.get('plural') and spec.get('group') and crd.get('metadata', {}).get('name') != '%s.%s' % (names['plural'], spec['group']):
        causes.append(_cause('FieldValueInvalid', 'metadata.name', 'Invalid value: "%s": must be spec.names.plural+"."+spec.group'
                             % crd.get('metadata', {}).get('name')))
    versions = spec.get('versions') or []
    if sum(1 for version in versions if version.get('storage')) != 1:
        causes.append(_cause('FieldValueInvalid', 'spec.versions', 'Invalid value: must have exactly one version marked as storage version'))
    if spec.get('scope') not in ('Namespaced', 'Cluster'):
        causes.append(_cause('FieldValueNotSupported', 'spec.scope', 'Unsupported value: "%s": supported values: "Cluster", "Namespaced"'
                             % spec.get('scope')))
    if causes:
        raise Invalid(causes)


def _cause(reason, field, message):
    return {'reason': reason, 'message': message, 'field': field}


# -- the structural schema -------------------------------------------------------------------
def normalise_numbers(value):
    """Integral JSON numbers become integers, as the API server's decoder makes them (1.0 -> 1)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 63:
        return int(value)
    if isinstance(value, dict):
        return {key: normalise_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise_numbers(item) for item in value]
    return value


def prune(value, schema, root=False):
    """Drop what the schema does not specify (unless it preserves unknown fields) and nulls of non-nullable fields."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        properties = schema.get('properties') or {}
        preserve = bool(schema.get('x-kubernetes-preserve-unknown-fields'))
        result = {}
        for key, item in value.items():
            if root and key in ROOT_KEYS:
                result[key] = item
                continue
            if key in properties:
                if item is None and not properties[key].get('nullable'):
                    continue
                result[key] = prune(item, properties[key])
            elif preserve:
                result[key] = item
            elif isinstance(schema.get('additionalProperties'), dict):
                result[key] = prune(item, schema['additionalProperties'])
        return result
    if isinstance(value, list) and isinstance(schema.get('items'), dict):
        return [prune(item, schema['items']) for item in value]
    return value


_TYPES = {'object': dict, 'array': list, 'string': str, 'boolean': bool}


def _type_ok(value, kind):
    if kind == 'integer':
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == 'number':
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = _TYPES.get(kind)
    return expected is None or isinstance(value, expected)


def _json_kind(value):
    if isinstance(value, bool):
        return 'boolean'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, float):
        return 'number'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, list):
        return 'array'
    if isinstance(value, dict):
        return 'object'
    return 'null'


def _quote(value):
    return '"%s"' % value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def validate(value, schema, path='', causes=None):  # pylint: disable=too-many-branches
    """The schema's checks on ``value`` (pruned first); returns the list of causes (empty when valid)."""
    causes = [] if causes is None else causes
    if not isinstance(schema, dict):
        return causes
    if value is None:
        if not schema.get('nullable') and schema.get('type'):
            causes.append(_cause('FieldValueTypeInvalid', path, 'Invalid value: "null": %s in body must be of type %s: "null"'
                                 % (path, schema['type'])))
        return causes
    kind = schema.get('type')
    if kind and not _type_ok(value, kind):
        causes.append(_cause('FieldValueTypeInvalid', path, 'Invalid value: "%s": %s in body must be of type %s: "%s"'
                             % (_json_kind(value), path, kind, _json_kind(value))))
        return causes
    if 'enum' in schema and value not in schema['enum']:
        causes.append(_cause('FieldValueNotSupported', path, 'Unsupported value: %s: supported values: %s'
                             % (_quote(value), ', '.join(_quote(item) for item in schema['enum']))))
    if isinstance(value, str):
        if 'pattern' in schema and not re.search(schema['pattern'], value):
            causes.append(_cause('FieldValueInvalid', path, "Invalid value: \"%s\": %s in body should match '%s'"
                                 % (value, path, schema['pattern'])))
        if 'maxLength' in schema and len(value) > schema['maxLength']:
            causes.append(_cause('FieldValueTooLong', path, 'Too long: may not be more than %d bytes' % schema['maxLength']))
        if 'minLength' in schema and len(value) < schema['minLength']:
            causes.append(_cause('FieldValueInvalid', path, 'Invalid value: "%s": %s in body should be at least %d chars long'
                                 % (value, path, schema['minLength'])))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 'minimum' in schema and value < schema['minimum']:
            causes.append(_cause('FieldValueInvalid', path, 'Invalid value: %s: %s in body should be greater than or equal to %s'
                                 % (value, path, schema['minimum'])))
        if 'maximum' in schema and value > schema['maximum']:
            causes.append(_cause('FieldValueInvalid', path, 'Invalid value: %s: %s in body should be less than or equal to %s'
                                 % (value, path, schema['maximum'])))
    if isinstance(value, list):
        if 'maxItems' in schema and len(value) > schema['maxItems']:
            causes.append(_cause('FieldValueTooMany', path, 'Too many: %d: must have at most %d items' % (len(value), schema['maxItems'])))
        if 'minItems' in schema and len(value) < schema['minItems']:
            causes.append(_cause('FieldValueInvalid', path, 'Invalid value: %d: %s in body should have at least %d items'
                                 % (len(value), path, schema['minItems'])))
        for index, item in enumerate(value):
            validate(item, schema.get('items'), '%s[%d]' % (path, index), causes)
    if isinstance(value, dict):
        properties = schema.get('properties') or {}
        for key, item in value.items():
            if key in properties:
                validate(item, properties[key], '%s.%s' % (path, key) if path else key, causes)
        for key in schema.get('required') or []:
            if key not in value:
                causes.append(_cause('FieldValueRequired', '%s.%s' % (path, key) if path else key, 'Required value'))
    return causes


def admit(obj, crd, version_name):
    """``obj`` as the API server stores it (numbers normalised, pruned), or Invalid with every cause."""
    schema = ((version_of(crd, version_name).get('schema') or {}).get('openAPIV3Schema')) or {}
    obj = prune(normalise_numbers(obj), schema, root=True)
    body = {key: value for key, value in obj.items() if key not in ROOT_KEYS}
    causes = validate(body, dict(schema, properties={key: value for key, value in (schema.get('properties') or {}).items()
                                                     if key not in ROOT_KEYS}))
    if causes:
        raise Invalid(causes)
    return obj


# -- printer columns (the Table format) ------------------------------------------------------------
def _json_path(obj, path):
    value = obj
    for part in [item for item in path.strip().lstrip('.').split('.') if item]:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def human_duration(seconds):
    """The age kubectl shows (apimachinery duration.HumanDuration)."""
    seconds = int(seconds)
    if seconds < 0:
        return '<invalid>'
    if seconds < 120:
        return '%ds' % seconds
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return '%dm%ds' % (minutes, rest) if rest else '%dm' % minutes
    if minutes < 180:
        return '%dm' % minutes
    hours = seconds // 3600
    if hours < 8:
        rest = (seconds % 3600) // 60
        return '%dh%dm' % (hours, rest) if rest else '%dh' % hours
    if hours < 48:
        return '%dh' % hours
    if hours < 24 * 8:
        rest = hours % 24
        return '%dd%dh' % (hours // 24, rest) if rest else '%dd' % (hours // 24)
    if hours < 24 * 365 * 2:
        return '%dd' % (hours // 24)
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return '%dy%dd' % (hours // 24 // 365, rest) if rest else '%dy' % (hours // 24 // 365)
    return '%dy' % (hours // 24 // 365)


def _cell(value, column, now):
    if value is None:
        return None
    if column.get('type') == 'date':
        try:
            when = datetime.datetime.strptime(str(value), '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return value
        return human_duration((now - when).total_seconds())
    return value


def columns(crd, version_name):
    """The Table's columnDefinitions: Name, then the version's additionalPrinterColumns."""
    found = [{'name': 'Name', 'type': 'string', 'format': 'name', 'description': NAME_DESCRIPTION, 'priority': 0}]
    printer = version_of(crd, version_name).get('additionalPrinterColumns')
    if printer is None:
        printer = [{'name': 'Age', 'type': 'date', 'jsonPath': '.metadata.creationTimestamp'}]
    for column in printer:
        found.append({'name': column['name'], 'type': column['type'], 'format': column.get('format', ''),
                      'description': column.get('description') or 'Custom resource definition column (in JSONPath format): %s'
                      % column['jsonPath'], 'priority': column.get('priority', 0)})
    return found, printer


def table(objects, crd, version_name, resource_version, include_object='Metadata', now=None):
    """A meta.k8s.io/v1 Table of ``objects`` with the CRD's printer columns."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    definitions, printer = columns(crd, version_name)
    rows = []
    for obj in objects:
        cells = [obj['metadata']['name']] + [_cell(_json_path(obj, column['jsonPath']), column, now) for column in printer]
        row = {'cells': cells}
        if include_object == 'Object':
            row['object'] = obj
        elif include_object == 'None':
            row['object'] = None
        else:
            row['object'] = partial_metadata(obj)
        rows.append(row)
    return {'kind': 'Table', 'apiVersion': 'meta.k8s.io/v1', 'metadata': {'resourceVersion': resource_version},
            'columnDefinitions': definitions, 'rows': rows}


def partial_metadata(obj):
    return {'kind': 'PartialObjectMetadata', 'apiVersion': 'meta.k8s.io/v1', 'metadata': obj.get('metadata') or {}}
