# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""People in the loop: actors of every path, and a person's commands applied through the incident service."""

from __future__ import annotations

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import approvals, people
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore

ALICE = people.person('slack', 'U0123ABCD', 'alice')


def test_person_names_are_data():
    assert ALICE == 'slack:U0123ABCD (alice)'
    assert people.person('pagerduty', 'PLH1HKV', 'Jane\nDoe\x00 <@channel>') == 'pagerduty:PLH1HKV (Jane Doe <@channel>)'
    assert people.person('slack', 'U1', None) == 'slack:U1'
    for bad in ('', 'U1 U2', '../x', 'x' * 65, None):
        with pytest.raises(ValidationError):
            people.person('slack', bad, 'x')
    with pytest.raises(ValidationError):
        people.person('irc', 'U1')
    assert people.is_person(ALICE) and people.is_person('cli:bob') and people.is_person('awx:admin (job 1)')
    assert not people.is_person('ansible') and not people.is_person('launcher:incident-launcher (run x)')
    assert not people.is_person('awx:schedule nightly (job 3)')


@pytest.mark.parametrize('variables, user, expected', [
    ({'awx_job_id': 42, 'awx_user_name': 'admin', 'awx_job_template_name': 'slurm-exporter respond'}, 'runner',
     'awx:admin (job 42, template slurm-exporter respond)'),
    ({'tower_job_id': 7, 'tower_user_name': 'ops'}, None, 'awx:ops (job 7)'),
    ({'awx_job_id': 9, 'awx_schedule_name': 'every minute', 'awx_job_template_name': 'escalate'}, 'runner',
     'awx:schedule every minute (job 9, template escalate)'),
    ({'awx_job_id': 10, 'awx_job_template_name': 'respond'}, None, 'awx:job 10 (template respond)'),
    ({'awx_job_id': 11, 'awx_user_name': 'amy', 'awx_workflow_job_name': 'breach'}, None, 'awx:amy (job 11, workflow breach)'),
    ({'incident_launched_by': 'incident-launcher', 'response_run_id': 'launcher-0a1b'}, 'root',
     'launcher:incident-launcher (run launcher-0a1b)'),
    ({'ansible_eda': {'ruleset': 'Alertmanager', 'rule': 'security'}}, 'eda', 'eda:Alertmanager/security'),
    ({}, 'alice', 'cli:alice'),
    ({}, None, 'ansible'),
    ({'awx_user_name': 'no job id'}, 'bob', 'cli:bob'),
    ({'awx_job_id': 1, 'awx_user_name': "{{ lookup('pipe', 'id') }}\n"}, None, "awx:{{ lookup('pipe', 'id') }} (job 1)"),
])
def test_the_audit_actor_of_each_path(variables, user, expected):
    assert people.audit_actor(variables, user) == expected


@pytest.fixture
def opened(tmp_path):
    store = IncidentStore(str(tmp_path / 'store'))
    service = IncidentService(store, load_catalog(), actor='launcher:incident-launcher')
    incident = service.open(type_name='security_breach').after
    return store, incident['id']


def test_an_acknowledgement_names_the_person_and_is_applied_once(opened):
    store, incident_id = opened
    event = {'source': 'slack', 'id': 'action:U0123ABCD:1.2:incident_acknowledge'}
    reply = people.apply(store, load_catalog(), people.Command('acknowledge', incident_id, ALICE, 'slack', event=event))
    assert reply.result == 'applied' and reply.record['acknowledged_by'] == ALICE and reply.record['acknowledged_at']
    assert store.audit_entries()[-1]['actor'] == ALICE
    again = people.apply(store, load_catalog(), people.Command('acknowledge', incident_id, 'pagerduty:P1', 'pagerduty'))
    assert again.result == 'unchanged' and 'already acknowledged by slack:U0123ABCD (alice)' in again.text


def test_notes_resolutions_and_decisions(opened):
    store, incident_id = opened
    catalog = load_catalog()
    event = {'source': 'pagerduty', 'id': 'ev-1'}
    note = people.Command('note', incident_id, 'pagerduty:P1 (Jane)', 'pagerduty', text='looked at the pods\x07', event=event)
    assert people.apply(store, catalog, note).result == 'applied'
    assert people.apply(store, catalog, note).result == 'unchanged'   # the same event: applied once
    record = store.read(incident_id)
    notes = [entry for entry in record['timeline'] if entry['kind'] == 'note']
    assert len(notes) == 1 and notes[0]['message'] == 'looked at the pods' and notes[0]['actor'] == 'pagerduty:P1 (Jane)'

    approve = people.Command('approve', incident_id, ALICE, 'slack', action='scale_down', phase='containment')
    reply = people.apply(store, catalog, approve)
    assert reply.result == 'applied' and 'next response run applies it' in reply.text
    reject = people.Command('reject', incident_id, 'slack:U2', 'slack', action='scale_down', text='no')
    reply = people.apply(store, catalog, reject)
    assert reply.result == 'refused' and 'already approved by slack:U0123ABCD (alice)' in reply.text
    assert approvals.find(store.read(incident_id), 'scale_down')['status'] == 'approved'

    status = people.apply(store, catalog, people.Command('status', incident_id, ALICE, 'slack'))
    assert status.result == 'unchanged' and incident_id in status.text and 'Not acknowledged' in status.text

    resolve = people.Command('resolve', incident_id, ALICE, 'slack', text='credentials rotated by hand, pods rebuilt')
    reply = people.apply(store, catalog, resolve)
    assert reply.result == 'applied' and reply.record['status'] == 'resolved'
    assert reply.record['resolution'] == 'credentials rotated by hand, pods rebuilt'
    assert people.apply(store, catalog, resolve).result == 'unchanged'


def test_bad_commands_are_refused_up_front(opened):
    store, incident_id = opened
    with pytest.raises(ValidationError, match='what fixed it'):
        people.Command('resolve', incident_id, ALICE, 'slack', text='  ')
    with pytest.raises(ValidationError, match='name the action'):
        people.Command('approve', incident_id, ALICE, 'slack')
    with pytest.raises(ValidationError):
        people.Command('acknowledge', '../../etc/passwd', ALICE, 'slack')
    with pytest.raises(ValidationError):
        people.Command('delete', incident_id, ALICE, 'slack')
    missing = people.apply(store, load_catalog(), people.Command('acknowledge', 'INC-20200101-0001', ALICE, 'slack'))
    assert missing.result == 'not_found'
