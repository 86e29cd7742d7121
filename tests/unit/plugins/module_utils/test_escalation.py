# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Escalation against a store of incidents opened at times around each severity's threshold."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import escalation
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore

UTC = datetime.timezone.utc
# Tuesday 2026-11-24 12:00 UTC
NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SECOND = datetime.timedelta(seconds=1)
MINUTE = datetime.timedelta(minutes=1)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def make(tmp_path, clock):
    return IncidentService(IncidentStore(str(tmp_path)), load_catalog(), actor='tester', clock=clock)


def opened(svc, clock, at, severity, fingerprint, acknowledged=True, drill=False, type_name='service_outage'):
    """An incident of ``severity`` opened at ``at`` (acknowledged at once unless told otherwise)."""
    clock.now = at
    outcome = svc.open(type_name=type_name, severity=severity, fingerprint=fingerprint, drill=drill)
    if acknowledged:
        svc.acknowledge(outcome.after['id'])
    return outcome.after['id']


def run_at(svc, clock, now, **kwargs):
    clock.now = now
    return escalation.run(svc, svc.store, now, **kwargs)


def test_exactly_the_overdue_ones_once_per_level(tmp_path):
    clock = Clock(NOW)
    svc = make(tmp_path, clock)
    ids = {
        'p1_late': opened(svc, clock, NOW - 30 * MINUTE - SECOND, 'critical', 'a1'),
        'p1_early': opened(svc, clock, NOW - 30 * MINUTE + SECOND, 'critical', 'a2'),
        'p2_late': opened(svc, clock, NOW - 2 * 60 * MINUTE - SECOND, 'high', 'a3'),
        'p2_early': opened(svc, clock, NOW - 2 * 60 * MINUTE + SECOND, 'high', 'a4'),
        # P3 opened Monday 17:00: due Tuesday 09:00 (next business day)
        'p3_late': opened(svc, clock, datetime.datetime(2026, 11, 23, 17, 0, tzinfo=UTC), 'medium', 'a5'),
        # P3 opened Tuesday 08:00: due Wednesday 09:00
        'p3_early': opened(svc, clock, datetime.datetime(2026, 11, 24, 8, 0, tzinfo=UTC), 'medium', 'a6'),
        # P4 opened Sunday: the weekly review is Monday 09:00
        'p4_late': opened(svc, clock, datetime.datetime(2026, 11, 22, 10, 0, tzinfo=UTC), 'low', 'a7'),
        # P4 opened Monday 10:00: next review is the Monday after
        'p4_early': opened(svc, clock, datetime.datetime(2026, 11, 23, 10, 0, tzinfo=UTC), 'low', 'a8'),
        'drill': opened(svc, clock, NOW - 5 * 60 * MINUTE, 'critical', 'a9', drill=True),
    }
    resolved = opened(svc, clock, NOW - 5 * 60 * MINUTE, 'critical', 'b1')
    clock.now = NOW - 4 * 60 * MINUTE
    svc.resolve(resolved, resolution='fixed', root_cause='known')

    escalated, skipped = run_at(svc, clock, NOW)
    late = {ids[name] for name in ('p1_late', 'p2_late', 'p3_late', 'p4_late')}
    assert {item['id'] for item in escalated} == late and skipped == []
    assert all((item['from'], item['to'], item['tier']) == (0, 1, 'team lead') for item in escalated)
    assert all(item['reason'].startswith('open past escalation_due_at') for item in escalated)
    for incident_id in late:
        record = svc.store.read(incident_id)
        assert record['escalation_level'] == 1
        assert record['timeline'][-1]['kind'] == 'escalation' and 'next tier: team lead' in record['timeline'][-1]['message']

    # a minute later the early ones have crossed their thresholds (by a second); they alone escalate
    escalated = run_at(svc, clock, NOW + MINUTE)[0]
    assert {item['id'] for item in escalated} == {ids['p1_early'], ids['p2_early']}
    # every minute after: nothing more until the reset due times pass
    for minutes in (2, 3, 29):
        assert run_at(svc, clock, NOW + minutes * MINUTE) == ([], [])
    # the late P1 escalates again 30 minutes after its first escalation (level 2), alone
    again = run_at(svc, clock, NOW + 30 * MINUTE)[0]
    assert [(item['id'], item['from'], item['to'], item['tier']) for item in again] == [(ids['p1_late'], 1, 2, 'management')]
    assert svc.store.read(ids['p1_early'])['escalation_level'] == 1
    assert svc.store.read(ids['p3_early'])['escalation_level'] == 0
    assert svc.store.read(ids['p4_early'])['escalation_level'] == 0
    assert svc.store.read(ids['drill'])['escalation_level'] == 0
    assert svc.store.read(resolved)['escalation_level'] == 0


def test_p3_waits_for_the_next_business_day(tmp_path):
    clock = Clock(NOW)
    svc = make(tmp_path, clock)
    friday_evening = datetime.datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    incident_id = opened(svc, clock, friday_evening, 'medium', 'c1')
    assert svc.store.read(incident_id)['escalation_due_at'] == '2026-11-30T09:00:00Z'
    for moment in (datetime.datetime(2026, 11, 28, 9, 0, tzinfo=UTC),      # Saturday 09:00
                   datetime.datetime(2026, 11, 29, 23, 59, tzinfo=UTC),    # Sunday night
                   datetime.datetime(2026, 11, 30, 8, 59, 59, tzinfo=UTC)):  # Monday before business
        assert run_at(svc, clock, moment) == ([], [])
    escalated = run_at(svc, clock, datetime.datetime(2026, 11, 30, 9, 0, tzinfo=UTC))[0]
    assert [item['id'] for item in escalated] == [incident_id]
    # the next level is due the next business day again
    assert svc.store.read(incident_id)['escalation_due_at'] == '2026-12-01T09:00:00Z'


def test_unacknowledged_past_response_due_escalates_once(tmp_path):
    clock = Clock(NOW)
    svc = make(tmp_path, clock)
    # security_breach: respond within 15 minutes, escalate after 30
    late = opened(svc, clock, NOW - 15 * MINUTE - SECOND, 'critical', 'd1', acknowledged=False, type_name='security_breach')
    early = opened(svc, clock, NOW - 15 * MINUTE + SECOND, 'critical', 'd2', acknowledged=False, type_name='security_breach')
    acked = opened(svc, clock, NOW - 20 * MINUTE, 'critical', 'd3', acknowledged=True, type_name='security_breach')
    escalated = run_at(svc, clock, NOW)[0]
    assert [(item['id'], item['to']) for item in escalated] == [(late, 1)]
    assert escalated[0]['reason'].startswith('not acknowledged by response_due_at')
    # still unacknowledged, but it was escalated for that already: the next level waits for escalation_due_at
    assert [item['id'] for item in run_at(svc, clock, NOW + MINUTE)[0]] == [early]
    assert run_at(svc, clock, NOW + 2 * MINUTE) == ([], [])
    assert svc.store.read(acked)['escalation_level'] == 0


def test_a_race_is_reported_as_skipped(tmp_path):
    clock = Clock(NOW)
    svc = make(tmp_path, clock)
    incident_id = opened(svc, clock, NOW - 31 * MINUTE, 'critical', 'e1')
    record = svc.store.read(incident_id)
    plan = escalation.plan([record], NOW)
    # another run escalates first
    svc.escalate(incident_id, 1, 'other run')
    outcome = svc.escalate(incident_id, plan[0]['to'], 'this run')
    assert not outcome.changed and svc.store.read(incident_id)['escalation_level'] == 1


def test_check_mode_plans_and_writes_nothing(tmp_path):
    clock = Clock(NOW)
    svc = make(tmp_path, clock)
    incident_id = opened(svc, clock, NOW - 31 * MINUTE, 'critical', 'f1')
    before = svc.store.read(incident_id)
    checker = IncidentService(IncidentStore(str(tmp_path)), load_catalog(), actor='tester', check_mode=True, clock=clock)
    escalated = escalation.run(checker, checker.store, NOW)[0]
    assert [(item['id'], item['to']) for item in escalated] == [(incident_id, 1)]
    assert svc.store.read(incident_id) == before


def test_tiers():
    assert escalation.tier_for(1, ['a', 'b']) == 'a'
    assert escalation.tier_for(5, ['a', 'b']) == 'b'
    assert escalation.validate_tiers(None) == list(escalation.DEFAULT_TIERS)
    for bad in ([], [''], 'lead', [1]):
        with pytest.raises(ValidationError, match='tiers'):
            escalation.validate_tiers(bad)
