# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The timeline layout: no label over a marker or another label, whatever the timeline looks like."""
from __future__ import annotations

import itertools
import random

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils import figures


def check(layout):
    """Every label box clear of every other label box and of every marker; everything inside the figure."""
    labels, markers, ticks = figures.figure_boxes(layout)
    for a, b in itertools.combinations(labels, 2):
        assert not figures.overlaps(a, b), (a, b)
    for label, marker in itertools.product(labels, markers):
        assert not figures.overlaps(label, marker), (label, marker)
    for a, b in itertools.combinations(ticks, 2):
        assert not figures.overlaps(a, b), (a, b)
    for item in labels + markers + ticks:
        assert item['x'] >= 0 and item['y'] >= 0, item
        assert item['x'] + item['w'] <= layout['width'] and item['y'] + item['h'] <= layout['height'], item
    for tick, label in itertools.product(ticks, labels):
        assert not figures.overlaps(tick, label)
    for point in layout['points']:
        box = point['label']['box']
        for line in point['label']['lines']:
            assert box['x'] <= line['x'] and line['x'] + line['w'] <= box['x'] + box['w'] + 0.2, (line, box)


def items(offsets, text='Action isolate_pods: success'):
    return [{'offset': offset, 'text': '%s %s' % (index, text), 'colour': '#1f77b4'} for index, offset in enumerate(offsets)]


def test_a_burst_in_one_second_stacks_without_overlap_and_keeps_whole_labels():
    layout = figures.timeline_layout(items([0] * 12 + [11, 11, 12, 13, 40]), sla_seconds=900, sla_text='SLA: acknowledge by +15m')
    check(layout)
    assert all(point['label']['complete'] for point in layout['points'])
    assert [line['text'] for line in layout['points'][0]['label']['lines']] == ['0 Action isolate_pods: success']


def test_marker_and_label_geometry_is_exact():
    layout = figures.timeline_layout([{'offset': 0, 'text': 'opened', 'colour': '#d62728'},
                                      {'offset': 100, 'text': 'resolved', 'colour': '#2ca02c'}], width=400)
    first, second = layout['points']
    assert layout['axis'] == {'x0': 48, 'x1': 352, 'y': 34}
    assert (first['x'], first['y'], first['marker']) == (48, 53, {'x': 43, 'y': 48, 'w': 10, 'h': 10})
    assert first['label'] == {'box': {'x': 58, 'y': 44, 'w': 47.6, 'h': 18}, 'side': 'right', 'complete': True,
                              'lines': [{'text': 'opened', 'x': 62, 'y': 57, 'w': 39.6}]}
    # the last marker sits at the right end: its label goes to the left of it, on the same row (no overlap)
    assert second['x'] == 352 and second['label']['side'] == 'left' and second['row'] == 0
    assert second['label']['box'] == {'x': 281.2, 'y': 44, 'w': 60.8, 'h': 18}
    assert [(tick['x'], tick['label'], tick['box']) for tick in layout['ticks']] == [
        (48, '+0s', {'x': 38.1, 'y': 8, 'w': 19.8, 'h': 14}), (230.4, '+1m', {'x': 220.5, 'y': 8, 'w': 19.8, 'h': 14})]
    check(layout)


def test_long_labels_wrap_instead_of_being_cut():
    text = 'Notification status_update via slack: failed after 5 attempts because the webhook answered 500 ' * 3
    layout = figures.timeline_layout(items([0, 5, 5, 600], text), width=700)
    check(layout)
    label = layout['points'][0]['label']
    assert len(label['lines']) == figures.MAX_LINES and not label['complete'] and label['lines'][-1]['text'].endswith('\u2026')
    short = figures.timeline_layout(items([0], 'x' * 100), width=960)['points'][0]['label']
    assert [line['text'] for line in short['lines']] == ['0', 'x' * 64, 'x' * 36] and short['complete']


def test_an_sla_far_beyond_the_last_entry_breaks_the_axis():
    layout = figures.timeline_layout(items([0, 3, 8, 17, 22]), sla_seconds=900, sla_text='SLA: acknowledge by +15m')
    check(layout)
    assert layout['axis_break'] is not None
    assert layout['sla']['x'] > layout['axis_break']['x'] > max(point['x'] for point in layout['points'])
    assert layout['ticks'][-1]['label'] == '+15m'
    near = figures.timeline_layout(items([0, 300, 750]), sla_seconds=900)
    assert near['axis_break'] is None and near['sla']['x'] == near['axis']['x1']


def test_wide_characters_and_control_characters():
    layout = figures.timeline_layout(items([0, 1, 2], '\u8b66\u544a\u30a2\u30e9\u30fc\u30c8 \x1b[31m red \u0301'), width=500)
    check(layout)
    assert figures.cells('\u8b66\u544a') == 4 and figures.cells('e\u0301') == 1
    assert '\x1b' not in layout['points'][0]['label']['lines'][0]['text']


@pytest.mark.parametrize('seed', range(12))
def test_random_timelines_never_overlap(seed):
    rng = random.Random(seed)
    count = rng.choice([1, 3, 20, 60])
    span = rng.choice([5, 120, 7200, 200000])
    offsets = sorted(rng.choice([0, span, rng.uniform(0, span)]) for _number in range(count))
    texts = ['w' * rng.randint(1, 140) if rng.random() < 0.3 else 'Action step_%d: success' % n for n in range(count)]
    sla = rng.choice([None, 900, span / 2, span * 10])
    layout = figures.timeline_layout([{'offset': o, 'text': t} for o, t in zip(offsets, texts)], sla_seconds=sla,
                                     sla_text='SLA', width=rng.choice([420, 700, 960]))
    check(layout)


def test_bar_chart_scales_and_labels():
    chart = figures.bar_chart(['2026-01', '2026-02'], [{'name': 'MTTA', 'colour': '#1f77b4', 'values': [600, None]},
                                                       {'name': 'MTTR', 'colour': '#ff7f0e', 'values': [7200, 1800]}])
    assert [tick['label'] for tick in chart['y_ticks']] == ['0s', '30m', '1h', '1h30m', '2h']
    assert [(item['series'], item['label'], item['missing']) for item in chart['bars']] == [
        ('MTTA', '10m', False), ('MTTR', '2h', False), ('MTTA', 'n/a', True), ('MTTR', '30m', False)]
    assert chart['bars'][1]['h'] == chart['plot']['h']
    percent = figures.bar_chart(['a'] * 30, [{'name': 'SLA', 'colour': '#2ca02c', 'values': [50] * 30}], kind='percent')
    assert percent['width'] >= 30 * 50 and percent['y_ticks'][-1]['label'] == '100%'
