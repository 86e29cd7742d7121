# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTML reports as a browser draws them: headless Chromium, bounding boxes read over the DevTools protocol.

No label of the timeline figure overlaps a marker or another label, each label's text stays inside its box and
everything stays inside the figure - measured on what Chromium laid out, not on what the layout computed.
"""
from __future__ import annotations

import datetime
import itertools

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils import report
from tests import report_samples
from tests.chromium import Chromium, find_chromium

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(find_chromium() is None, reason='chromium is not installed: apt-get install chromium (bindep.txt, make setup)')]

NOW = datetime.datetime(2026, 11, 28, tzinfo=datetime.timezone.utc)
TOLERANCE = 0.5
BOXES = """(() => {
  const svg = document.querySelector('#timeline');
  const frame = svg.getBoundingClientRect();
  const rect = (el) => { const r = el.getBoundingClientRect(); return {x: r.x - frame.x, y: r.y - frame.y, w: r.width, h: r.height}; };
  return {
    frame: {w: frame.width, h: frame.height},
    items: [...svg.querySelectorAll('[data-role=item]')].map((g) => ({
      kind: g.dataset.kind,
      box: rect(g.querySelector('[data-role=label-box]')),
      marker: rect(g.querySelector('[data-role=marker]')),
      texts: [...g.querySelectorAll('[data-role=label-text]')].map(rect),
    })),
    ticks: [...svg.querySelectorAll('[data-role=tick-label]')].map(rect),
  };
})()"""


def overlap(a, b):
    return (a['x'] + TOLERANCE < b['x'] + b['w'] and b['x'] + TOLERANCE < a['x'] + a['w'] and
            a['y'] + TOLERANCE < b['y'] + b['h'] and b['y'] + TOLERANCE < a['y'] + a['h'])


def inside(inner, outer):
    return (inner['x'] >= outer['x'] - TOLERANCE and inner['y'] >= outer['y'] - TOLERANCE and
            inner['x'] + inner['w'] <= outer['x'] + outer['w'] + TOLERANCE and inner['y'] + inner['h'] <= outer['y'] + outer['h'] + TOLERANCE)


def assert_no_overlap(boxes):
    frame = {'x': 0, 'y': 0, 'w': boxes['frame']['w'], 'h': boxes['frame']['h']}
    labels = [item['box'] for item in boxes['items']]
    markers = [item['marker'] for item in boxes['items']]
    texts = [text for item in boxes['items'] for text in item['texts']]
    assert labels and all(text['w'] > 0 and text['h'] > 0 for text in texts)
    for (i, a), (j, b) in itertools.combinations(enumerate(labels), 2):
        assert not overlap(a, b), 'labels %d and %d overlap: %s %s' % (i, j, a, b)
    for (i, label), (j, marker) in itertools.product(enumerate(labels), enumerate(markers)):
        assert not overlap(label, marker), 'label %d covers marker %d: %s %s' % (i, j, label, marker)
    for item in boxes['items']:
        for text in item['texts']:
            assert inside(text, item['box']), 'text outside its label box: %s %s' % (text, item['box'])
            for marker in markers:
                assert not overlap(text, marker), (text, marker)
    for a, b in itertools.combinations(boxes['ticks'], 2):
        assert not overlap(a, b), (a, b)
    for tick, label in itertools.product(boxes['ticks'], labels):
        assert not overlap(tick, label), (tick, label)
    for box in labels + markers + texts + boxes['ticks']:
        assert inside(box, frame), 'outside the figure: %s' % box


def write_report(tmp_path, record, name='report.html'):
    catalog = load_catalog()
    rendered = report.render_incident_report(record, catalog.profile(record['type'], record['severity']), now=NOW)
    path = tmp_path / name
    path.write_text(rendered['html'], encoding='utf-8')
    return path, rendered


@pytest.fixture(scope='module')
def browser():
    with Chromium(width=1200, height=900) as chromium:
        yield chromium


def test_a_dense_timeline_has_no_label_over_a_marker_or_a_label(tmp_path, browser):
    record = report_samples.dense_breach()
    path, rendered = write_report(tmp_path, record)
    browser.load(str(path))
    boxes = browser.evaluate(BOXES)
    assert len(boxes['items']) == len(record['timeline']) + 1  # every entry, and the SLA marker
    assert boxes['items'][0]['kind'] == 'sla'
    assert_no_overlap(boxes)
    # the 17 entries of the first 17 seconds read top-down in time order
    entries = [item for item in boxes['items'] if item['kind'] == 'entry']
    assert [item['marker']['y'] for item in entries[:17]] == sorted(item['marker']['y'] for item in entries[:17])
    # what Chromium drew is what the layout computed (textLength pins each line's width)
    computed = rendered_layout(record)
    for drawn, planned in zip(entries, computed['points']):
        assert abs(drawn['box']['x'] - planned['label']['box']['x']) <= 1 and abs(drawn['box']['w'] - planned['label']['box']['w']) <= 1
        for text, line in zip(drawn['texts'], planned['label']['lines']):
            assert abs(text['w'] - line['w']) <= 1.5, (text, line)


def rendered_layout(record):
    metrics = report.incident_metrics(record, load_catalog().profile(record['type'], record['severity']))
    return report.timeline_figure(record, metrics)


def test_long_labels_wide_characters_and_a_burst_at_the_right_end(tmp_path, browser):
    record = report_samples.dense_breach()
    last = record['timeline'][-1]['time']
    for number in range(8):
        record['timeline'].append({'time': last, 'phase': 'communication', 'kind': 'note', 'actor': 'bob', 'details': {},
                                   'message': ('\u8b66\u544a note %d ' % number) + 'a very long remark about what was seen ' * (number % 3 + 1)})
    record['timeline'].append({'time': last, 'phase': 'lessons_learned', 'kind': 'note', 'actor': 'bob', 'details': {},
                               'message': 'x' * 400})
    path, _rendered = write_report(tmp_path, record)
    browser.load(str(path))
    boxes = browser.evaluate(BOXES)
    assert len(boxes['items']) == len(record['timeline']) + 1
    assert_no_overlap(boxes)


def test_html_header_carries_the_same_facts_as_the_markdown(tmp_path, browser):
    record = report_samples.dense_breach()
    path, rendered = write_report(tmp_path, record)
    browser.load(str(path))
    facts = browser.evaluate("""Object.fromEntries([...document.querySelectorAll('#facts th')].map(
        (th) => [th.textContent.trim(), th.nextElementSibling.textContent.trim()]))""")
    assert facts['Acknowledged'] == '2026-11-24T22:58:00Z by alice' and facts['Mitigated'] == '2026-11-24T22:51:17Z'
    assert '| Acknowledged | 2026-11-24T22:58:00Z by alice |' in rendered['markdown']
    assert '| Mitigated | 2026-11-24T22:51:17Z |' in rendered['markdown']
    rows = browser.evaluate("[...document.querySelectorAll('#evaluation tr')].map((tr) => [...tr.cells].map((c) => c.textContent.trim()))")
    assert ['response SLA', 'met', ''] in rows and '| response SLA | met | |' in rendered['markdown']
    notifications = browser.evaluate("[...document.querySelectorAll('#notifications li')].map((li) => li.textContent.trim())")
    assert notifications == ['2026-11-24T22:51:00Z slack initial: sent after 1 attempt(s)', '2026-11-24T22:51:01Z pagerduty initial: sent after 1 attempt(s)',
                             '2026-11-24T22:51:17Z slack status_update: sent after 1 attempt(s)',
                             '2026-11-24T23:31:01Z slack resolution: sent after 1 attempt(s)']
    assert all('- %s' % line in rendered['markdown'] for line in notifications)
    attention = browser.evaluate("document.querySelector('#attention').textContent.replace(/\\s+/g, ' ')")
    assert 'rotate_credentials (eradication): needs person' in attention and 'verify_health (recovery): unverified' in attention
    assert 'slurm-exporter-7d9c6-9qzvb: logs: 403 forbidden' in attention
    assert '- **rotate_credentials (eradication)**: needs person' in rendered['markdown']


def test_trends_page_draws_its_charts_inline(tmp_path, browser):
    catalog = load_catalog()
    rendered = report.render_trends(report_samples.trend_records(), now=NOW,
                                    profile_for=lambda record: catalog.profile(record['type'], record['severity']))
    path = tmp_path / 'trends.html'
    path.write_text(rendered['html'], encoding='utf-8')
    browser.load(str(path))
    charts = browser.evaluate("""[...document.querySelectorAll('figure.chart svg')].map((svg) => ({id: svg.id,
        bars: svg.querySelectorAll('rect[fill]:not([x="0"])').length, width: svg.getBoundingClientRect().width}))""")
    assert [chart['id'] for chart in charts] == ['chart-per-month', 'chart-per-type', 'chart-sla', 'chart-drills']
    assert all(chart['bars'] > 0 and chart['width'] > 300 for chart in charts)
    assert browser.evaluate("[...document.querySelectorAll('link, script, img, [src]')].length") == 0
    follow_ups = browser.evaluate("document.querySelectorAll('#follow-ups tr').length")
    assert follow_ups == 1 + len(rendered['figures']['follow_ups']) and rendered['figures']['follow_ups']
