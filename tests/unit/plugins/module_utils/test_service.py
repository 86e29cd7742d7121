# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime
import os

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import NotFoundError, TransitionError, ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore
from tests.conftest import snapshot

NOW = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)


def alert(fingerprint='a1', alertname='SlurmExporterDown', status='firing', **labels):
    labels = dict({'alertname': alertname}, **labels)
    return {'fingerprint': fingerprint, 'status': status, 'labels': labels, 'annotations': {'summary': 's'}}


def service(root, check_mode=False, clock=lambda: NOW):
    return IncidentService(IncidentStore(str(root)), load_catalog(), actor='tester', check_mode=check_mode, clock=clock)


def test_open_then_attach_by_fingerprint(tmp_path):
    svc = service(tmp_path)
    first = svc.open(alerts=[alert()])
    assert first.created and first.after['id'] == 'INC-20260131-0001' and first.after['type'] == 'service_outage'
    again = svc.open(alerts=[alert()])
    assert again.attached and not again.created and not again.changed
    resolved = svc.open(alerts=[alert(status='resolved')])
    assert resolved.attached and resolved.changed
    # operational incidents move to monitoring when every alert resolved
    assert resolved.after['status'] == 'monitoring'
    assert len(svc.store.list()[0]) == 1


def test_security_incidents_never_change_status_on_their_own(tmp_path):
    svc = service(tmp_path)
    svc.open(alerts=[alert(alertname='SecurityIncidentDetected')])
    outcome = svc.open(alerts=[alert(alertname='SecurityIncidentDetected', status='resolved')])
    assert outcome.after['type'] == 'security_breach'
    assert outcome.after['status'] == 'investigating'
    assert outcome.after['alerts'][0]['status'] == 'resolved'


def test_resolved_alert_without_open_incident_opens_nothing(tmp_path):
    outcome = service(tmp_path).open(alerts=[alert(status='resolved')])
    assert not outcome.changed and outcome.after is None and 'match no open incident' in outcome.skipped


def test_resolved_incident_is_not_reused(tmp_path):
    svc = service(tmp_path)
    first = svc.open(alerts=[alert()])
    svc.resolve(first.after['id'], resolution='restarted')
    second = svc.open(alerts=[alert()])
    assert second.created and second.after['id'] == 'INC-20260131-0002'


def test_mixed_types_are_refused(tmp_path):
    with pytest.raises(ValidationError, match='classify to different incident types'):
        service(tmp_path).open(alerts=[alert('a1'), alert('b2', alertname='SecurityIncidentDetected')])
    assert not os.path.exists(str(tmp_path / 'index.json'))


def test_update_ack_escalate_resolve(tmp_path):
    svc = service(tmp_path)
    incident_id = svc.open(type_name='security_breach').after['id']
    updated = svc.update(incident_id, {'status': 'identified', 'actions': [{'name': 'isolate', 'changed': True}],
                                       'timeline': [{'message': 'pods isolated', 'phase': 'containment'}],
                                       'evidence': [{'path': 'evidence/x', 'sha256': 'a' * 64}],
                                       'notifications': [{'channel': 'outbox', 'template': 'initial'}]})
    assert updated.changed and updated.after['status'] == 'identified'
    assert not svc.update(incident_id, {'actions': [{'name': 'isolate', 'changed': True}]}).changed
    acked = svc.acknowledge(incident_id)
    assert acked.after['acknowledged_by'] == 'tester'
    assert not svc.acknowledge(incident_id).changed
    later = NOW + datetime.timedelta(minutes=31)
    escalated = service(tmp_path, clock=lambda: later).escalate(incident_id)
    assert escalated.after['escalation_level'] == 1
    assert escalated.after['escalation_due_at'] == '2026-01-31T13:01:00Z'
    assert not svc.escalate(incident_id, level=1).changed
    with pytest.raises(ValidationError, match='needs a resolution'):
        svc.resolve(incident_id)
    done = svc.resolve(incident_id, resolution='credentials rotated', root_cause='leaked token')
    assert done.after['status'] == 'resolved' and done.after['mitigated_at'] and done.after['resolved_at']
    with pytest.raises(ValidationError, match='cannot be escalated'):
        svc.escalate(incident_id)
    operations = [entry['operation'] for entry in svc.store.audit_entries()]
    assert operations == ['open', 'update', 'acknowledge', 'escalate', 'resolve']


def test_invalid_transition_changes_nothing(tmp_path):
    svc = service(tmp_path)
    incident_id = svc.open(type_name='api_failure').after['id']
    svc.resolve(incident_id, resolution='fixed')
    before = snapshot(tmp_path)
    with pytest.raises(TransitionError, match='cannot move from resolved to monitoring'):
        svc.update(incident_id, {'status': 'monitoring'})
    assert snapshot(tmp_path) == before


def test_check_mode_writes_nothing(tmp_path):
    root = tmp_path / 'store'
    outcome = service(root, check_mode=True).open(type_name='data_loss')
    assert outcome.created and outcome.after['id'] == 'INC-20260131-0001'
    assert not root.exists()
    svc = service(root)
    incident_id = svc.open(type_name='data_loss').after['id']
    before = snapshot(root)
    checker = IncidentService(IncidentStore(str(root), read_only=True), load_catalog(), check_mode=True, clock=lambda: NOW)
    predicted = checker.open(type_name='data_loss')
    assert predicted.after['id'] == 'INC-20260131-0002'
    assert checker.update(incident_id, {'status': 'identified'}).changed
    assert snapshot(root) == before


@pytest.mark.parametrize('edits, message', [
    ({'status': 'done'}, 'unknown status'),
    ({'actions': [{'result': 'ok'}]}, r'actions\[0\].name: required'),
    ({'timeline': [{'message': 'x', 'phase': 'panic'}]}, r'timeline\[0\].phase: unknown phase'),
    ({'evidence': [{'path': 'x', 'sha256': 'zz'}]}, r'evidence\[0\].sha256'),
    ({'title': 5}, 'title: expected a string'),
])
def test_bad_edits_fail_before_writing(tmp_path, edits, message):
    svc = service(tmp_path)
    incident_id = svc.open(type_name='api_failure').after['id']
    before = snapshot(tmp_path)
    with pytest.raises(ValidationError, match=message):
        svc.update(incident_id, edits)
    assert snapshot(tmp_path) == before


def test_unknown_type_and_bad_ids_touch_nothing(tmp_path):
    root = tmp_path / 'store'
    svc = service(root)
    with pytest.raises(ValidationError, match="unknown incident type 'sabotage'"):
        svc.open(type_name='sabotage')
    with pytest.raises(ValidationError, match='not an incident id'):
        svc.update('../../etc/passwd', {'summary': 'x'})
    with pytest.raises(ValidationError, match='not an alert fingerprint'):
        svc.find_id(fingerprint='../../etc')
    assert not root.exists()


def test_check_mode_tolerates_the_incident_the_run_would_open(tmp_path):
    """In check mode, later steps of a playbook name the incident an earlier open only planned."""
    svc = service(tmp_path, check_mode=True)
    planned = svc.open(alerts=[alert()])
    assert planned.created and planned.after['id'] == 'INC-20260131-0001'
    for outcome in (svc.update(planned.after['id'], {'status': 'identified'}), svc.acknowledge(planned.after['id']),
                    svc.resolve(planned.after['id'], resolution='x')):
        assert outcome.changed and outcome.after is None and outcome.as_result()['planned']
        assert outcome.as_result()['id'] == 'INC-20260131-0001'
    assert not os.path.exists(str(tmp_path / 'INC')) and snapshot(tmp_path) == {}
    # Any other id is still unknown, and outside check mode the planned id is too.
    with pytest.raises(NotFoundError):
        svc.update('INC-20260131-0002', {'status': 'identified'})
    with pytest.raises(NotFoundError):
        service(tmp_path).update('INC-20260131-0001', {'status': 'identified'})


def test_the_same_firing_is_not_opened_again_after_resolution(tmp_path):
    """A resend or a replay of the alert that a resolved incident handled (same fingerprint and startsAt) opens nothing;
    the alert firing again (new startsAt) opens a new incident."""
    svc = service(tmp_path)
    firing = dict(alert(), startsAt='2026-01-31T11:00:00Z')
    first = svc.open(alerts=[firing])
    svc.resolve(first.after['id'], resolution='restarted')
    replay = svc.open(alerts=[firing])
    assert not replay.changed and not replay.created and replay.after['id'] == first.after['id']
    assert 'is resolved' in replay.skipped
    # the alert's resolution is recorded in the resolved incident, which stays resolved; a second copy changes nothing
    resolution = dict(firing, status='resolved', endsAt='2026-01-31T11:20:00Z')
    update = svc.open(alerts=[resolution])
    assert update.changed and update.attached and not update.created and update.after['id'] == first.after['id']
    assert update.after['status'] == 'resolved' and update.after['alerts'][0]['status'] == 'resolved'
    assert update.after['timeline'][-1]['message'] == 'Alert SlurmExporterDown is resolved'
    again = svc.open(alerts=[resolution])
    assert not again.changed and 'is resolved' in again.skipped
    refire = svc.open(alerts=[dict(firing, startsAt='2026-01-31T11:30:00Z')])
    assert refire.created and refire.after['id'] == 'INC-20260131-0002'
