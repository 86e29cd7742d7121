# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import copy
import datetime
import json
import os

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.record import validate_record
from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils import report

FIXTURE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures', 'records', 'incident-INC-20260131-0007.json')
NOW = datetime.datetime(2026, 2, 1, tzinfo=datetime.timezone.utc)
INJECTED = "{{ lookup('pipe', 'id') }} <!channel> <script>alert(1)</script>"


def fixture():
    with open(FIXTURE, encoding='utf-8') as handle:
        record = json.load(handle)
    validate_record(record)
    return record


def profile(record):
    return load_catalog().profile(record['type'], record['severity'])


def test_metrics_are_computed_from_the_record():
    record = fixture()
    metrics = report.incident_metrics(record, profile(record))
    assert (metrics['tta_s'], metrics['ttm_s'], metrics['ttr_s']) == (600, 2400, 7200)
    assert (metrics['tta'], metrics['ttm'], metrics['ttr']) == ('10m', '40m', '2h')
    assert metrics['sla'] == 'met' and metrics['response_target'] == '15m'
    assert metrics['review_due'] == '2026-02-02T12:00:00Z'
    assert (metrics['notifications_sent'], metrics['notifications_failed']) == (1, 1)
    late = copy.deepcopy(record)
    late['acknowledged_at'] = '2026-01-31T10:20:00Z'
    assert report.incident_metrics(late, profile(late))['sla'] == 'missed'
    never = dict(record, acknowledged_at=None)
    assert report.incident_metrics(never, profile(never))['sla'] == 'missed (never acknowledged)'


def test_report_has_every_section_and_prints_labels_literally():
    record = fixture()
    rendered = report.render_incident_report(record, profile(record), {'lessons': ['Isolate before scaling']}, now=NOW)
    markdown, html = rendered['markdown'], rendered['html']
    for section in ('## Executive summary', '## Timeline', '## Root cause analysis', '## Contributing factors',
                    '## Response evaluation', '## Action items', '## Lessons learned'):
        assert section in markdown
    for section in ('Executive summary', 'Timeline', 'Root cause analysis', 'Contributing factors', 'Response evaluation',
                    'Action items', 'Lessons learned'):
        assert '<h2>%s</h2>' % section in html
    assert 'time to acknowledge | 10m | 15m' in markdown and 'time to resolve | 2h' in markdown
    assert 'The incident lasted 2h;' in markdown and '**met**' in markdown
    assert '`' + 'a' * 64 + '`' in markdown
    assert 'Post-incident review meeting due by: 2026-02-02T12:00:00Z' in markdown
    assert "{{ lookup('pipe', 'id') }} <!channel> <script>alert(1)</script>" in markdown
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in html and '<script>' not in html
    assert "{{ lookup(&#39;pipe&#39;, &#39;id&#39;) }}" in html
    assert '<svg' in html and html.count('<circle') == len(record['timeline'])


def test_trends_separate_drills():
    base = fixture()
    drill = dict(copy.deepcopy(base), id='INC-20260131-0008', drill=True, acknowledged_at='2026-01-31T10:01:00Z')
    february = dict(copy.deepcopy(base), id='INC-20260203-0001', created_at='2026-02-03T08:00:00Z',
                    acknowledged_at='2026-02-03T08:30:00Z', resolved_at='2026-02-03T09:00:00Z', response_due_at='2026-02-03T08:15:00Z',
                    severity='high', type='service_outage')
    figures = report.trends([base, drill, february])
    january, feb = figures['months']
    assert (january['incidents'], january['drills'], january['mtta'], january['mttr'], january['sla']) == (1, 1, '10m', '2h', '1/1')
    assert january['drill_mtta'] == '1m'
    assert (feb['incidents'], feb['sla'], feb['by_type'], feb['by_severity']) == (1, '0/1', {'service_outage': 1}, {'high': 1})
    assert figures['total'] == 2 and figures['drills'] == 1
