# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Chaos experiments: whether the framework caught one in time (the experiments themselves are in playbooks/chaos.yml)."""

from __future__ import annotations

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError


def _seconds(moment, since):
    return int((moment - since).total_seconds())


def verdict(incidents, started_at, incident_type, detect_within, respond_within):
    """Did an incident of ``incident_type`` open within ``detect_within`` of ``started_at``, with a successful action
    within ``respond_within``?

    ``incidents`` are incident records (``incident_info`` with ``details: true``). Drills, other types and incidents
    opened before the experiment started do not count. Returns a dict: ``passed``, ``detected``, ``responded``,
    ``detected_in_seconds``, ``responded_in_seconds`` (None when it did not happen), ``incident_id``, ``reasons``
    (why it failed, or what was seen), and the targets in seconds.
    """
    if not isinstance(incidents, list) or not all(isinstance(item, dict) for item in incidents):
        raise ValidationError('incidents: expected a list of incident records')
    started = timeutil.parse_ts(started_at, 'started_at')
    detect = timeutil.parse_duration(detect_within, 'detect_within')
    respond = timeutil.parse_duration(respond_within, 'respond_within')
    result = {'passed': False, 'detected': False, 'responded': False, 'detected_in_seconds': None, 'responded_in_seconds': None,
              'incident_id': None, 'reasons': [], 'detect_sla_seconds': detect, 'respond_sla_seconds': respond,
              'experiment_started_at': timeutil.format_ts(started), 'incident_type': incident_type}
    candidates = []
    for record in incidents:
        if record.get('drill') or record.get('type') != incident_type:
            continue
        created = timeutil.parse_ts(record['created_at'], 'created_at')
        if created >= started:
            candidates.append((created, record))
    if not candidates:
        result['reasons'].append('no %s incident was opened after the experiment started at %s'
                                 % (incident_type, result['experiment_started_at']))
        return result
    created, record = min(candidates, key=lambda pair: (pair[0], pair[1]['id']))
    detected_in = _seconds(created, started)
    result.update(incident_id=record['id'], detected_in_seconds=detected_in, detected=detected_in <= detect)
    if detected_in > detect:
        result['reasons'].append('%s opened %ds after the experiment started; the target is %ds' % (record['id'], detected_in, detect))
    actions = [timeutil.parse_ts(action['time'], 'actions.time') for action in record.get('actions', ())
               if action.get('result') == 'success']
    if actions:
        responded_in = _seconds(min(actions), started)
        result.update(responded_in_seconds=responded_in, responded=responded_in <= respond)
        if responded_in > respond:
            result['reasons'].append('the first successful action on %s came %ds after the experiment started; the target is %ds'
                                     % (record['id'], responded_in, respond))
    else:
        result['reasons'].append('%s has no successful response action' % record['id'])
    result['passed'] = result['detected'] and result['responded']
    return result
