# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher's inbound receivers in-process on a loopback port: signed requests applied as the person, the rest
refused, counted and never written to disk; the Slack replies and the resolution dialog against the fake Slack."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time

import pytest

from incident_launcher.config import build
from incident_launcher.inbound import parse_slash
from incident_launcher.log import JsonLogger
from incident_launcher.server import Launcher
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore
from tests.conftest import snapshot
from tests.fakes import inbound as signed
from tests.fakes.services import Services

TOKEN = 'inbound-test-token-0d9e'
SLACK_SECRET = 'slack-signing-secret-0123456789ab'
PD_OLD = 'pagerduty-secret-old-0123456789'
PD_NEW = 'pagerduty-secret-new-9876543210'


@pytest.fixture
def services():
    fake = Services()
    yield fake
    fake.stop()


@pytest.fixture
def serve(tmp_path, services):
    started = []

    def start(**inbound):
        settings = {'slack': {'signing_secrets': [SLACK_SECRET], 'response_url_prefixes': [services.url + '/actions/',
                                                                                           services.url + '/commands/'],
                              'api_url': services.url + '/api', 'bot_token': services.slack_token},
                    'pagerduty': {'webhook_secrets': [PD_NEW]}}
        for key, value in inbound.items():
            settings[key] = dict(settings[key], **value)
        data = {'listen': {'address': '127.0.0.1', 'port': 0}, 'auth': {'bearer_token': TOKEN}, 'backend': 'record',
                'spool': {'dir': str(tmp_path / 'spool')}, 'incident_store': str(tmp_path / 'store'),
                'limits': {'request_timeout': 2.0}, 'workers': {'concurrency': 1, 'shutdown_grace': 1}, 'inbound': settings}
        stream = io.StringIO()
        launcher = Launcher(build(data, base_dir=str(tmp_path)), JsonLogger(stream=stream))
        launcher.port = launcher.start()[1]
        launcher.log_stream = stream
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.stop()


@pytest.fixture
def incident(tmp_path):
    service = IncidentService(IncidentStore(str(tmp_path / 'store')), load_catalog(), actor='launcher:incident-launcher')
    return service.open(type_name='security_breach').after['id']


def post(launcher, path, body, headers):
    connection = http.client.HTTPConnection('127.0.0.1', launcher.port, timeout=10)
    try:
        connection.request('POST', path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)
    finally:
        connection.close()


def record(tmp_path, incident_id):
    return IncidentStore(str(tmp_path / 'store')).read(incident_id)


def refused(launcher, source, reason):
    return launcher.metrics.get('incident_launcher_inbound_refused_total', source=source, reason=reason)


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_signed_pagerduty_acknowledge_names_the_person(serve, tmp_path, incident):
    launcher = serve()
    body = signed.encode(signed.pagerduty_incident_event('incident.acknowledged', incident))
    status, answer = post(launcher, '/pagerduty/webhook', body, signed.pagerduty_headers([PD_NEW], body))
    assert status == 200 and answer['status'] == 'applied', answer
    item = record(tmp_path, incident)
    assert item['acknowledged_by'] == 'pagerduty:PLH1HKV (Jane Doe)' and item['acknowledged_at']
    assert item['x_pagerduty_incident']['id'] == 'Q000001PD'
    assert launcher.metrics.get('incident_launcher_inbound_commands_total', source='pagerduty', verb='acknowledge', result='applied') == 1


def test_forged_replayed_and_stale_requests_are_refused_counted_and_not_written(serve, tmp_path, incident):
    launcher = serve()
    before = snapshot(tmp_path / 'store')
    body = signed.encode(signed.pagerduty_incident_event('incident.acknowledged', incident))
    forged = signed.pagerduty_headers(['not-the-secret-0123456789'], body)
    assert post(launcher, '/pagerduty/webhook', body, forged)[0] == 401
    unsigned = {'Content-Type': 'application/json'}
    assert post(launcher, '/pagerduty/webhook', body, unsigned)[0] == 401
    stale = signed.encode(signed.pagerduty_incident_event('incident.acknowledged', incident, occurred_offset=-7200))
    assert post(launcher, '/pagerduty/webhook', stale, signed.pagerduty_headers([PD_NEW], stale))[1]['reason'] == 'stale'
    assert snapshot(tmp_path / 'store') == before
    assert refused(launcher, 'pagerduty', 'signature_invalid') == 1 and refused(launcher, 'pagerduty', 'signature_missing') == 1
    assert refused(launcher, 'pagerduty', 'stale') == 1
    # The genuine one, then the same delivery again (a replay): applied once, the replay refused.
    headers = signed.pagerduty_headers([PD_NEW], body)
    assert post(launcher, '/pagerduty/webhook', body, headers)[0] == 200
    status, answer = post(launcher, '/pagerduty/webhook', body, headers)
    assert status == 409 and answer['reason'] == 'replayed' and refused(launcher, 'pagerduty', 'replayed') == 1
    acknowledgements = [entry for entry in record(tmp_path, incident)['timeline'] if entry['kind'] == 'acknowledgement']
    assert len(acknowledgements) == 1
    # Slack: forged, unsigned, replayed after the window.
    form = signed.slack_block_actions('incident_acknowledge', incident, 'https://hooks.slack.com/actions/T/1/x')
    assert post(launcher, '/slack/interactivity', form, signed.slack_headers('wrong-secret-0123456789abc', form))[0] == 401
    assert post(launcher, '/slack/interactivity', form, {'Content-Type': 'application/x-www-form-urlencoded'})[0] == 401
    old = signed.slack_headers(SLACK_SECRET, form, timestamp=time.time() - 600)
    assert post(launcher, '/slack/interactivity', form, old)[1]['reason'] == 'stale'
    assert refused(launcher, 'slack', 'stale') == 1 and refused(launcher, 'slack', 'signature_invalid') == 1
    text = launcher.metrics.render()
    assert 'incident_launcher_inbound_refused_total{reason="replayed",source="pagerduty"} 1' in text
    assert SLACK_SECRET not in launcher.log_stream.getvalue() and PD_NEW not in launcher.log_stream.getvalue()


def test_signature_headers_are_checked_before_the_body_is_read(serve):
    """An unsigned request is answered 401 from its headers: the 1 MB it announces is never waited for."""
    launcher = serve()
    with socket.create_connection(('127.0.0.1', launcher.port), timeout=5) as sock:
        sock.sendall(b'POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n'
                     b'Content-Length: 200000\r\n\r\n')
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b'HTTP/1.1 401') and time.monotonic() - started < 1.5


def test_key_rotation_on_the_pagerduty_side_and_on_ours(serve, tmp_path, incident):
    launcher = serve(pagerduty={'webhook_secrets': [PD_OLD, PD_NEW]})
    note = signed.encode(signed.pagerduty_note_event('pods drained, looking at the audit log', title='P1 CRITICAL %s: breach' % incident))
    # PagerDuty signs with both secrets while the subscription's secret is rotated; we know both.
    assert post(launcher, '/pagerduty/webhook', note, signed.pagerduty_headers([PD_OLD, PD_NEW], note))[0] == 200
    # Only the old one (before PagerDuty rotated), only the new one (after): both accepted.
    for secrets in ([PD_OLD], [PD_NEW]):
        event = signed.encode(signed.pagerduty_note_event('note signed with %d secret' % len(secrets), title='P1 %s' % incident))
        assert post(launcher, '/pagerduty/webhook', event, signed.pagerduty_headers(secrets, event))[1]['status'] == 'applied'
    notes = [entry['message'] for entry in record(tmp_path, incident)['timeline'] if entry['kind'] == 'note']
    assert notes == ['pods drained, looking at the audit log', 'note signed with 1 secret', 'note signed with 1 secret']


def test_pagerduty_notes_decide_approvals_and_automation_is_not_a_person(serve, tmp_path, incident):
    launcher = serve(pagerduty={'approvers': ['PBOSS01']})
    title = 'P1 CRITICAL %s: breach' % incident
    event = signed.encode(signed.pagerduty_note_event('approve scale_down', title=title))
    answer = post(launcher, '/pagerduty/webhook', event, signed.pagerduty_headers([PD_NEW], event))[1]
    assert answer['status'] == 'forbidden'
    boss = dict(signed.PD_USER, id='PBOSS01', summary='The Boss')
    event = signed.encode(signed.pagerduty_note_event('approve containment:scale_down ok by me', title=title, agent=boss))
    answer = post(launcher, '/pagerduty/webhook', event, signed.pagerduty_headers([PD_NEW], event))[1]
    assert answer['status'] == 'applied'
    approval = record(tmp_path, incident)['approvals'][0]
    assert (approval['status'], approval['decided_by'], approval['reason'], approval['phase']) == \
        ('approved', 'pagerduty:PBOSS01 (The Boss)', 'ok by me', 'containment')
    # Our own resolve event comes back from PagerDuty with a service as agent: nothing changes.
    service = {'id': 'PF9KMXH', 'type': 'service_reference', 'summary': 'slurm-exporter'}
    event = signed.encode(signed.pagerduty_incident_event('incident.resolved', incident, agent=service))
    answer = post(launcher, '/pagerduty/webhook', event, signed.pagerduty_headers([PD_NEW], event))[1]
    assert answer['status'] == 'ignored' and record(tmp_path, incident)['status'] != 'resolved'
    ping = signed.encode({'event': {'id': 'p1', 'event_type': 'pagey.ping', 'occurred_at': signed._now(), 'data': {}}})  # pylint: disable=protected-access
    assert post(launcher, '/pagerduty/webhook', ping, signed.pagerduty_headers([PD_NEW], ping))[0] == 200


def test_slack_buttons_commands_and_the_resolution_dialog(serve, tmp_path, incident, services):
    launcher = serve()
    reply_url = services.response_url('a')
    form = signed.slack_block_actions('incident_acknowledge', incident, reply_url)
    status, answer = post(launcher, '/slack/interactivity', form, signed.slack_headers(SLACK_SECRET, form))
    assert status == 200 and answer is None
    assert record(tmp_path, incident)['acknowledged_by'] == 'slack:U0123ABCD (alice)'
    assert wait_for(lambda: services.received('/actions/T0001/a/Zx9a'))
    assert 'acknowledged by slack:U0123ABCD (alice)' in services.received('/actions/T0001/a/Zx9a')[0]['body']['text']

    value = '%s:containment:scale_down' % incident
    form = signed.slack_block_actions('incident_reject', value, reply_url, user={'id': 'U0BOB0001', 'name': 'bob'})
    assert post(launcher, '/slack/interactivity', form, signed.slack_headers(SLACK_SECRET, form))[0] == 200
    assert record(tmp_path, incident)['approvals'][0]['decided_by'] == 'slack:U0BOB0001 (bob)'
    form = signed.slack_block_actions('incident_approve', '../../etc/passwd', reply_url)
    assert post(launcher, '/slack/interactivity', form, signed.slack_headers(SLACK_SECRET, form))[0] == 200
    assert wait_for(lambda: len(services.received('/actions/T0001/a/Zx9a')) == 3)
    assert 'Not done' in services.received('/actions/T0001/a/Zx9a')[2]['body']['text']

    command = signed.slack_command('status %s' % incident.lower(), services.url + '/commands/T0001/1/x')
    status, answer = post(launcher, '/slack/commands', command, signed.slack_headers(SLACK_SECRET, command))
    assert status == 200 and answer['response_type'] == 'ephemeral' and 'scale_down' in answer['text'] and incident in answer['text']
    command = signed.slack_command('note %s restarted the  audit\ncollector' % incident, services.url + '/commands/T0001/1/x')
    answer = post(launcher, '/slack/commands', command, signed.slack_headers(SLACK_SECRET, command))[1]
    assert answer['response_type'] == 'in_channel'
    assert record(tmp_path, incident)['timeline'][-1]['message'] == 'restarted the  audit collector'
    answer = post(launcher, '/slack/commands', signed.slack_command('', 'x'), signed.slack_headers(SLACK_SECRET, signed.slack_command('', 'x')))

    # Resolve: the button opens the dialog (views.open against the fake Slack), its submission resolves.
    form = signed.slack_block_actions('incident_resolve', incident, reply_url)
    assert post(launcher, '/slack/interactivity', form, signed.slack_headers(SLACK_SECRET, form))[0] == 200
    opened = services.received('/api/views.open')
    assert len(opened) == 1 and opened[0]['body']['view']['private_metadata'] == incident
    empty = signed.slack_view_submission(incident, ' ')
    answer = post(launcher, '/slack/interactivity', empty, signed.slack_headers(SLACK_SECRET, empty))[1]
    assert answer['response_action'] == 'errors' and 'resolution' in answer['errors']
    done = signed.slack_view_submission(incident, 'JWT rotated, image pinned to the known-good digest')
    status, answer = post(launcher, '/slack/interactivity', done, signed.slack_headers(SLACK_SECRET, done))
    assert status == 200 and answer is None
    item = record(tmp_path, incident)
    assert item['status'] == 'resolved' and item['resolution'] == 'JWT rotated, image pinned to the known-good digest'
    assert wait_for(lambda: record(tmp_path, incident).get('reports'))
    assert [report['kind'] for report in record(tmp_path, incident)['reports']] == ['markdown', 'html']


def test_slack_users_may_be_limited(serve, incident):
    launcher = serve(slack={'users': ['U0TEAM001'], 'approvers': ['U0LEAD001']})
    command = signed.slack_command('ack %s' % incident, 'x')
    answer = post(launcher, '/slack/commands', command, signed.slack_headers(SLACK_SECRET, command))[1]
    assert 'may not acknowledge' in answer['text']
    assert launcher.metrics.get('incident_launcher_inbound_commands_total', source='slack', verb='acknowledge', result='forbidden') == 1


def test_an_unconfigured_source_is_not_served(serve, tmp_path, incident):
    launcher = serve(pagerduty={'webhook_secrets': []})
    body = signed.encode(signed.pagerduty_incident_event('incident.acknowledged', incident))
    assert post(launcher, '/pagerduty/webhook', body, signed.pagerduty_headers([PD_NEW], body))[0] == 404
    assert record(tmp_path, incident)['acknowledged_at'] is None


@pytest.mark.parametrize('text, expected', [
    ('ack INC-20261124-0001', ('acknowledge', 'INC-20261124-0001', None, None, None)),
    ('  resolve  inc-20261124-0001  rolled back\nand rotated ', ('resolve', 'INC-20261124-0001', None, None, 'rolled back\nand rotated')),
    ('approve INC-20261124-0001 eradication:rotate_credentials fine', ('approve', 'INC-20261124-0001', 'rotate_credentials', 'eradication',
                                                                       'fine')),
    ('reject INC-20261124-0001 scale_down', ('reject', 'INC-20261124-0001', 'scale_down', None, None)),
    ('', ('help', None, None, None, None)),
    ('help', ('help', None, None, None, None)),
])
def test_slash_command_grammar(text, expected):
    assert parse_slash(text) == expected


@pytest.mark.parametrize('text', ['delete INC-20261124-0001', 'ack', 'ack ../INC-20261124-0001', 'status {{7*7}}'])
def test_slash_command_refusals(text):
    with pytest.raises(ValidationError):
        parse_slash(text)
