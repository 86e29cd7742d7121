# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The incident catalog: loading, overriding, validation and alert classification."""

from __future__ import annotations

import copy
import datetime
import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog_data import DEFAULT_CATALOG
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.detection import DEFAULT_DETECTION
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import CatalogError, ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

NAME_RE = re.compile(r'^[a-z][a-z0-9_]{0,63}$')
PRIORITY_RE = re.compile(r'^P[1-9]$')
HHMM_RE = re.compile(r'^([01]\d|2[0-3]):([0-5]\d)$')
WEEKDAYS = ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')
ESCALATION_POLICIES = ('next_business_day', 'weekly_review')
TYPE_ESCALATION = ('immediate', 'standard')

_TYPE_FIELDS = {
    'category': str, 'severity': str, 'response_time': (str, int), 'escalation': str, 'description': str,
    'indicators': list, 'playbook': str, 'match': list,
}
_SEVERITY_FIELDS = {
    'priority': str, 'description': str, 'response_time': (str, int), 'escalate_after': (str, int), 'notify': list,
    'page': bool, 'mention': str, 'communication': str,
}
_CATEGORY_FIELDS = {'description': str, 'channel': str, 'auto_resolve': bool}
_TOP_FIELDS = {
    'version': int, 'default_channel': str, 'business_hours': dict, 'classification': dict,
    'categories': dict, 'severities': dict, 'types': dict,
}


def deep_merge(base, override):
    """Recursively merge ``override`` into a copy of ``base``: mappings merge, anything else replaces."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _type_name(value):
    if isinstance(value, (tuple, list)):
        return ' or '.join(t.__name__ for t in value)
    return value.__name__


def _check_fields(path, data, fields, required=True):
    if not isinstance(data, dict):
        raise CatalogError("%s: expected a mapping, got %s" % (path, type(data).__name__))
    for key in data:
        if key not in fields:
            raise CatalogError("%s.%s: unknown field (known fields: %s)" % (path, key, ', '.join(sorted(fields))))
    for key, expected in fields.items():
        if key not in data:
            if required:
                raise CatalogError("%s.%s: required field is missing" % (path, key))
            continue
        value = data[key]
        if isinstance(value, bool) and expected is not bool:
            raise CatalogError("%s.%s: expected %s, got a boolean" % (path, key, _type_name(expected)))
        if not isinstance(value, expected):
            raise CatalogError("%s.%s: expected %s, got %s (%r)" % (path, key, _type_name(expected), type(value).__name__, value))


def _duration(path, value, policies=()):
    if isinstance(value, str) and value in policies:
        return value
    try:
        seconds = timeutil.parse_duration(value, path)
    except ValidationError as exc:
        if policies:
            raise CatalogError("%s or one of: %s" % (exc.message, ', '.join(policies))) from None
        raise CatalogError(exc.message) from None
    if seconds <= 0:
        raise CatalogError("%s: must be longer than zero" % path)
    return seconds


def _validate_match(path, rules):
    for index, rule in enumerate(rules):
        where = '%s[%d]' % (path, index)
        _check_fields(where, rule, {'alertname': (str, list), 'labels': dict}, required=False)
        if not rule:
            raise CatalogError("%s: a match rule needs 'alertname' and/or 'labels'" % where)
        names = rule.get('alertname', [])
        for name in names if isinstance(names, list) else [names]:
            if not isinstance(name, str) or not name:
                raise CatalogError("%s.alertname: expected alert names (strings), got %r" % (where, name))
        for key, value in rule.get('labels', {}).items():
            if not isinstance(value, str):
                raise CatalogError("%s.labels.%s: expected a string, got %r" % (where, key, value))


class Catalog:
    """A validated catalog. Construct with :func:`load_catalog`."""

    def __init__(self, data):
        self.data = data
        self.types = data['types']
        self.severities = data['severities']
        self.categories = data['categories']
        self.fallback_type = data['classification'].get('fallback_type')
        start = HHMM_RE.match(data['business_hours']['start'])
        self.business_start = (int(start.group(1)), int(start.group(2)))
        self.review_weekday = WEEKDAYS.index(data['business_hours']['review_weekday'])
        self._by_alertname = {}
        self._label_rules = []
        for name, info in self.types.items():
            for rule in info.get('match', []):
                names = rule.get('alertname')
                names = [names] if isinstance(names, str) else names
                if names and not rule.get('labels'):
                    for alertname in names:
                        self._by_alertname.setdefault(alertname, name)
                else:
                    self._label_rules.append((name, set(names or []), rule.get('labels', {})))

    # -- lookups -----------------------------------------------------------------
    def require_type(self, name, field='type'):
        """Return the catalog entry of a type, or fail naming the known ones."""
        if not isinstance(name, str) or name not in self.types:
            raise ValidationError("%s: unknown incident type %r; the catalog knows: %s" % (field, name, ', '.join(sorted(self.types))))
        return self.types[name]

    def require_severity(self, name, field='severity'):
        if not isinstance(name, str) or name not in self.severities:
            raise ValidationError("%s: unknown severity %r; use one of: %s" % (field, name, ', '.join(self.severities)))
        return self.severities[name]

    def profile(self, type_name, severity=None):
        """The effective fields an incident of this type (and optional severity override) gets."""
        info = self.require_type(type_name)
        severity = severity or info['severity']
        level = self.require_severity(severity)
        category = self.categories[info['category']]
        return {
            'type': type_name,
            'category': info['category'],
            'severity': severity,
            'priority': level['priority'],
            'response_time_s': timeutil.parse_duration(info['response_time']),
            'escalate_after': level['escalate_after'],
            'channel': category.get('channel') or self.data['default_channel'],
            'auto_resolve': category.get('auto_resolve', False),
            'playbook': info['playbook'],
            'mention': level.get('mention', ''),
            'page': level.get('page', False),
            'notify': list(level.get('notify', [])),
            'communication': level.get('communication', ''),
            'severity_response_time_s': timeutil.parse_duration(level['response_time']),
        }

    # -- time --------------------------------------------------------------------
    def escalation_due(self, severity, since):
        """When an incident of ``severity`` that (re)started its clock at ``since`` is due to escalate."""
        policy = self.require_severity(severity)['escalate_after']
        hour, minute = self.business_start
        if policy == 'next_business_day':
            return timeutil.next_business_day(since, hour, minute)
        if policy == 'weekly_review':
            return timeutil.next_weekly_review(since, self.review_weekday, hour, minute)
        return since + datetime.timedelta(seconds=timeutil.parse_duration(policy))

    def response_due(self, type_name, since):
        return since + datetime.timedelta(seconds=timeutil.parse_duration(self.require_type(type_name)['response_time']))

    # -- classification ----------------------------------------------------------
    def classify(self, alert):
        """Map an Alertmanager alert to ``(type, reason)``.

        Order: the ``incident_type`` label when it names a catalog type; then the
        catalog's match rules (alert name, labels); then ``classification.fallback_type``.
        Raises ValidationError when nothing applies. Label values are compared as
        data only; they are never used as paths or templates.
        """
        labels = alert.get('labels') or {}
        if not isinstance(labels, dict):
            raise ValidationError("alert labels: expected a mapping, got %s" % type(labels).__name__)
        declared = labels.get('incident_type')
        if isinstance(declared, str) and declared in self.types:
            return declared, 'label incident_type=%s' % declared
        alertname = labels.get('alertname')
        for name, names, wanted in self._label_rules:
            if names and alertname not in names:
                continue
            if all(labels.get(key) == value for key, value in wanted.items()):
                return name, 'match rule of %s' % name
        if isinstance(alertname, str) and alertname in self._by_alertname:
            name = self._by_alertname[alertname]
            return name, 'alertname %s is listed for %s' % (alertname, name)
        if self.fallback_type:
            return self.fallback_type, 'fallback type (no label or rule matched)'
        raise ValidationError(
            "alert %s: cannot classify it: its incident_type label %s, and no catalog match rule applies; "
            "add the label, a match rule under incident_catalog.types.<type>.match, or set "
            "incident_catalog.classification.fallback_type"
            % (_describe(alertname), 'is missing' if declared is None else 'names no catalog type (%s)' % _describe(declared)))


def _describe(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def validate_catalog(data):
    """Validate a (merged) catalog structure, raising CatalogError naming the bad field."""
    _check_fields('incident_catalog', data, _TOP_FIELDS)
    _check_fields('incident_catalog.business_hours', data['business_hours'], {'start': str, 'review_weekday': str})
    if not HHMM_RE.match(data['business_hours']['start']):
        raise CatalogError("incident_catalog.business_hours.start: expected HH:MM (24h), got %r" % data['business_hours']['start'])
    if data['business_hours']['review_weekday'] not in WEEKDAYS:
        raise CatalogError("incident_catalog.business_hours.review_weekday: expected one of %s" % ', '.join(WEEKDAYS))
    _check_fields('incident_catalog.classification', data['classification'], {'fallback_type': (str, type(None))})
    for name, info in data['categories'].items():
        path = 'incident_catalog.categories.%s' % name
        if not NAME_RE.match(str(name)):
            raise CatalogError("%s: category names are lower-case identifiers" % path)
        _check_fields(path, info, _CATEGORY_FIELDS, required=False)
    if not data['severities']:
        raise CatalogError("incident_catalog.severities: at least one severity level is required")
    for name, info in data['severities'].items():
        path = 'incident_catalog.severities.%s' % name
        if not NAME_RE.match(str(name)):
            raise CatalogError("%s: severity names are lower-case identifiers" % path)
        _check_fields(path, info, _SEVERITY_FIELDS)
        if not PRIORITY_RE.match(info['priority']):
            raise CatalogError("%s.priority: expected P1..P9, got %r" % (path, info['priority']))
        _duration(path + '.response_time', info['response_time'])
        _duration(path + '.escalate_after', info['escalate_after'], ESCALATION_POLICIES)
    for name, info in data['types'].items():
        path = 'incident_catalog.types.%s' % name
        if not NAME_RE.match(str(name)):
            raise CatalogError("%s: type names are lower-case identifiers ([a-z][a-z0-9_]*)" % path)
        _check_fields(path, {key: value for key, value in info.items() if key != 'detection'} if isinstance(info, dict) else info,
                      _TYPE_FIELDS)
        _validate_detection(path + '.detection', info.get('detection', []))
        if info['category'] not in data['categories']:
            raise CatalogError("%s.category: unknown category %r (known: %s)" % (path, info['category'], ', '.join(sorted(data['categories']))))
        if info['severity'] not in data['severities']:
            raise CatalogError("%s.severity: unknown severity %r (known: %s)" % (path, info['severity'], ', '.join(data['severities'])))
        if info['escalation'] not in TYPE_ESCALATION:
            raise CatalogError("%s.escalation: expected one of %s, got %r" % (path, ', '.join(TYPE_ESCALATION), info['escalation']))
        if not NAME_RE.match(info['playbook']):
            raise CatalogError("%s.playbook: expected a playbook name such as security_breach, got %r" % (path, info['playbook']))
        _duration(path + '.response_time', info['response_time'])
        _validate_match(path + '.match', info['match'])
    fallback = data['classification']['fallback_type']
    if fallback is not None and fallback not in data['types']:
        raise CatalogError("incident_catalog.classification.fallback_type: unknown type %r (known: %s)" % (fallback, ', '.join(sorted(data['types']))))


def _validate_detection(path, rules):
    if not isinstance(rules, list):
        raise CatalogError("%s: expected a list of alert rules" % path)
    for index, rule in enumerate(rules):
        where = '%s[%d]' % (path, index)
        if not isinstance(rule, dict):
            raise CatalogError("%s: expected a mapping" % where)
        for key in ('alert', 'expr'):
            if not isinstance(rule.get(key), str) or not rule[key].strip():
                raise CatalogError("%s.%s: required (a non-empty string)" % (where, key))
        if 'runbook_url' in rule and (not isinstance(rule['runbook_url'], str) or not rule['runbook_url'].strip()):
            raise CatalogError("%s.runbook_url: expected a URL (a non-empty string)" % where)
        unknown = set(rule) - {'alert', 'expr', 'for', 'severity', 'summary', 'description', 'runbook_url'}
        if unknown:
            raise CatalogError("%s: unknown field(s) %s" % (where, ', '.join(sorted(unknown))))


_DEFAULTS = deep_merge(DEFAULT_CATALOG, {'types': {name: {'detection': rules} for name, rules in DEFAULT_DETECTION.items()}})


def load_catalog(overrides=None):
    """The shipped catalog with ``overrides`` (a mapping, e.g. from group_vars) deep-merged and validated."""
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise CatalogError("incident_catalog: expected a mapping of overrides, got %s" % type(overrides).__name__)
    data = deep_merge(_DEFAULTS, overrides)
    validate_catalog(data)
    return Catalog(data)
