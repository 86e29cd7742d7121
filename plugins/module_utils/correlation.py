# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Alert correlation: one problem on one workload is one incident.

Alerts are first matched by fingerprint (Alertmanager resends and resolutions). An alert with a new
fingerprint (another collector, instance or rule) is then correlated by its grouping key, the
incident type and the workload the response acts on (``namespace/deployment``, from the response's
settings, never from alert labels):

- while an incident with the same key is open, the alert attaches to it;
- an alert of a *related* type (``related``: e.g. api_failure and network_partition) attaches to the
  open incident of the workload as a related alert;
- a firing alert of the same key within ``cooldown`` seconds after the incident resolved reopens it
  (damping of flapping alerts) instead of opening a new incident.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

WORKLOAD_RE = re.compile(r'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')
DEFAULT_RELATED = {'api_failure': ['network_partition'], 'network_partition': ['api_failure']}
DEFAULTS = {'enabled': True, 'cooldown': 900, 'related': DEFAULT_RELATED}
KEYS = ('enabled', 'cooldown', 'related')


def validate_workload(value, field='workload'):
    if not isinstance(value, str) or not WORKLOAD_RE.match(value):
        raise ValidationError('%s: expected namespace/deployment (Kubernetes names), got %r' % (field, value))
    return value


def settings(value, catalog=None):
    """The correlation settings with defaults, validated (``catalog`` checks the type names)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValidationError('correlation: expected a mapping with %s' % ', '.join(KEYS))
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ValidationError('correlation: unknown key(s) %s; known: %s' % (', '.join(unknown), ', '.join(KEYS)))
    result = dict(DEFAULTS, **value)
    if not isinstance(result['enabled'], bool):
        raise ValidationError('correlation.enabled: expected true or false, got %r' % (result['enabled'],))
    cooldown = result['cooldown']
    if not isinstance(cooldown, int) or isinstance(cooldown, bool) or not 0 <= cooldown <= 7 * 86400:
        raise ValidationError('correlation.cooldown: expected seconds from 0 to 604800, got %r' % (cooldown,))
    related = result['related']
    if not isinstance(related, dict):
        raise ValidationError('correlation.related: expected a mapping of incident type to a list of related types')
    for type_name, others in related.items():
        if not isinstance(others, list) or not all(isinstance(other, str) for other in others):
            raise ValidationError('correlation.related.%s: expected a list of incident types' % type_name)
        if catalog is not None:
            for name in [type_name] + others:
                if name not in catalog.types:
                    raise ValidationError('correlation.related: unknown incident type %r (known: %s)'
                                          % (name, ', '.join(sorted(catalog.types))))
    return result


def related_types(type_name, config):
    """Types whose open incident on the same workload takes this type's alerts as related alerts (both directions)."""
    related = set(config['related'].get(type_name, []))
    related.update(other for other, others in config['related'].items() if type_name in others)
    related.discard(type_name)
    return related


def group_key(type_name, workload, config):
    """The launcher's serialisation key: the workload and the connected group of related types."""
    group, frontier = {type_name}, [type_name]
    while frontier:
        for other in related_types(frontier.pop(), config):
            if other not in group:
                group.add(other)
                frontier.append(other)
    return '%s|%s' % (workload, ','.join(sorted(group)))


def match(summaries, type_name, workload, now, config, firing):
    """``(id, how)`` of the incident the alerts correlate with, or ``(None, None)``.

    ``summaries`` are index summaries (with ``workload``); ``how`` is ``same_type`` or ``related`` (an open incident),
    or ``reopen`` (the same key resolved less than ``cooldown`` seconds ago, and an alert is firing).
    """
    if not config['enabled'] or not workload:
        return None, None
    related = related_types(type_name, config)
    ours = [item for item in summaries if item.get('workload') == workload and not item.get('drill')]
    open_same = [item for item in ours if item['status'] != 'resolved' and item['type'] == type_name]
    open_related = [item for item in ours if item['status'] != 'resolved' and item['type'] in related]
    for found, how in ((open_same, 'same_type'), (open_related, 'related')):
        if found:
            return max(found, key=lambda item: (item['created_at'], item['id']))['id'], how
    if not firing or not config['cooldown']:
        return None, None
    horizon = timeutil.format_ts(now - datetime.timedelta(seconds=config['cooldown']))
    recent = [item for item in ours if item['status'] == 'resolved' and item['type'] == type_name
              and (item.get('resolved_at') or '') >= horizon]
    if recent:
        return max(recent, key=lambda item: (item.get('resolved_at') or '', item['id']))['id'], 'reopen'
    return None, None
