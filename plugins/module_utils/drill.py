# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Scoring a drill: how fast the response acknowledged, mitigated and resolved, against the catalog's targets.

With a person's acknowledgement (drill.yml ``drill_human_ack``) the drill does not acknowledge itself: the first stage
measures how fast a person acknowledged through Slack, PagerDuty or the CLI, and the score says who did.
"""

from __future__ import annotations

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.people import is_person
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

DRILL_SCENARIOS = ('security_breach', 'service_outage', 'data_loss', 'performance_degradation')
DEFAULT_RESOLUTION_TARGET_S = 24 * 3600


def _elapsed(start, end):
    if not start or not end:
        return None
    return max(0, int((timeutil.parse_ts(end) - timeutil.parse_ts(start)).total_seconds()))


def _target(value):
    try:
        return int(timeutil.parse_duration(value))
    except Exception:  # pylint: disable=broad-exception-caught
        return None


def score(record, profile):
    """``{stages: [...], met, total, passed}`` for a drill record.

    Stages: detection to acknowledgement against the severity's response time, detection to
    mitigation against the incident type's response time, detection to resolution against the
    severity's escalation threshold (24 h when that is a business-day or weekly policy).
    """
    if not isinstance(record, dict) or 'created_at' not in record:
        raise ValidationError('drill_score: expected an incident record')
    if not record.get('drill'):
        raise ValidationError('drill_score: incident %s is not a drill; real incidents are not scored' % record.get('id'))
    resolution_target = _target(profile.get('escalate_after')) or DEFAULT_RESOLUTION_TARGET_S
    stages = []
    for name, field, target in (('detection to acknowledgement', 'acknowledged_at', profile['severity_response_time_s']),
                                ('detection to mitigation', 'mitigated_at', profile['response_time_s']),
                                ('detection to resolution', 'resolved_at', resolution_target)):
        seconds = _elapsed(record['created_at'], record.get(field))
        verdict = 'not reached' if seconds is None else ('met' if seconds <= target else 'missed')
        stages.append({'stage': name, 'seconds': seconds, 'target_seconds': int(target), 'verdict': verdict})
    stages[0]['by'] = record.get('acknowledged_by')
    met = sum(1 for stage in stages if stage['verdict'] == 'met')
    return {'incident': record['id'], 'type': record['type'], 'severity': record['severity'], 'stages': stages,
            'met': met, 'total': len(stages), 'passed': met == len(stages), 'acknowledged_by': record.get('acknowledged_by'),
            'acknowledged_by_person': is_person(record.get('acknowledged_by'))}
