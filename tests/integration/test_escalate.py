# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/escalate.yml for real: overdue incidents escalated once per level, the next tier told, drills never paged."""

from __future__ import annotations

import datetime
import json
import os

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore
from tests.conftest import REPO_ROOT, run_playbook, snapshot
from tests.fakes.services import Services

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'escalate.yml')
INVENTORY = os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml')
ROUTING_CRITICAL = 'c' * 32
MINUTE = datetime.timedelta(minutes=1)


def seed(store):
    """Incidents opened (acknowledged at once) at times around their thresholds, relative to now."""
    now = datetime.datetime.now(datetime.timezone.utc)
    clock = {'now': now}
    svc = IncidentService(IncidentStore(store), load_catalog(), actor='seed', clock=lambda: clock['now'])
    ids = {}
    for index, (name, age, severity, drill) in enumerate((('p1_overdue', 31 * MINUTE, 'critical', False),
                                                         ('p1_in_time', 25 * MINUTE, 'critical', False),
                                                         ('p2_overdue', 121 * MINUTE, 'high', False),
                                                         ('p2_in_time', 100 * MINUTE, 'high', False),
                                                         ('drill', 60 * MINUTE, 'critical', True))):
        clock['now'] = now - age
        outcome = svc.open(type_name='service_outage', severity=severity, fingerprint='f%d' % index, drill=drill,
                           title='exporter down (%s)' % name)
        svc.acknowledge(outcome.after['id'])
        ids[name] = outcome.after['id']
    return ids


def read(store, incident_id):
    with open(os.path.join(store, 'incident-%s.json' % incident_id), encoding='utf-8') as handle:
        return json.load(handle)


def test_escalate_exactly_the_overdue_once(tmp_path):
    store = str(tmp_path / 'store')
    ids = seed(store)
    services = Services()
    try:
        extra = {'incident_store': store,
                 'incident_slack': {'token': services.slack_token, 'api_url': services.url + '/api'},
                 'incident_pagerduty': {'routing_keys': {'critical': ROUTING_CRITICAL}, 'url': services.url + '/v2/enqueue'},
                 'incident_escalation_tiers': ['team lead', 'security lead'],
                 'incident_escalation_mentions': {'team lead': '<!subteam^S0TEAMLEAD>'}}

        before = snapshot(store)
        check = run_playbook(PLAYBOOK, extra_vars=extra, check=True, inventory=INVENTORY)
        assert check.rc == 0, check
        planned = check.result('Escalation - raise every overdue incident by one level')['escalated']
        assert sorted(item['id'] for item in planned) == sorted([ids['p1_overdue'], ids['p2_overdue']])
        assert snapshot(store) == before and services.requests == []

        run = run_playbook(PLAYBOOK, extra_vars=extra, inventory=INVENTORY)
        assert run.rc == 0, run
        escalated = run.result('Escalation - raise every overdue incident by one level')['escalated']
        assert sorted((item['id'], item['to'], item['tier']) for item in escalated) == sorted(
            [(ids['p1_overdue'], 1, 'team lead'), (ids['p2_overdue'], 1, 'team lead')])
        for name, level in (('p1_overdue', 1), ('p2_overdue', 1), ('p1_in_time', 0), ('p2_in_time', 0), ('drill', 0)):
            assert read(store, ids[name])['escalation_level'] == level, name
        record = read(store, ids['p1_overdue'])
        entries = [entry for entry in record['timeline'] if entry['kind'] == 'escalation']
        assert len(entries) == 1 and entries[0]['actor'] == 'escalation-job'
        assert entries[0]['message'].startswith('Escalated to level 1: open past escalation_due_at') and 'next tier: team lead' in entries[0]['message']
        assert [(n['template'], n['channel'], n['status']) for n in record['notifications']] == [
            ('escalation', 'slack', 'sent'), ('escalation', 'pagerduty', 'sent')]

        slack = [entry['body'] for entry in services.received('/api/chat.postMessage')]
        assert len(slack) == 2
        assert all(body['blocks'][1]['text']['text'].startswith('<!subteam^S0TEAMLEAD> ') for body in slack)
        assert all('ESCALATED to level 1 (team lead)' in body['blocks'][1]['text']['text'] for body in slack)
        pages = [entry['body'] for entry in services.received('/v2/enqueue')]
        # only the critical incident has a routing key; the P2 has none configured and is not paged
        assert [(p['routing_key'], p['event_action'], p['dedup_key']) for p in pages] == [(ROUTING_CRITICAL, 'trigger', ids['p1_overdue'])]
        assert pages[0]['payload']['custom_details']['escalation']['level'] == 1
        assert services.slack_token not in run.stdout + run.stderr

        # run again at once (the cron minute after): nothing is due, nothing is sent
        sent = len(services.requests)
        again = run_playbook(PLAYBOOK, extra_vars=extra, inventory=INVENTORY)
        assert again.rc == 0, again
        assert again.result('Escalation - raise every overdue incident by one level')['escalated'] == []
        assert len(services.requests) == sent
        assert read(store, ids['p1_overdue'])['escalation_level'] == 1
    finally:
        services.stop()


def test_bad_tiers_fail_clearly(tmp_path):
    run = run_playbook(PLAYBOOK, extra_vars={'incident_store': str(tmp_path / 'store'), 'incident_escalation_tiers': []}, inventory=INVENTORY)
    assert run.rc != 0
    assert 'tiers: expected a non-empty list of names' in run.stdout
