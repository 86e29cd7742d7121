# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""incident_notify and incident_report under ansible-playbook, against local Slack, PagerDuty, webhook and SMTP servers."""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest

from tests.conftest import run_playbook, write_playbook
from tests.fakes.services import Services, SmtpServer

pytestmark = pytest.mark.integration

GROUP = 'group/slurm_exporter.incident_response.incident_response'
INCIDENT = 'slurm_exporter.incident_response.incident'
NOTIFY = 'slurm_exporter.incident_response.incident_notify'
REPORT = 'slurm_exporter.incident_response.incident_report'
ROUTING_CRITICAL = 'R0UT1NGKEYCR1T1CAL00000000000001'
ROUTING_HIGH = 'R0UT1NGKEYH1GH000000000000000002'
INJECTED = "{{ lookup('pipe', 'id') }} <!channel> $(touch /tmp/pwned) <b>x</b>"


@pytest.fixture
def services():
    fake = Services()
    yield fake
    fake.stop()


RUNBOOK = 'https://runbooks.example.org/slurm-exporter/exporter-down'
SOURCE = 'http://prometheus.example.org:9090/graph?g0.expr=up%7Bjob%3D%22slurm-exporter%22%7D+%3D%3D+0'
LINKS = {'report_url': 'https://incidents.example.org/reports/{id}/report.html',
         'grafana_url': 'https://grafana.example.org/d/slurm-exporter/overview?orgId=1'}


def alert_file(tmp_path, alertname='SlurmExporterDown', fingerprint='aa11'):
    path = tmp_path / ('alert-%s.json' % fingerprint)
    path.write_text(json.dumps({'alerts': [{'fingerprint': fingerprint, 'status': 'firing', 'generatorURL': SOURCE,
                                            'labels': {'alertname': alertname, 'injected': INJECTED},
                                            'annotations': {'summary': 'exporter down', 'description': INJECTED, 'runbook_url': RUNBOOK}}]}))
    return str(path)


def open_task(name='open'):
    return {'name': name, INCIDENT: {'alerts': "{{ (lookup('ansible.builtin.file', alert_file) | from_json).alerts }}",
                                     'impact': 'no SLURM metrics'}, 'register': 'incident'}


def play(tmp_path, store_dir, tasks, name='p.yml', extra=None):
    return write_playbook(tmp_path, tasks, module_defaults={GROUP: dict({'store': store_dir}, **(extra or {}))}, name=name)


def read_record(store_dir, incident_id):
    with open(os.path.join(store_dir, 'incident-%s.json' % incident_id), encoding='utf-8') as handle:
        return json.load(handle)


def test_outbox_is_the_default(tmp_path, store_dir):
    tasks = [open_task(), {'name': 'notify', NOTIFY: {'id': '{{ incident.id }}'}}]
    run = run_playbook(play(tmp_path, store_dir, tasks), extra_vars={'alert_file': alert_file(tmp_path)})
    assert run.rc == 0, run
    assert [d['channel'] for d in run.result('notify')['deliveries']] == ['outbox']
    with open(os.path.join(store_dir, 'outbox', 'notifications.jsonl'), encoding='utf-8') as handle:
        lines = [json.loads(line) for line in handle]
    assert len(lines) == 1 and lines[0]['template'] == 'initial' and INJECTED in lines[0]['text']
    record = read_record(store_dir, run.result('open')['id'])
    assert record['notifications'][0]['channel'] == 'outbox' and record['notifications'][0]['status'] == 'sent'


def test_every_channel_gets_the_expected_payload(tmp_path, store_dir, services):
    smtp = SmtpServer()
    try:
        channels = {
            'slack': {'token': services.slack_token, 'api_url': services.url + '/api'},
            'pagerduty': {'routing_keys': {'critical': ROUTING_CRITICAL, 'high': ROUTING_HIGH}, 'url': services.url + '/v2/enqueue',
                          'links': [{'href': 'https://reports.example.org/INC', 'text': 'report'}]},
            'webhook': {'url': services.url + '/hook'},
            'email': {'host': '127.0.0.1', 'port': smtp.port, 'security': 'none', 'sender': 'ir@example.org', 'to': ['sre@example.org']},
        }
        tasks = [open_task(),
                 {'name': 'initial', NOTIFY: dict({'id': '{{ incident.id }}', 'links': LINKS}, **channels)},
                 {'name': 'update', NOTIFY: dict({'id': '{{ incident.id }}', 'template': 'status_update', 'links': LINKS,
                                                  'context': {'progress': 'restarted', 'eta': '10 minutes'}}, **channels)},
                 {'name': 'resolve', INCIDENT: {'state': 'resolve', 'id': '{{ incident.id }}', 'resolution': 'rolled back'}},
                 {'name': 'resolution', NOTIFY: dict({'id': '{{ incident.id }}', 'template': 'resolution', 'links': LINKS}, **channels)}]
        run = run_playbook(play(tmp_path, store_dir, tasks), extra_vars={'alert_file': alert_file(tmp_path)})
        assert run.rc == 0, run
        incident_id = run.result('open')['id']
        for name in ('initial', 'update', 'resolution'):
            result = run.result(name)
            assert result['failed_channels'] == [], result['deliveries']
            assert sorted(d['channel'] for d in result['deliveries']) == ['email', 'pagerduty', 'slack', 'webhook']
        report_url = 'https://incidents.example.org/reports/%s/report.html' % incident_id
        slack = [entry['body'] for entry in services.received('/api/chat.postMessage')]
        assert len(slack) == 3
        assert slack[0]['channel'] == '#ops-incidents' and 'thread_ts' not in slack[0]
        title = 'Complete service unavailability'
        assert slack[0]['text'] == 'P1 CRITICAL %s: %s @channel' % (incident_id, title)
        assert re.match(r'^Update on %s \(investigating, \d+s in\): %s$' % (incident_id, title), slack[1]['text']), slack[1]['text']
        assert re.match(r'^Resolved %s after \d+s: %s$' % (incident_id, title), slack[2]['text']), slack[2]['text']
        assert [block['type'] for block in slack[0]['blocks']] == ['header', 'section', 'section', 'section', 'context', 'section',
                                                                   'actions', 'context']
        assert slack[0]['blocks'][0]['text'] == {'type': 'plain_text', 'text': 'P1 incident: ' + title, 'emoji': True}
        assert slack[0]['blocks'][1]['text']['text'].startswith('<!channel> *%s* ' % incident_id)
        labels = slack[0]['blocks'][4]['elements'][0]['text']
        assert '&lt;!channel&gt;' in labels and "{{ lookup('pipe', 'id') }}" in labels and '<b>' not in labels
        assert '```' not in json.dumps(slack)
        buttons = [(e['action_id'], e.get('value'), e.get('url')) for e in slack[0]['blocks'][6]['elements']]
        assert buttons[:5] == [('incident_acknowledge', incident_id, None), ('incident_resolve', incident_id, None),
                               ('incident_link_report', None, report_url), ('incident_link_runbook', None, RUNBOOK),
                               ('incident_link_source', None, SOURCE)]
        assert buttons[5][0] == 'incident_link_grafana' and buttons[5][2].startswith(LINKS['grafana_url'] + '&from=')
        assert buttons[5][2].endswith('&to=now')
        assert [e['action_id'] for e in slack[2]['blocks'][-2]['elements']] == [
            'incident_link_report', 'incident_link_runbook', 'incident_link_source', 'incident_link_grafana']
        assert slack[1]['thread_ts'] == slack[2]['thread_ts'] == '1700000001.000100' and slack[2]['reply_broadcast'] is True
        record = read_record(store_dir, incident_id)
        assert record['x_slack_thread'] == {'channel': '#ops-incidents', 'ts': '1700000001.000100'}
        pd = [entry['body'] for entry in services.received('/v2/enqueue')]
        assert [event['event_action'] for event in pd] == ['trigger', 'trigger', 'resolve']
        assert all(event['routing_key'] == ROUTING_CRITICAL and event['dedup_key'] == incident_id for event in pd)
        assert pd[0]['payload']['severity'] == 'critical' and pd[0]['payload']['source'] == 'slurm-exporter-incident-response'
        assert pd[0]['payload']['custom_details']['alerts'][0]['labels']['injected'] == INJECTED
        assert pd[0]['payload']['custom_details']['severity'] == 'critical (P1)'
        assert pd[0]['client_url'] == report_url
        assert pd[0]['links'][:3] == [{'href': report_url, 'text': 'Report'}, {'href': RUNBOOK, 'text': 'Runbook'},
                                      {'href': SOURCE, 'text': 'Alert source'}]
        assert pd[0]['links'][3]['text'] == 'Grafana' and pd[0]['links'][4:] == [{'href': 'https://reports.example.org/INC', 'text': 'report'}]
        assert pd[2] == {'routing_key': ROUTING_CRITICAL, 'event_action': 'resolve', 'dedup_key': incident_id,
                         'client': 'slurm_exporter.incident_response'}
        hook = services.received('/hook')[0]['body']
        assert hook['event'] == 'initial' and hook['incident']['id'] == incident_id and INJECTED in hook['text']
        assert [link['kind'] for link in hook['links']] == ['report', 'runbook', 'source', 'grafana']
        assert len(smtp.messages) == 3 and smtp.messages[0]['to'] == ['sre@example.org']
        mail = email.message_from_bytes(smtp.messages[0]['data'])
        assert mail['Subject'] == '[P1] Initial: %s %s' % (incident_id, title)
        assert mail.get_content_type() == 'multipart/alternative'
        text_part, html_part = mail.get_payload()
        assert (text_part.get_content_type(), html_part.get_content_type()) == ('text/plain', 'text/html')
        assert "lookup('pipe', 'id')" in text_part.get_payload(decode=True).decode()
        html = html_part.get_payload(decode=True).decode()
        assert 'P1 incident: %s</h1>' % title in html and 'href="%s"' % RUNBOOK in html and '&lt;b&gt;x&lt;/b&gt;' in html
        assert '<b>x</b>' not in html
        assert not os.path.exists('/tmp/pwned')
        sends = [(n['channel'], n['template'], n['status']) for n in record['notifications']]
        assert ('pagerduty', 'resolution', 'sent') in sends and len(sends) == 12
    finally:
        smtp.stop()


def test_429_then_200_waits_and_succeeds(tmp_path, store_dir, services):
    path = '/services/T0001/B0001/%s' % services.webhook_secret
    services.script(path, [(429, {'Retry-After': '1'}, 'rate_limited')])
    tasks = [open_task(), {'name': 'notify', NOTIFY: {'id': '{{ incident.id }}', 'slack': {'webhook_url': services.slack_webhook_url}}}]
    run = run_playbook(play(tmp_path, store_dir, tasks), extra_vars={'alert_file': alert_file(tmp_path)})
    assert run.rc == 0, run
    delivery = run.result('notify')['deliveries'][0]
    assert (delivery['channel'], delivery['status'], delivery['attempts']) == ('slack', 'sent', 2)
    first, second = services.received(path)
    assert second['time'] - first['time'] >= 0.95
    assert first['body'] == second['body'] and second['body']['blocks']


def test_permanent_500_is_recorded_and_the_play_goes_on(tmp_path, store_dir, services):
    services.script('/v2/enqueue', [(500, {}, {'error': 'boom'})] * 10)
    tasks = [open_task(),
             {'name': 'notify', NOTIFY: {'id': '{{ incident.id }}', 'retries': 2, 'retry_delay': 0.1,
                                         'pagerduty': {'routing_key': ROUTING_CRITICAL, 'url': services.url + '/v2/enqueue'}}},
             {'name': 'after', 'ansible.builtin.debug': {'msg': 'containment goes on'}}]
    run = run_playbook(play(tmp_path, store_dir, tasks), extra_vars={'alert_file': alert_file(tmp_path)})
    assert run.rc == 0, run
    result = run.result('notify')
    assert result['failed_channels'] == ['pagerduty'] and result['deliveries'][0]['attempts'] == 3
    assert run.result('after')['msg'] == 'containment goes on'
    assert len(services.received('/v2/enqueue')) == 3
    record = read_record(store_dir, run.result('open')['id'])
    assert record['notifications'][-1]['status'] == 'failed' and record['notifications'][-1]['attempts'] == 3
    strict = [{'name': 'strict', NOTIFY: {'id': run.result('open')['id'], 'retries': 0, 'fail_on_error': True,
                                          'pagerduty': {'routing_key': ROUTING_CRITICAL, 'url': services.url + '/v2/enqueue'}},
               'ignore_errors': True}]
    checked = run_playbook(play(tmp_path, store_dir, strict, name='strict.yml'))
    assert checked.result('strict')['failed'] and 'notification failed on: pagerduty' in checked.result('strict')['msg']


def test_no_secret_reaches_output_logs_or_records(tmp_path, store_dir, services):
    services.script('/hook', [(503, {}, {'echo': services.url + '/hook?token=hooksecret-777'})] * 3)
    tasks = [open_task(),
             {'name': 'notify', NOTIFY: {'id': '{{ incident.id }}', 'retries': 1, 'retry_delay': 0.1,
                                         'slack': {'webhook_url': services.slack_webhook_url},
                                         'webhook': {'url': services.url + '/hook?token=hooksecret-777', 'headers': {'X-Token': 'headersecret-888'}},
                                         'pagerduty': {'routing_key': ROUTING_CRITICAL, 'url': services.url + '/v2/enqueue'}}}]
    log = tmp_path / 'ansible.log'
    run = run_playbook(play(tmp_path, store_dir, tasks), extra_vars={'alert_file': alert_file(tmp_path)},
                       env={'ANSIBLE_LOG_PATH': str(log), 'ANSIBLE_VERBOSITY': '3'})
    assert run.rc == 0, run
    assert run.result('notify')['failed_channels'] == ['webhook']
    secrets = [services.webhook_secret, 'hooksecret-777', 'headersecret-888', ROUTING_CRITICAL]
    haystacks = {'stdout': run.stdout, 'stderr': run.stderr, 'log': log.read_text()}
    for directory, _dirs, names in os.walk(store_dir):
        for name in names:
            with open(os.path.join(directory, name), 'rb') as handle:
                haystacks[name] = handle.read().decode('utf-8', 'replace')
    for secret in secrets:
        for where, text in haystacks.items():
            assert secret not in text, (secret, where)
    assert '********' in json.dumps(run.result('notify')['deliveries'])


def test_check_mode_sends_nothing(tmp_path, store_dir, services):
    opened = run_playbook(play(tmp_path, store_dir, [open_task()], name='open.yml'), extra_vars={'alert_file': alert_file(tmp_path)})
    incident_id = opened.result('open')['id']
    before = read_record(store_dir, incident_id)
    tasks = [{'name': 'notify', NOTIFY: {'id': incident_id, 'slack': {'webhook_url': services.slack_webhook_url}}}]
    run = run_playbook(play(tmp_path, store_dir, tasks), check=True)
    assert run.rc == 0, run
    assert run.result('notify')['deliveries'][0]['status'] == 'skipped' and 'slack' in run.result('notify')['messages']
    assert services.requests == [] and read_record(store_dir, incident_id) == before


def png_is_blank(path):
    """True when every pixel of an RGB(A) PNG has the same value (decoded with zlib, no imaging library)."""
    with open(path, 'rb') as handle:
        data = handle.read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    offset, idat, width, height, channels = 8, b'', 0, 0, 3
    while offset < len(data):
        length, kind = struct.unpack('>I4s', data[offset:offset + 8])
        chunk = data[offset + 8:offset + 8 + length]
        if kind == b'IHDR':
            width, height, _depth, colour = struct.unpack('>IIBB', chunk[:10])
            channels = {2: 3, 6: 4, 0: 1, 4: 2}.get(colour, 3)
        elif kind == b'IDAT':
            idat += chunk
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    # filter type 0 rows or not, a blank page decompresses to very few distinct byte values
    distinct = set()
    for row in range(height):
        distinct.update(raw[row * stride + 1:(row + 1) * stride:channels * 7])
        if len(distinct) > 16:
            return False
    return True


def test_report_files_and_chromium_rendering(tmp_path, store_dir):
    tasks = [open_task(),
             {'name': 'ack', INCIDENT: {'state': 'acknowledge', 'id': '{{ incident.id }}'}},
             {'name': 'resolve', INCIDENT: {'state': 'resolve', 'id': '{{ incident.id }}', 'resolution': 'rolled back',
                                            'root_cause': 'bad config'}},
             {'name': 'report', REPORT: {'id': '{{ incident.id }}', 'context': {'lessons': ['test the config']}}},
             {'name': 'again', REPORT: {'id': '{{ incident.id }}', 'context': {'lessons': ['test the config']}}},
             {'name': 'trends', REPORT: {'kind': 'trends'}}]
    run = run_playbook(play(tmp_path, store_dir, tasks), extra_vars={'alert_file': alert_file(tmp_path)})
    assert run.rc == 0, run
    result = run.result('report')
    incident_id = run.result('open')['id']
    markdown = open(result['markdown'], encoding='utf-8').read()
    html = open(result['html'], encoding='utf-8').read()
    assert '## Lessons learned' in markdown and 'test the config' in markdown and INJECTED in markdown
    assert '&lt;b&gt;x&lt;/b&gt;' in html and '<b>x</b>' not in html
    record = read_record(store_dir, incident_id)
    assert sorted(item['kind'] for item in record['reports']) == ['html', 'markdown']
    assert run.result('again')['registered'] and len(read_record(store_dir, incident_id)['reports']) == 2
    assert '| 1 |' in open(run.result('trends')['markdown'], encoding='utf-8').read()
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if not chromium:
        pytest.skip('chromium is not installed (make setup installs it)')
    shot = tmp_path / 'report.png'
    subprocess.run([chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                    '--disable-background-networking', '--disable-component-update', '--disable-sync',
                    '--user-data-dir=%s' % (tmp_path / 'chrome'), '--window-size=1000,1400', '--screenshot=%s' % shot,
                    'file://%s' % result['html']], capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 1000
    assert not png_is_blank(str(shot))
    blank = tmp_path / 'blank.html'
    blank.write_text('<html><body style="background:#fff"></body></html>')
    blank_shot = tmp_path / 'blank.png'
    subprocess.run([chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
                    '--user-data-dir=%s' % (tmp_path / 'chrome2'), '--window-size=400,300', '--screenshot=%s' % blank_shot,
                    'file://%s' % blank], capture_output=True, timeout=120, check=False)
    assert png_is_blank(str(blank_shot)), 'the blank check itself must detect a blank page'
