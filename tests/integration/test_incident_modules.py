# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The incident and incident_info modules run by real ansible-playbook processes."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import finish, run_playbook, snapshot, write_playbook

pytestmark = pytest.mark.integration

GROUP = 'group/slurm_exporter.incident_response.incident_response'
INCIDENT = 'slurm_exporter.incident_response.incident'
INFO = 'slurm_exporter.incident_response.incident_info'


def defaults(store, **extra):
    return {GROUP: dict({'store': store}, **extra)}


def alert(fingerprint, alertname='SlurmExporterDown', status='firing', **labels):
    return {'fingerprint': fingerprint, 'status': status, 'labels': dict({'alertname': alertname}, **labels),
            'annotations': {'summary': 'exporter down'}, 'startsAt': '2026-01-31T11:58:00.000000001Z'}


def test_lifecycle_through_the_action_group(tmp_path, store_dir):
    # The payload is read as data from a file. Passing it with -e would make Ansible treat its strings as
    # trusted templates (ansible-core 2.19 trusts extra vars), so a label could run a lookup.
    payload_file = tmp_path / 'alert.json'
    payload_file.write_text(json.dumps({'alerts': [alert('a1b2c3', injected="{{ lookup('pipe', 'id') }}")]}))
    tasks = [
        {'name': 'open', INCIDENT: {'alerts': '{{ payload.alerts }}'}, 'register': 'opened'},
        {'name': 'attach', INCIDENT: {'alerts': '{{ payload.alerts }}'}},
        {'name': 'identify', INCIDENT: {'state': 'update', 'id': '{{ opened.id }}', 'status': 'identified',
                                        'actions': [{'name': 'rollout_restart', 'phase': 'recovery', 'changed': True}]}},
        {'name': 'ack', INCIDENT: {'state': 'acknowledge', 'fingerprint': 'a1b2c3', 'actor': 'alice'}},
        {'name': 'escalate', INCIDENT: {'state': 'escalate', 'id': '{{ opened.id }}', 'reason': 'test'}},
        {'name': 'resolve', INCIDENT: {'state': 'resolve', 'id': '{{ opened.id }}', 'resolution': 'restarted',
                                       'root_cause': 'OOM', 'follow_ups': [{'title': 'raise memory limit'}]}},
        {'name': 'resolve again', INCIDENT: {'state': 'resolve', 'id': '{{ opened.id }}'}},
        {'name': 'list', INFO: {'status': ['resolved'], 'type': ['service_outage']}},
        {'name': 'get', INFO: {'id': '{{ opened.id }}'}},
    ]
    play_vars = {'payload': "{{ lookup('ansible.builtin.file', alert_file) | ansible.builtin.from_json }}"}
    run = run_playbook(write_playbook(tmp_path, tasks, play_vars=play_vars, module_defaults=defaults(store_dir)),
                       extra_vars={'alert_file': str(payload_file)})
    assert run.rc == 0, run
    opened = run.result('open')
    assert opened['changed'] and opened['created'] and opened['id'].startswith('INC-')
    attach = run.result('attach')
    assert attach['attached'] and not attach['changed'] and attach['id'] == opened['id']
    assert run.result('ack')['incident']['acknowledged_by'] == 'alice'
    assert run.result('escalate')['incident']['escalation_level'] == 1
    assert run.result('resolve')['incident']['status'] == 'resolved'
    assert run.result('resolve again')['changed'] is False
    listed = run.result('list')
    assert listed['count'] == 1 and listed['incidents'][0]['id'] == opened['id']
    record = run.result('get')['incident']
    assert record['alerts'][0]['labels']['injected'] == "{{ lookup('pipe', 'id') }}"  # stored literally, never run
    kinds = [entry['kind'] for entry in record['timeline']]
    for kind in ('opened', 'alert', 'status', 'action', 'acknowledgement', 'escalation', 'resolution', 'follow_up'):
        assert kind in kinds
    with open(os.path.join(store_dir, 'incident-%s.json' % opened['id']), encoding='utf-8') as handle:
        assert json.load(handle) == record
    audit = [json.loads(line)['operation'] for line in open(os.path.join(store_dir, 'audit.log'), encoding='utf-8')]
    assert audit == ['open', 'update', 'acknowledge', 'escalate', 'resolve']


def test_catalog_override_from_vars(tmp_path, store_dir):
    tasks = [{'name': 'open', INCIDENT: {'type': 'api_failure'}}]
    catalog = {'types': {'api_failure': {'severity': 'critical', 'response_time': '5m'}}}
    playbook = write_playbook(tmp_path, tasks, play_vars={'incident_catalog': catalog},
                              module_defaults=defaults(store_dir, catalog='{{ incident_catalog }}'))
    run = run_playbook(playbook)
    assert run.rc == 0, run
    record = run.result('open')['incident']
    assert (record['severity'], record['priority']) == ('critical', 'P1')
    bad = write_playbook(tmp_path, tasks, name='bad.yml',
                         module_defaults=defaults(store_dir, catalog={'types': {'api_failure': {'severity': 'urgent'}}}))
    failed = run_playbook(bad)
    assert failed.rc != 0
    assert 'incident_catalog.types.api_failure.severity: unknown severity' in failed.result('open')['msg']


def test_check_mode_and_diff(tmp_path, store_dir):
    tasks = [{'name': 'open', INCIDENT: {'type': 'data_loss'}}]
    playbook = write_playbook(tmp_path, tasks, module_defaults=defaults(store_dir))
    checked = run_playbook(playbook, check=True, diff=True)
    assert checked.rc == 0, checked
    result = checked.result('open')
    assert result['changed'] and result['id'].endswith('-0001')
    assert '"type": "data_loss"' in result['diff']['after']
    assert not os.path.exists(store_dir)
    assert run_playbook(playbook).rc == 0
    before = snapshot(store_dir)
    update = [{'name': 'update', INCIDENT: {'state': 'update', 'id': result['id'], 'status': 'identified'}}]
    checked = run_playbook(write_playbook(tmp_path, update, module_defaults=defaults(store_dir), name='u.yml'), check=True, diff=True)
    assert checked.rc == 0 and checked.result('update')['changed'], checked
    assert '"status": "identified"' in checked.result('update')['diff']['after']
    assert snapshot(store_dir) == before


def test_sixteen_concurrent_playbooks_get_distinct_ids(tmp_path, store_dir):
    processes = []
    for number in range(16):
        tasks = [{'name': 'open', INCIDENT: {'alerts': [alert('%04x' % (number + 1))]}}]
        playbook = write_playbook(tmp_path, tasks, module_defaults=defaults(store_dir), name='p%d.yml' % number)
        processes.append(run_playbook(playbook, popen=True))
    runs = [finish(process) for process in processes]
    assert all(run.rc == 0 for run in runs), [run for run in runs if run.rc][:1]
    ids = [run.result('open')['id'] for run in runs]
    assert len(set(ids)) == 16
    assert sorted(int(incident_id[-4:]) for incident_id in ids) == list(range(1, 17))
    listing = run_playbook(write_playbook(tmp_path, [{'name': 'list', INFO: {}}], module_defaults=defaults(store_dir), name='l.yml'))
    assert listing.result('list')['count'] == 16


def test_sixteen_concurrent_updates_lose_nothing(tmp_path, store_dir):
    opened = run_playbook(write_playbook(tmp_path, [{'name': 'open', INCIDENT: {'type': 'service_outage'}}],
                                         module_defaults=defaults(store_dir), name='open.yml'))
    incident_id = opened.result('open')['id']
    processes = []
    for number in range(16):
        tasks = [{'name': 'note', INCIDENT: {'state': 'update', 'id': incident_id,
                                             'timeline': [{'text': 'writer %d' % number}]}}]
        processes.append(run_playbook(write_playbook(tmp_path, tasks, module_defaults=defaults(store_dir), name='w%d.yml' % number),
                                      popen=True))
    runs = [finish(process) for process in processes]
    assert all(run.rc == 0 for run in runs), [run for run in runs if run.rc][:1]
    with open(os.path.join(store_dir, 'incident-%s.json' % incident_id), encoding='utf-8') as handle:
        record = json.load(handle)
    messages = {entry['message'] for entry in record['timeline']}
    assert {'writer %d' % number for number in range(16)} <= messages
    assert record['revision'] == 17


def test_bad_input_fails_clearly_and_changes_nothing(tmp_path, store_dir):
    seeded = run_playbook(write_playbook(tmp_path, [
        {'name': 'open', INCIDENT: {'type': 'api_failure'}},
        {'name': 'open resolved', INCIDENT: {'type': 'api_failure'}, 'register': 'second'},
        {'name': 'resolve', INCIDENT: {'state': 'resolve', 'id': '{{ second.id }}', 'resolution': 'fixed'}},
    ], module_defaults=defaults(store_dir), name='seed.yml'))
    assert seeded.rc == 0, seeded
    first, second = seeded.result('open')['id'], seeded.result('open resolved')['id']
    # a truncated record: the third incident's file cut in half
    truncated = os.path.join(store_dir, 'incident-%s' % first.replace('0001', '0003')) + '.json'
    with open(os.path.join(store_dir, 'incident-%s.json' % first), 'rb') as source:
        content = source.read()
    with open(truncated, 'wb') as handle:
        handle.write(content[: len(content) // 3])
    blocker = os.path.join(str(tmp_path), 'a-file')
    with open(blocker, 'w', encoding='utf-8') as handle:
        handle.write('not a directory')
    cases = {
        'unknown type': ({INCIDENT: {'type': 'sabotage'}}, "unknown incident type 'sabotage'"),
        'invalid transition': ({INCIDENT: {'state': 'update', 'id': second, 'status': 'monitoring'}},
                               'cannot move from resolved to monitoring'),
        'truncated record': ({INCIDENT: {'state': 'update', 'id': first.replace('0001', '0003'), 'summary': 'x'}},
                             'is not valid JSON'),
        'path in id': ({INCIDENT: {'state': 'update', 'id': '../../../etc/passwd', 'summary': 'x'}}, 'is not an incident id'),
        'path in fingerprint': ({INCIDENT: {'alerts': [{'fingerprint': '../../x', 'labels': {'alertname': 'SlurmExporterDown'}}]}},
                                'is not an alert fingerprint'),
        'path in info id': ({INFO: {'id': 'INC-20260131-0001/../../x'}}, 'is not an incident id'),
        'unknown status filter': ({INFO: {'type': ['nope']}}, "unknown incident type 'nope'"),
        'missing id': ({INCIDENT: {'state': 'escalate'}}, 'needs id'),
        'store is a file': ({INCIDENT: {'type': 'api_failure', 'store': blocker}}, 'exists but is not a directory'),
        'store under a file': ({INCIDENT: {'type': 'api_failure', 'store': blocker + '/sub'}}, 'cannot create the store directory'),
        'unclassifiable alert': ({INCIDENT: {'alerts': [{'labels': {'alertname': 'Watchdog'}}]}}, 'cannot classify'),
    }
    tasks = [dict(body, name=name, ignore_errors=True) for name, (body, _message) in cases.items()]
    before = snapshot(store_dir)
    run = run_playbook(write_playbook(tmp_path, tasks, module_defaults=defaults(store_dir), name='bad.yml'))
    for name, (_body, message) in cases.items():
        result = run.result(name)
        assert result.get('failed'), (name, result)
        assert message in result['msg'], (name, result['msg'])
        assert 'Traceback' not in json.dumps(result), name
    assert snapshot(store_dir) == before
    with open(blocker, encoding='utf-8') as handle:
        assert handle.read() == 'not a directory'
