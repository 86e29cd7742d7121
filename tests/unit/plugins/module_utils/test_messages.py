# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import messages
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError


def record(**extra):
    base = {'id': 'INC-20260131-0007', 'created_at': '2026-01-31T10:00:00Z', 'resolved_at': None, 'alerts': [], 'actions': [],
            'evidence': [], 'reports': []}
    base.update(extra)
    return base


def alert(**annotations):
    return {'labels': {'alertname': 'A'}, 'annotations': annotations, 'generatorURL': None, 'startsAt': '2026-01-31T09:50:00Z'}


@pytest.mark.parametrize('url, safe', [
    ('https://runbooks.example.org/a?b=c#d', True),
    ('http://prometheus:9090/graph?g0.expr=up%7Bjob%3D%22x%22%7D', True),
    ('javascript:alert(1)', False),
    ('data:text/html,<b>', False),
    ('https://example.org/a b', False),
    ('https://example.org/"onmouseover="x', False),
    ('https://example.org/<!channel>', False),
    ('https://example.org/a|b', False),
    ('//example.org/x', False),
    ('https://' + 'x' * 3000, False),
    (None, False),
])
def test_safe_url(url, safe):
    assert (messages.safe_url(url) is not None) == safe


def test_links_in_order_from_settings_and_the_first_alert_that_has_one():
    third = dict(alert(runbook_url='https://rb.example.org/1'), generatorURL='http://prom.example.org/graph?g0.expr=up')
    item = record(alerts=[alert(), alert(runbook_url='javascript:x'), third], resolved_at='2026-01-31T11:00:00Z')
    links = messages.incident_links(item, {'report_url': 'https://r.example.org/{id}/report.html',
                                           'grafana_url': 'https://g.example.org/d/x?orgId=2&from=now-1h&to=now&var-ns=slurm'})
    assert links == [
        {'kind': 'report', 'text': 'Report', 'url': 'https://r.example.org/INC-20260131-0007/report.html'},
        {'kind': 'runbook', 'text': 'Runbook', 'url': 'https://rb.example.org/1'},
        {'kind': 'source', 'text': 'Alert source', 'url': 'http://prom.example.org/graph?g0.expr=up'},
        {'kind': 'grafana', 'text': 'Grafana',
         'url': 'https://g.example.org/d/x?orgId=2&var-ns=slurm&from=%d&to=%d' % (1769852100000, 1769858100000)}]
    assert messages.incident_links(record()) == []


def test_link_settings_are_checked():
    assert messages.check_link_settings({'report_url': 'https://r.example.org/{id}', 'grafana_url': None})
    with pytest.raises(ValidationError, match='links.report_url'):
        messages.check_link_settings({'report_url': 'file:///var/incident-response/{id}'})
    with pytest.raises(ValidationError, match='links.grafana_url'):
        messages.check_link_settings({'grafana_url': 'grafana.example.org'})


def test_results_read_as_they_are_and_unknown_ones_need_attention():
    assert [messages.result_label(value) for value in ('success', 'needs_person', 'some_new_result', None)] == [
        'success', 'needs person', 'some new result', 'unknown']
    assert [messages.result_tone(value) for value in ('success', 'failed', 'skipped', 'pending', 'suppressed', 'needs_person', 'x')] == [
        'ok', 'failed', 'muted', 'pending', 'muted', 'attention', 'attention']


def test_attention_lists_what_a_person_must_look_at():
    item = record(actions=[
        {'name': 'ok', 'phase': 'containment', 'result': 'success', 'details': {}},
        {'name': 'quiet', 'phase': 'recovery', 'result': 'suppressed', 'details': {'reason': 'flapping'}},
        {'name': 'rotate_jwt', 'phase': 'eradication', 'result': 'needs_person', 'details': {'message': 'no controller', 'steps': 'do it'}},
        {'name': 'scale_down', 'phase': 'containment', 'result': 'failed',
         'details': {'compensation': [{'name': 'scale_restore', 'status': 'failed', 'error': 'HTTP 500'}, 'lift isolation kept']}},
        {'name': 'verify_health', 'phase': 'recovery', 'result': 'success', 'details': {'health': 'unverified'}},
        {'name': 'odd', 'phase': 'recovery', 'result': 'success', 'details': 'not a mapping'},
    ], evidence=[{'path': '/e/1', 'details': {}}, {'path': '/e/2', 'gaps': {'pod/b': 'gone'}},
                 {'path': '/e/3', 'details': {'gaps': [{'kind': 'logs', 'error': 'timeout'}, {'n': 1}]}}])
    found = messages.attention(item)
    assert [(entry['title'], entry['label'], entry['tone']) for entry in found] == [
        ('rotate_jwt (eradication)', 'needs person', 'attention'), ('scale_down (containment)', 'failed', 'failed'),
        ('verify_health (recovery)', 'unverified', 'attention'), ('evidence /e/2', 'gaps', 'attention'), ('evidence /e/3', 'gaps', 'attention')]
    assert found[0]['detail'] == 'no controller' and found[0]['steps'] == ['do it']
    assert found[1]['compensation'] == 'scale_restore: failed (error=HTTP 500); lift isolation kept'
    assert found[3]['steps'] == ['pod/b: gone'] and found[4]['steps'] == ['logs: timeout', 'n=1']
    assert messages.attention_line(found[1]) == (
        'scale_down (containment): failed (compensation: scale_restore: failed (error=HTTP 500); lift isolation kept)')
    assert messages.compensation_text({'compensation': 'reverted'}) == 'reverted' and messages.compensation_text({}) == ''
    assert messages.attention(record()) == []


def test_report_path_prefers_the_html_report():
    assert messages.report_path(record(reports=[{'kind': 'html', 'path': '/r/a.html'}, {'kind': 'markdown', 'path': '/r/a.md'}])) == '/r/a.html'
    assert messages.report_path(record(reports=[{'kind': 'markdown', 'path': '/r/a.md'}])) == '/r/a.md'
    assert messages.report_path({}) == ''


def test_the_shapes_the_response_records():
    """k8s_workload's results and details: blocked / suppressed / needs_person with a summary, the evidence capture's
    gaps.logs, a compensate action's list of steps."""
    item = record(actions=[
        {'name': 'capture_evidence', 'phase': 'containment', 'result': 'success', 'details': {'gaps': {'logs': ['pod-a', 'pod-b']}}},
        {'name': 'scale_down', 'phase': 'containment', 'result': 'blocked',
         'details': {'summary': 'scale_down blocked: the evidence capture could not read the logs of pod-a'}},
        {'name': 'restart_pod', 'phase': 'recovery', 'result': 'suppressed', 'details': {'summary': 'restart_pod suppressed: 40s ago'}},
        {'name': 'compensate', 'phase': 'recovery', 'result': 'success', 'details': {'compensation': [
            {'action': 'increase_logging', 'compensation': 'revert_logging', 'summary': 'log level info'},
            {'action': 'isolate_pods', 'compensation': 'none: isolation stays until a person lifts it'}]}},
    ])
    found = messages.attention(item)
    assert [(entry['title'], entry['label'], entry['detail'], entry['steps']) for entry in found] == [
        ('capture_evidence (containment)', 'gaps', '2 item(s) could not be captured', ['logs: pod-a', 'logs: pod-b']),
        ('scale_down (containment)', 'blocked', 'scale_down blocked: the evidence capture could not read the logs of pod-a', [])]
    assert messages.compensation_text(item['actions'][3]['details']) == (
        'increase_logging -> revert_logging (log level info); isolate_pods -> none: isolation stays until a person lifts it')
    assert messages.evidence_gaps({'details': {'gaps': {'logs': ['pod-a']}}}) == ['logs: pod-a']
    assert messages.evidence_gaps({'details': {'gaps': {'logs': [], 'previous_logs': [], 'other': []}}}) == []
    health = messages.attention(record(actions=[{'name': 'verify_health', 'phase': 'recovery', 'result': 'skipped',
                                                 'details': {'verified': False, 'available': 3, 'health_endpoint': 'not configured'}}]))
    assert [(entry['title'], entry['label'], entry['tone']) for entry in health] == [('verify_health (recovery)', 'unverified', 'attention')]
    assert health[0]['detail'] == 'nothing confirmed that the service works; a person confirms and resolves'
    assert messages.attention(record(actions=[{'name': 'verify_health', 'phase': 'recovery', 'result': 'success',
                                               'details': {'verified': True}}])) == []
