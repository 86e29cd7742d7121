# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drill scoring against the catalog's targets."""

from __future__ import annotations

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.drill import score
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError


def record(acknowledged='2026-01-31T12:10:00Z', mitigated='2026-01-31T12:14:00Z', resolved='2026-01-31T12:31:00Z', **extra):
    base = {'id': 'INC-20260131-0001', 'type': 'security_breach', 'severity': 'critical', 'drill': True,
            'created_at': '2026-01-31T12:00:00Z', 'acknowledged_at': acknowledged, 'mitigated_at': mitigated, 'resolved_at': resolved}
    base.update(extra)
    return base


def profile(rec):
    return load_catalog().profile(rec['type'], rec['severity'])


def test_each_stage_against_its_target():
    rec = record()
    result = score(rec, profile(rec))
    verdicts = {stage['stage']: (stage['seconds'], stage['target_seconds'], stage['verdict']) for stage in result['stages']}
    assert verdicts == {'detection to acknowledgement': (600, 900, 'met'),      # P1: 15 min
                        'detection to mitigation': (840, 900, 'met'),           # security_breach: 15 min
                        'detection to resolution': (1860, 1800, 'missed')}      # P1 escalates after 30 min
    assert result['met'] == 2 and not result['passed']


def test_stages_not_reached_and_business_day_policies():
    rec = record(acknowledged=None, mitigated=None, resolved=None, type='api_failure', severity='medium')
    result = score(rec, profile(rec))
    assert [stage['verdict'] for stage in result['stages']] == ['not reached'] * 3
    assert result['stages'][2]['target_seconds'] == 24 * 3600  # next_business_day is not a duration


def test_real_incidents_are_not_scored():
    rec = record(drill=False)
    with pytest.raises(ValidationError, match='not a drill'):
        score(rec, profile(rec))
