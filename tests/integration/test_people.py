# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""People in the loop, end to end: the webhook launcher as a real process receives requests signed as Slack and
PagerDuty sign them (tests/fakes/inbound.py), and the response runs as a real ansible-playbook against the emulated
cluster; the approval request goes to the fake Slack (Block Kit checked), the person's click comes back signed.

- a signed PagerDuty acknowledge sets acknowledged_at with the person as actor; forged, unsigned and replayed ones are
  refused with nothing written, and counted;
- a Slack approval unblocks a gated action (the response waits, the click arrives, the action runs as approved);
- without an answer the gated action does not run, the incident stays open and is handed over to a person; an approval
  given later is applied by the next response run.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse

import pytest
import requests

from tests.conftest import REPO_ROOT, finish, run_playbook, snapshot, write_playbook
from tests.fakes import inbound as signed
from tests.fakes.endpoints import Endpoints
from tests.fakes.services import Services
from tests.launcher_process import base_config, records, wait_for

NS = 'slurm-exporter'
SLACK_SECRET = 'people-slack-signing-secret-0123'
PD_OLD = 'people-pagerduty-secret-old-0001'
PD_NEW = 'people-pagerduty-secret-new-0002'


@pytest.fixture
def services():
    fake = Services()
    yield fake
    fake.stop()


@pytest.fixture
def endpoints():
    server = Endpoints()
    yield server
    server.stop()


def inbound_launcher(launchers, tmp_path, services):
    config = base_config(tmp_path, inbound={
        'slack': {'signing_secrets': [SLACK_SECRET], 'api_url': services.url + '/api', 'bot_token': services.slack_token,
                  'response_url_prefixes': [services.url + '/actions/', services.url + '/commands/']},
        'pagerduty': {'webhook_secrets': [PD_OLD, PD_NEW]},
    })
    return launchers(tmp_path, config).start()


def alert_payload(fingerprint):
    labels = {'alertname': 'SlurmExporterDown', 'incident_type': 'service_outage', 'component': 'incident-response',
              'job': 'slurm-exporter', 'namespace': NS}
    starts = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    return {'version': '4', 'status': 'firing', 'receiver': 'incident-response', 'groupLabels': {}, 'commonLabels': labels,
            'commonAnnotations': {}, 'externalURL': 'http://127.0.0.1:9093', 'groupKey': '{}:{}', 'truncatedAlerts': 0,
            'alerts': [{'status': 'firing', 'labels': labels, 'annotations': {'summary': 'the exporter is down'}, 'startsAt': starts,
                        'endsAt': '0001-01-01T00:00:00Z', 'generatorURL': 'http://127.0.0.1:9090/graph', 'fingerprint': fingerprint}]}


def respond(tmp_path, kube, services, endpoints, store, timeout, popen=False, name='alert.json', extra=None):
    """The service_outage response with its rolling restart gated by an approval, Slack pointed at the fake."""
    alert = tmp_path / name
    alert.write_text(json.dumps(alert_payload('b0b2c3d4e5f60001')))
    variables = {'incident_store': store, 'alert_file': str(alert), 'incident_wait_timeout': 20, 'incident_actor': 'pytest',
                 'incident_approvals': {'service_outage': ['rollout_restart']}, 'incident_approval_timeout': timeout,
                 'incident_slack': {'token': services.slack_token, 'api_url': services.url + '/api'},
                 'incident_exporter_health_url': endpoints.url + '/health', 'incident_prometheus_url': endpoints.url}
    variables.update(extra or {})
    return run_playbook(os.path.join(REPO_ROOT, 'playbooks', 'service_outage.yml'), variables, env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig},
                        inventory=os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'), timeout=600, popen=popen)


def approval_buttons(services):
    """The Approve / Reject buttons of the approval requests the fake Slack received."""
    found = {}
    for entry in services.received('/api/chat.postMessage'):
        for block in entry['body'].get('blocks') or []:
            for element in block.get('elements') or []:
                if element.get('action_id') in ('incident_approve', 'incident_reject'):
                    found[element['action_id']] = element['value']
    return found


def restarted(kube):
    template = kube.get('apps/v1', 'Deployment', NS, 'slurm-exporter')['spec']['template']
    return (template['metadata'].get('annotations') or {}).get('kubectl.kubernetes.io/restartedAt')


def actions(record):
    return {(action['name'], action['phase']): action for action in record['actions']}


def files(store):
    """The store's files and their digests, without the SQLite index (a cache that its readers may checkpoint)."""
    return {path: digest for path, digest in snapshot(store).items() if not path.startswith('.index' + os.sep)}


def healthy(endpoints):
    endpoints.series['up{job="slurm-exporter"}'] = [({'job': 'slurm-exporter', 'instance': 'a'}, 1)]


def test_a_signed_pagerduty_acknowledge_names_the_person_and_forgeries_are_refused(tmp_path, launchers, services):
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog  # noqa: E501 pylint: disable=import-outside-toplevel
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService  # pylint: disable=import-outside-toplevel
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore  # pylint: disable=import-outside-toplevel

    launcher = inbound_launcher(launchers, tmp_path, services)
    store = str(tmp_path / 'store')
    incident = IncidentService(IncidentStore(store), load_catalog(), actor='pytest').open(type_name='service_outage').after['id']
    url = launcher.url + '/pagerduty/webhook'
    body = signed.encode(signed.pagerduty_incident_event('incident.acknowledged', incident))

    # Forged (a secret the launcher does not know), unsigned, and a body changed after signing: 401, nothing written.
    before = files(store)
    forged = requests.post(url, data=body, headers=signed.pagerduty_headers(['not-the-secret-0123456789'], body), timeout=10)
    unsigned = requests.post(url, data=body, headers={'Content-Type': 'application/json'}, timeout=10)
    headers = signed.pagerduty_headers([PD_NEW], body)
    tampered = requests.post(url, data=body.replace(b'Jane Doe', b'Mallory'), headers=headers, timeout=10)
    assert (forged.status_code, unsigned.status_code, tampered.status_code) == (401, 401, 401)
    assert files(store) == before
    assert 'not-the-secret' not in launcher.log()

    # Signed by PagerDuty during a key rotation (the old and the new secret): applied as the person.
    headers = signed.pagerduty_headers([PD_OLD, PD_NEW], body)
    answer = requests.post(url, data=body, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()['status'] == 'applied', answer.text
    record = records(store)[0]
    assert record['acknowledged_at'] and record['acknowledged_by'] == 'pagerduty:PLH1HKV (Jane Doe)'
    assert any(entry['actor'] == 'pagerduty:PLH1HKV (Jane Doe)' for entry in record['timeline'])

    # The same delivery again (a replay of a captured request): refused, the record unchanged.
    before = files(store)
    replay = requests.post(url, data=body, headers=headers, timeout=10)
    assert replay.status_code == 409 and replay.json()['reason'] == 'replayed'
    assert files(store) == before

    metrics = launcher.metrics()
    assert metrics['incident_launcher_inbound_refused_total{reason="signature_invalid",source="pagerduty"}'] == 2
    assert metrics['incident_launcher_inbound_refused_total{reason="signature_missing",source="pagerduty"}'] == 1
    assert metrics['incident_launcher_inbound_refused_total{reason="replayed",source="pagerduty"}'] == 1
    for secret in (PD_OLD, PD_NEW, SLACK_SECRET):
        assert secret not in launcher.log()


def test_a_slack_approval_unblocks_the_gated_action(tmp_path, kube, launchers, services, endpoints):
    healthy(endpoints)
    launcher = inbound_launcher(launchers, tmp_path, services)
    store = str(tmp_path / 'store')
    # PagerDuty too: the incident is paged (Events API), the approval request becomes a note on it (REST API).
    pagerduty = {'routing_keys': {'critical': 'c' * 32, 'high': 'h' * 32, 'medium': 'm' * 32, 'low': 'l' * 32},
                 'url': services.url + '/v2/enqueue', 'api_token': services.pagerduty_token, 'api_url': services.url,
                 'from_email': 'incident-bot@example.org'}
    process = respond(tmp_path, kube, services, endpoints, store, timeout=120, popen=True, extra={'incident_pagerduty': pagerduty})
    try:
        wait_for(lambda: 'incident_approve' in approval_buttons(services) or process.poll() is not None, 120,
                 'the approval request on Slack')
        assert process.poll() is None, finish(process)
        # While the response waits, the gated action has not run.
        assert restarted(kube) is None
        value = approval_buttons(services)['incident_approve']
        incident, phase, action = value.split(':')
        assert (phase, action) == ('recovery', 'rollout_restart')

        # A forged click does nothing; the click signed with the app's signing secret approves, as the person.
        form = signed.slack_block_actions('incident_approve', value, services.response_url('approve'), text='Approve')
        forged = requests.post(launcher.url + '/slack/interactivity', data=form,
                               headers=signed.slack_headers('forged-slack-secret-000000000', form), timeout=10)
        assert forged.status_code == 401
        stale = requests.post(launcher.url + '/slack/interactivity', data=form,
                              headers=signed.slack_headers(SLACK_SECRET, form, timestamp=time.time() - 301), timeout=10)
        assert stale.status_code == 401
        assert records(store)[0]['approvals'][0]['status'] == 'pending'
        answer = requests.post(launcher.url + '/slack/interactivity', data=form, headers=signed.slack_headers(SLACK_SECRET, form), timeout=10)
        assert answer.status_code == 200, answer.text
        run = finish(process, timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert run.rc == 0, run
    record = records(store)[0]
    approval = record['approvals'][0]
    assert approval['status'] == 'approved' and approval['decided_by'] == 'slack:U0123ABCD (alice)' and approval['via'] == 'slack'
    assert actions(record)[('rollout_restart', 'recovery')]['result'] == 'success'
    assert restarted(kube) and record['status'] == 'resolved'
    # The approval request reached PagerDuty as a note on the paged incident; the REST token is in no output.
    paged = services.pagerduty_incident(incident)
    assert paged and any('rollout_restart' in note['content'] for note in paged['notes']), paged
    sent = {(item['template'], item['channel']): item['status'] for item in record['notifications']}
    assert sent[('approval', 'slack')] == 'sent' and sent[('approval', 'pagerduty')] == 'sent', sent
    assert record['x_pagerduty_incident']['id'] == paged['id']
    assert services.pagerduty_token not in run.stdout + run.stderr
    # The person was answered on the interaction's response URL (Slack's contract enforced by the fake).
    replies = services.received(urllib.parse.urlsplit(services.response_url('approve')).path)
    assert replies and 'approved' in replies[0]['body']['text'] and incident in replies[0]['body']['text']


def test_without_an_answer_the_action_does_not_run_and_a_late_approval_resumes(tmp_path, kube, services, endpoints):
    healthy(endpoints)
    store = str(tmp_path / 'store')
    run = respond(tmp_path, kube, services, endpoints, store, timeout=3)
    assert run.rc != 0
    record = records(store)[0]
    assert record['status'] != 'resolved'
    blocked = actions(record)[('rollout_restart', 'recovery')]
    assert blocked['result'] == 'blocked' and 'no approval within 3 s' in json.dumps(blocked['details'])
    assert ('verify_health', 'recovery') not in actions(record)
    assert restarted(kube) is None
    approval = record['approvals'][0]
    assert approval['status'] == 'pending' and approval['timed_out_at']
    # A person is told: the approval request, then the hand-over (a status update saying what stopped), both on Slack.
    sent = [(item['template'], item['channel'], item['status']) for item in record['notifications']]
    assert sent[-2:] == [('approval', 'slack', 'sent'), ('status_update', 'slack', 'sent')], sent
    handover = json.dumps(services.received('/api/chat.postMessage')[-1]['body'])
    assert 'rollout_restart' in handover and 'no approval within 3 s' in handover, handover

    # A person approves later from the command line (as the OS user); the next response run resumes at that action.
    person = write_playbook(tmp_path, [{'name': 'approve', 'slurm_exporter.incident_response.incident_approval': {
        'id': record['id'], 'action': 'rollout_restart', 'state': 'approved', 'reason': 'checked the nodes',
        'actor': "{{ lookup('slurm_exporter.incident_response.audit_actor') }}", 'store': store}}], name='approve.yml')
    checked = run_playbook(person, check=True)
    assert checked.rc == 0 and records(store)[0]['approvals'][0]['status'] == 'pending', checked
    approved = run_playbook(person)
    assert approved.rc == 0, approved
    assert records(store)[0]['approvals'][0]['decided_by'].startswith('cli:')
    again = respond(tmp_path, kube, services, endpoints, store, timeout=3, name='again.json')
    assert again.rc == 0, again
    record = records(store)[0]
    assert actions(record)[('rollout_restart', 'recovery')]['result'] == 'success' and restarted(kube)


def test_a_drill_waits_for_a_persons_acknowledgement_and_scores_it(tmp_path, kube, launchers, services):
    launcher = inbound_launcher(launchers, tmp_path, services)
    store = str(tmp_path / 'store')
    variables = {'incident_store': store, 'incident_wait_timeout': 20, 'drill_scenario': 'service_outage', 'drill_human_ack': True,
                 'drill_ack_timeout': 120, 'drill_ack_poll_interval': 1,
                 'incident_drill_slack': {'webhook_url': services.slack_webhook_url}}
    process = run_playbook(os.path.join(REPO_ROOT, 'playbooks', 'drill.yml'), variables, env={'K8S_AUTH_KUBECONFIG': kube.kubeconfig},
                           inventory=os.path.join(REPO_ROOT, 'inventories', 'local', 'hosts.yml'), popen=True)
    try:
        # The drill does not acknowledge itself: the automation's plan ran to its end, nobody acknowledged yet.
        wait_for(lambda: (records(store) and ('verify_health', 'recovery') in actions(records(store)[0])) or process.poll() is not None,
                 400, 'the drill response to finish its plan')
        assert process.poll() is None, finish(process)
        incident = records(store)[0]
        assert incident['drill'] and incident['acknowledged_at'] is None
        command = signed.slack_command('ack %s' % incident['id'], services.url + '/commands/T0001/9/drill',
                                       user={'id': 'U0DRILL01', 'name': 'oncall'})
        answer = requests.post(launcher.url + '/slack/commands', data=command, headers=signed.slack_headers(SLACK_SECRET, command), timeout=10)
        assert answer.status_code == 200 and 'acknowledged by slack:U0DRILL01 (oncall)' in answer.json()['text'], answer.text
        run = finish(process, timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert run.rc == 0, run
    result = run.result("Drill - score it against the catalog's targets")['ansible_facts']['drill_result']
    assert result['acknowledged_by'] == 'slack:U0DRILL01 (oncall)' and result['acknowledged_by_person'] is True
    assert result['stages'][0]['by'] == 'slack:U0DRILL01 (oncall)' and result['stages'][0]['verdict'] == 'met'
    with open(run.result('Drill - write the drill report')['markdown'], encoding='utf-8') as handle:
        assert 'Acknowledged by: slack:U0DRILL01 (oncall) (a person)' in handle.read()
