# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The notification templates, rendered as the action plugin does: exact Block Kit, fallback texts, e-mail and
PagerDuty payloads for every template, drills, what needs a person, and data printed literally."""
from __future__ import annotations

import copy
import datetime
import email
import json
import os

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import slack
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.notify import build_email
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.record import validate_record
from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils import render

FIXTURE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures', 'records', 'incident-INC-20260131-0007.json')
INJECTED = "{{ lookup('pipe', 'id') }} <!channel> <script>alert(1)</script>"
ESCAPED = "{{ lookup('pipe', 'id') }} &lt;!channel&gt; &lt;script&gt;alert(1)&lt;/script&gt;"
OPEN_AT = datetime.datetime(2026, 1, 31, 10, 5, tzinfo=datetime.timezone.utc)
LATER = datetime.datetime(2026, 2, 1, tzinfo=datetime.timezone.utc)
LINKS = {'report_url': 'https://incidents.example.org/reports/{id}/report.html',
         'grafana_url': 'https://grafana.example.org/d/slurm/exporter?orgId=1'}
RUNBOOK = 'https://runbooks.example.org/slurm-exporter/security-breach'
SOURCE = 'http://prometheus.example.org:9090/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1'
ID = 'INC-20260131-0007'


def resolved():
    with open(FIXTURE, encoding='utf-8') as handle:
        record = json.load(handle)
    validate_record(record)
    return record


def opened():
    """The fixture as it was at 10:05, open and not acknowledged, its alert with a runbook and a source."""
    record = resolved()
    record.update(status='investigating', acknowledged_at=None, acknowledged_by=None, mitigated_at=None, resolved_at=None,
                  root_cause=None, resolution=None)
    record['alerts'][0].update(status='firing', generatorURL=SOURCE)
    record['alerts'][0]['annotations']['runbook_url'] = RUNBOOK
    validate_record(record)
    return record


def profile(record):
    return load_catalog().profile(record['type'], record['severity'])


def plain(text):
    return {'type': 'plain_text', 'text': text, 'emoji': True}


def md(text):
    return {'type': 'mrkdwn', 'text': text}


def button(text, action_id, **extra):
    return dict({'type': 'button', 'text': plain(text), 'action_id': action_id}, **extra)


ACK = button('Acknowledge', 'incident_acknowledge', value=ID, style='primary')
RESOLVE = button('Resolve', 'incident_resolve', value=ID, style='danger', confirm={
    'title': plain('Resolve %s?' % ID),
    'text': plain('The incident is marked resolved and its report written; open alerts stay attached.'),
    'confirm': plain('Resolve'), 'deny': plain('Cancel')})
REPORT = button('Report', 'incident_link_report', url='https://incidents.example.org/reports/%s/report.html' % ID)
RUNBOOK_BUTTON = button('Runbook', 'incident_link_runbook', url=RUNBOOK)
SOURCE_BUTTON = button('Alert source', 'incident_link_source', url=SOURCE)
GRAFANA_OPEN = button('Grafana', 'incident_link_grafana', url='https://grafana.example.org/d/slurm/exporter?orgId=1&from=1769852580000&to=now')
FOOTER = {'type': 'context', 'elements': [md('security_breach | security | critical (P1)')]}


def facts(status):
    return [md('*Severity*\ncritical (P1)'), md('*Status*\n%s' % status), md('*Type*\nsecurity_breach (security)')]


def test_initial_is_block_kit_with_facts_buttons_and_links_and_no_code_block():
    record = opened()
    messages = render.render_notification('initial', record, profile(record), {'next_update': 'in 15 minutes'}, now=OPEN_AT, links=LINKS)
    assert messages['slack'] == {
        'text': 'P1 CRITICAL %s: Exporter token used from an unknown client @channel' % ID,
        'blocks': [
            {'type': 'header', 'text': plain('P1 incident: Exporter token used from an unknown client')},
            {'type': 'section', 'text': md("<!channel> *%s* slurmrestd saw the exporter's JWT from 203.0.113.7" % ID)},
            {'type': 'section', 'fields': facts('investigating') + [
                md('*Started*\n2026-01-31T10:00:00Z'), md('*Response due*\n2026-01-31T10:15:00Z'),
                md('*Impact*\nSLURM accounting data readable for 40 minutes'), md('*Next update*\nin 15 minutes')]},
            {'type': 'section', 'text': md('*Alerts*\n\u2022 *SecurityIncidentDetected* [firing]: auth failures')},
            {'type': 'context', 'elements': [md('SecurityIncidentDetected: alertname=SecurityIncidentDetected, '
                                                'incident_type=security_breach, note=%s, severity=critical' % ESCAPED)]},
            {'type': 'section', 'text': md('*Actions so far*\n\u2022 isolate_pods (containment): success [changed]\n'
                                           '\u2022 rotate_credentials (eradication): success [changed]')},
            {'type': 'actions', 'elements': [ACK, RESOLVE, REPORT, RUNBOOK_BUTTON, SOURCE_BUTTON, GRAFANA_OPEN]},
            FOOTER,
        ]}
    assert slack.problems(messages['slack']) == []
    assert '```' not in json.dumps(messages['slack'])
    assert messages['links'] == [
        {'kind': 'report', 'text': 'Report', 'url': 'https://incidents.example.org/reports/%s/report.html' % ID},
        {'kind': 'runbook', 'text': 'Runbook', 'url': RUNBOOK}, {'kind': 'source', 'text': 'Alert source', 'url': SOURCE},
        {'kind': 'grafana', 'text': 'Grafana', 'url': 'https://grafana.example.org/d/slurm/exporter?orgId=1&from=1769852580000&to=now'}]
    assert messages['text'].endswith('Next update: in 15 minutes\nReport: https://incidents.example.org/reports/%s/report.html\n'
                                     'Runbook: %s\nAlert source: %s\nGrafana: %s\n' % (ID, RUNBOOK, SOURCE, GRAFANA_OPEN['url']))
    assert INJECTED in messages['text']


def test_initial_pagerduty_payload_carries_the_facts_as_custom_details():
    record = opened()
    messages = render.render_notification('initial', record, profile(record), now=OPEN_AT, links=LINKS)
    assert messages['pagerduty'] == {
        'summary': 'P1 CRITICAL %s: Exporter token used from an unknown client' % ID, 'component': 'slurm-exporter',
        'group': 'security', 'class': 'security_breach',
        'custom_details': {
            'incident_id': ID, 'title': 'Exporter token used from an unknown client', 'type': 'security_breach (security)',
            'severity': 'critical (P1)', 'status': 'investigating', 'drill': False, 'started': '2026-01-31T10:00:00Z',
            'time_since_start': '5m', 'acknowledged': 'not yet', 'response_due_at': '2026-01-31T10:15:00Z',
            'impact': 'SLURM accounting data readable for 40 minutes', 'summary': "slurmrestd saw the exporter's JWT from 203.0.113.7",
            'alerts': [{'fingerprint': '5e1f0c2b9a7d3e41', 'status': 'firing', 'startsAt': '2026-01-31T09:58:00Z', 'summary': 'auth failures',
                        'labels': record['alerts'][0]['labels']}],
            'actions': ['isolate_pods (containment): success', 'rotate_credentials (eradication): success'],
            'needs_attention': [],
            'evidence': [{'path': record['evidence'][0]['path'], 'sha256': 'a' * 64, 'gaps': []}],
            'report': None}}
    assert messages['pagerduty']['custom_details']['alerts'][0]['labels']['note'] == INJECTED


def test_status_update_fallback_is_an_update_not_the_initial_headline():
    record = opened()
    record.update(status='identified', acknowledged_at='2026-01-31T10:10:00Z', acknowledged_by='alice')
    messages = render.render_notification('status_update', record, profile(record), {'progress': 'pods isolated', 'eta': '30 minutes'},
                                          now=OPEN_AT.replace(minute=20), links=LINKS)
    payload = messages['slack']
    assert payload['text'] == 'Update on %s (identified, 20m in): Exporter token used from an unknown client' % ID
    assert not payload['text'].startswith('P1 CRITICAL')
    assert payload['blocks'][:3] == [
        {'type': 'header', 'text': plain('Update: Exporter token used from an unknown client')},
        {'type': 'section', 'text': md('*%s* *Progress:* pods isolated' % ID)},
        {'type': 'section', 'fields': facts('identified') + [
            md('*Time since start*\n20m'), md('*Acknowledged*\nalice at 2026-01-31T10:10:00Z'), md('*ETA*\n30 minutes'),
            md('*Next update*\nin 30 minutes')]}]
    assert [block['type'] for block in payload['blocks']] == ['header', 'section', 'section', 'section', 'section', 'actions', 'context']
    # acknowledged: no Acknowledge button any more; still open: Resolve stays
    assert payload['blocks'][5]['elements'] == [RESOLVE, REPORT, RUNBOOK_BUTTON, SOURCE_BUTTON, GRAFANA_OPEN]
    assert messages['pagerduty']['summary'] == '[P1] Update %s (identified): Exporter token used from an unknown client' % ID
    assert messages['pagerduty']['custom_details']['progress'] == 'pods isolated'
    assert slack.problems(payload) == []


def test_resolution_fallback_says_resolved_and_has_no_buttons_to_act():
    record = resolved()
    messages = render.render_notification('resolution', record, profile(record), now=LATER, links=LINKS)
    payload = messages['slack']
    assert payload['text'] == 'Resolved %s after 2h: Exporter token used from an unknown client' % ID
    assert payload['blocks'][0] == {'type': 'header', 'text': plain('Resolved: Exporter token used from an unknown client')}
    assert payload['blocks'][1] == {'type': 'section', 'text': md(
        '*%s* resolved after 2h. Token rotated, known-good deployment restored, debug logging removed' % ID)}
    assert payload['blocks'][2]['fields'][3:] == [md('*Duration*\n2h'), md('*Acknowledged*\nalice at 2026-01-31T10:10:00Z'),
                                                  md('*Impact*\nSLURM accounting data readable for 40 minutes'),
                                                  md('*Review due*\n2026-02-02T12:00:00Z')]
    assert payload['blocks'][4] == {'type': 'section', 'text': md(
        '*Follow-up actions*\n\u2022 Stop logging request headers (owner: platform-team), due 2026-02-07 [open]')}
    actions = [block for block in payload['blocks'] if block['type'] == 'actions'][0]['elements']
    assert [element['action_id'] for element in actions] == ['incident_link_report', 'incident_link_grafana']
    assert actions[1]['url'] == 'https://grafana.example.org/d/slurm/exporter?orgId=1&from=1769852580000&to=1769861700000'
    assert 'Duration: 2h' in messages['text'] and 'Post-incident review due: 2026-02-02T12:00:00Z' in messages['text']
    assert 'Stop logging request headers (owner: platform-team), due 2026-02-07 [open]' in messages['text']
    assert messages['pagerduty']['summary'] == 'RESOLVED %s after 2h: Exporter token used from an unknown client' % ID
    assert slack.problems(payload) == []


def test_escalation_mentions_the_next_tier_from_the_inventory_only():
    record = opened()
    context = {'level': 1, 'tier': 'team lead', 'reason': 'open past escalation_due_at', 'mention': '<!subteam^S0TEAMLEAD>'}
    messages = render.render_notification('escalation', record, profile(record), context, now=OPEN_AT.replace(minute=31))
    payload = messages['slack']
    assert payload['text'] == ('ESCALATED to level 1 (team lead): P1 %s: Exporter token used from an unknown client <!subteam^S0TEAMLEAD>' % ID)
    assert payload['blocks'][1] == {'type': 'section', 'text': md(
        '<!subteam^S0TEAMLEAD> *%s* ESCALATED to level 1 (team lead): open past escalation_due_at' % ID)}
    assert payload['blocks'][2]['fields'][3:] == [md('*Level*\n1 (team lead)'), md('*Acknowledged*\nnot yet'), md('*Time since start*\n31m'),
                                                  md('*Escalates again at*\n2026-01-31T10:30:00Z if still open')]
    assert [element['action_id'] for element in payload['blocks'][-2]['elements']] == [
        'incident_acknowledge', 'incident_resolve', 'incident_link_runbook', 'incident_link_source']
    assert messages['pagerduty']['custom_details']['escalation'] == {'level': 1, 'tier': 'team lead', 'reason': 'open past escalation_due_at',
                                                                     'next_escalation_at': '2026-01-31T10:30:00Z'}


def test_acknowledged_names_the_person():
    record = opened()
    record.update(acknowledged_at='2026-01-31T10:10:00Z', acknowledged_by='alice')
    messages = render.render_notification('acknowledged', record, profile(record), now=OPEN_AT.replace(minute=10))
    assert messages['slack']['text'] == 'Acknowledged by alice: %s: Exporter token used from an unknown client' % ID
    assert messages['slack']['blocks'][1] == {'type': 'section', 'text': md('*%s* acknowledged by *alice* at 2026-01-31T10:10:00Z' % ID)}
    assert messages['text'].startswith('ACKNOWLEDGED %s' % ID) and 'alice' in messages['text']
    assert messages['email']['subject'].startswith('[P1] Acknowledged:') and messages['pagerduty']['summary'].startswith('Acknowledged by alice')


def test_drill_variants_are_marked_and_offer_only_the_acknowledgement():
    record = opened()
    record['drill'] = True
    for template in ('initial', 'status_update', 'escalation', 'resolution'):
        if template == 'resolution':
            record.update(status='resolved', resolved_at='2026-01-31T10:20:00Z', mitigated_at='2026-01-31T10:20:00Z')
        messages = render.render_notification(template, record, profile(record), now=LATER)
        payload = messages['slack']
        assert payload['text'].startswith('[DRILL] '), template
        assert payload['blocks'][0]['text']['text'].startswith('[DRILL] '), template
        assert messages['email']['subject'].startswith('[DRILL] '), template
        assert messages['pagerduty']['summary'].startswith(('[DRILL] ', 'ESCALATED L0 [DRILL] ')), template
        ids = [element.get('action_id') for block in payload['blocks'] if block['type'] == 'actions' for element in block['elements']]
        assert 'incident_resolve' not in ids, template
        assert ('incident_acknowledge' in ids) == (template != 'resolution'), template
        footer = payload['blocks'][-1]
        assert footer['elements'][1] == md('Drill: nobody is paged; acknowledging scores the response time'), template
    drill_ack = [block for block in render.render_notification('initial', dict(record, status='investigating', resolved_at=None),
                                                               profile(record), now=LATER)['slack']['blocks'] if block['type'] == 'actions']
    assert drill_ack[0]['elements'][0] == button('Acknowledge drill', 'incident_acknowledge', value=ID, style='primary')


def safety_record():
    """A record as the safety work writes it: results this version may not know, gaps, compensation, unverified."""
    record = opened()
    record['actions'] += [
        {'name': 'rotate_jwt', 'phase': 'eradication', 'result': 'needs_person', 'changed': False, 'time': '2026-01-31T10:36:00Z',
         'details': {'reason': 'no slurm_controllers host in the inventory',
                     'steps': ['rotate jwt_hs256.key on the controllers', 'scontrol reconfigure']}},
        {'name': 'restart_pods', 'phase': 'recovery', 'result': 'suppressed', 'changed': False, 'time': '2026-01-31T10:37:00Z',
         'details': {'reason': 'restarted 2m ago for the same workload'}},
        {'name': 'scale_down', 'phase': 'containment', 'result': 'failed', 'changed': True, 'time': '2026-01-31T10:38:00Z',
         'details': {'compensation': {'action': 'scale_restore', 'result': 'success', 'replicas': 3}}},
        {'name': 'verify_health', 'phase': 'recovery', 'result': 'success', 'changed': False, 'time': '2026-01-31T10:39:00Z',
         'details': {'verification': 'unverified'}},
    ]
    record['evidence'][0]['details'] = {'gaps': [{'pod': 'slurm-exporter-7d9-abcde', 'reason': 'logs: 403 forbidden'}, 'events: timed out']}
    return record


def test_what_needs_a_person_is_in_every_format_even_for_results_this_version_does_not_know():
    record = safety_record()
    messages = render.render_notification('status_update', record, profile(record), now=LATER)
    attention = [block for block in messages['slack']['blocks'] if block.get('text', {}).get('text', '').startswith('*Needs attention*')]
    assert attention == [{'type': 'section', 'text': md(
        '*Needs attention*\n'
        '\u2022 *rotate_jwt (eradication)*: needs person - no slurm_controllers host in the inventory\n'
        '    1. rotate jwt_hs256.key on the controllers\n    2. scontrol reconfigure\n'
        '\u2022 *scale_down (containment)*: failed (compensation: scale_restore: success (replicas=3))\n'
        '\u2022 *verify_health (recovery)*: unverified - nothing confirmed that the service works; a person confirms and resolves\n'
        '\u2022 *evidence %s*: gaps - 2 item(s) could not be captured\n'
        '    1. slurm-exporter-7d9-abcde: logs: 403 forbidden\n    2. events: timed out' % record['evidence'][0]['path'])}]
    assert '\u2022 restart_pods (recovery): suppressed' in messages['slack']['blocks'][3]['text']['text']
    assert ('Needs attention:\n- rotate_jwt (eradication): needs person - no slurm_controllers host in the inventory\n'
            '    1. rotate jwt_hs256.key on the controllers\n    2. scontrol reconfigure\n') in messages['text']
    assert messages['pagerduty']['custom_details']['needs_attention'][0] == (
        'rotate_jwt (eradication): needs person - no slurm_controllers host in the inventory')
    assert messages['pagerduty']['custom_details']['evidence'][0]['gaps'] == ['slurm-exporter-7d9-abcde: logs: 403 forbidden', 'events: timed out']
    assert 'Needs attention' in messages['email']['html'] and 'scontrol reconfigure' in messages['email']['html']


def test_email_has_the_same_facts_in_an_html_part_and_data_stays_data():
    record = opened()
    messages = render.render_notification('initial', record, profile(record), now=OPEN_AT, links=LINKS)
    html = messages['email']['html']
    assert messages['email']['subject'] == '[P1] Initial: %s Exporter token used from an unknown client' % ID
    assert '<h1 style="font-size:20px;margin:0 0 12px;">P1 incident: Exporter token used from an unknown client</h1>' in html
    assert '@channel <strong>%s</strong>' % ID in html and '<strong>Response due</strong><br>\n2026-01-31T10:15:00Z' in html
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in html and '<script>' not in html and '&lt;!channel&gt;' in html
    assert 'href="%s"' % RUNBOOK in html and '>Grafana</a>' in html
    assert 'incident_acknowledge' not in html and '>Acknowledge<' not in html
    mail = email.message_from_bytes(bytes(build_email({'sender': 'ir@example.org', 'to': ['sre@example.org']}, messages['email']['subject'],
                                                      messages['email']['body'], messages['email']['html'])))
    assert mail.get_content_type() == 'multipart/alternative'
    assert [part.get_content_type() for part in mail.get_payload()] == ['text/plain', 'text/html']
    assert INJECTED in mail.get_payload()[0].get_payload(decode=True).decode()


def test_unsafe_alert_urls_are_left_out():
    record = opened()
    record['alerts'][0]['annotations']['runbook_url'] = 'javascript:alert(1)'
    record['alerts'][0]['generatorURL'] = 'http://prometheus.example.org/graph?x="><script>'
    messages = render.render_notification('initial', record, profile(record), now=OPEN_AT)
    assert messages['links'] == []
    assert 'javascript' not in json.dumps(messages['slack']) and 'javascript' not in messages['email']['html']


def test_long_values_are_cut_within_slack_limits():
    record = opened()
    record['title'] = 'T' * 400
    record['summary'] = 'S&' * 3000
    record['alerts'] = [copy.deepcopy(record['alerts'][0]) for _number in range(30)]
    for index, alert in enumerate(record['alerts']):
        alert['fingerprint'] = '%016x' % index
        alert['labels'] = {'alertname': 'A%d' % index, 'blob': 'x' * 4000}
    messages = render.render_notification('initial', record, profile(record), now=OPEN_AT)
    payload = messages['slack']
    assert slack.problems(payload) == []
    assert len(payload['blocks'][0]['text']['text']) == 150 and payload['blocks'][0]['text']['text'].endswith('\u2026')
    section = payload['blocks'][1]['text']['text']
    assert len(section) <= 3000 and section.endswith('S&amp;S\u2026'), section[-20:]  # never half an escape
    assert '\u2022 and 25 more' in payload['blocks'][3]['text']['text']


def test_own_template_that_ignores_the_limits_is_fitted(tmp_path):
    (tmp_path / 'custom.text.j2').write_text('{{ incident.id }} custom')
    (tmp_path / 'custom.email.j2').write_text('Subject: custom\n\n{{ text }}')
    (tmp_path / 'custom.pagerduty.j2').write_text('{"summary": "custom"}')
    blocks = [{'type': 'header', 'text': {'type': 'plain_text', 'text': 'H' * 300}}] + \
             [{'type': 'section', 'text': {'type': 'mrkdwn', 'text': 'x'}}] * 60 + \
             [{'type': 'actions', 'elements': [{'type': 'button', 'text': {'type': 'plain_text', 'text': 'go'}, 'action_id': 'a'},
                                               {'type': 'button', 'text': {'type': 'plain_text', 'text': 'go'}, 'action_id': 'a'}]}]
    (tmp_path / 'custom.slack.j2').write_text(json.dumps({'blocks': blocks}))
    record = opened()
    messages = render.render_notification('custom', record, profile(record), user_dir=str(tmp_path), now=OPEN_AT)
    payload = messages['slack']
    assert slack.problems(payload) == [] and len(payload['blocks']) == 50 and payload['blocks'][-1]['type'] == 'actions'
    assert [element['action_id'] for element in payload['blocks'][-1]['elements']] == ['a', 'a_2']
    assert payload['text'] == 'H' * 149 + '\u2026'
    assert messages['email']['html'].count('<h1') == 1
