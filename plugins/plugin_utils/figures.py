# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Layouts of the report figures, computed: pure functions that return every coordinate the SVG templates draw.

The timeline places each entry's marker on its time and its label beside it, then packs the items (marker and
label) into rows so that no label overlaps a marker or another label; long labels wrap instead of being cut. Text is
drawn in a monospace font with ``textLength`` set to the width computed here, so the browser draws each line exactly
as wide as the layout assumed, whatever the font.

Boxes are ``{'x', 'y', 'w', 'h'}`` in SVG user units (pixels), y growing downwards.
"""

from __future__ import annotations

import math
import unicodedata

FONT_SIZE = 11
CHAR_WIDTH = 6.6          # DejaVu Sans Mono's advance at 11 px is 6.62; textLength makes it exact
LINE_HEIGHT = 14
ASCENT = 11               # baseline below the top of a line
PAD_X = 4
PAD_Y = 2
MARKER_RADIUS = 5
MARKER_GAP = 5            # between a marker and its label
ITEM_GAP = 6              # horizontal clearance between two items in one row
ROW_PITCH = 22
MAX_LINE_CELLS = 64
MAX_LINES = 4
MARGIN = 8
TICK_SPACING = 110        # at least this many pixels between two ticks
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
BREAK_WIDTH = 110         # the part of the axis after a break, for an SLA far beyond the last entry
ELLIPSIS = '\u2026'


# -- text ---------------------------------------------------------------------------------------------
def cells(text):
    """Width of ``text`` in monospace cells: East Asian wide characters count two, combining marks none."""
    count = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        count += 2 if unicodedata.east_asian_width(char) in ('W', 'F') else 1
    return count


def _clean(text):
    return ' '.join(''.join(char if char.isprintable() else ' ' for char in str(text)).split())


def _cut(word, limit):
    """The longest prefix of ``word`` that fits in ``limit`` cells, and the rest."""
    used = 0
    for index, char in enumerate(word):
        width = cells(char)
        if used + width > limit:
            return word[:index], word[index:]
        used += width
    return word, ''


def wrap(text, limit, max_lines=MAX_LINES):
    """``text`` in lines of at most ``limit`` cells (words kept whole when they fit), at most ``max_lines``; the last
    line ends with an ellipsis when text was left out. Returns ``(lines, complete)``."""
    limit = max(int(limit), 4)
    words = _clean(text).split(' ')
    lines, current = [], ''
    for word in words:
        if not word:
            continue
        candidate = word if not current else current + ' ' + word
        if cells(candidate) <= limit:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ''
        while cells(word) > limit:
            head, word = _cut(word, limit)
            lines.append(head)
        current = word
    if current or not lines:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines, True
    kept = lines[:max_lines]
    last, _rest = _cut(kept[-1], limit - 1)
    kept[-1] = last.rstrip() + ELLIPSIS
    return kept, False


# -- boxes --------------------------------------------------------------------------------------------
def box(x, y, w, h):
    return {'x': round(x, 1), 'y': round(y, 1), 'w': round(w, 1), 'h': round(h, 1)}


def overlaps(a, b, clearance=0.0):
    """True when boxes ``a`` and ``b`` (grown by ``clearance``) share any area."""
    return (a['x'] < b['x'] + b['w'] + clearance and b['x'] < a['x'] + a['w'] + clearance and
            a['y'] < b['y'] + b['h'] + clearance and b['y'] < a['y'] + a['h'] + clearance)


def _collides(a, b):
    """Two footprints of the timeline collide when they share rows and come closer than ITEM_GAP sideways."""
    return (a['x'] < b['x'] + b['w'] + ITEM_GAP and b['x'] < a['x'] + a['w'] + ITEM_GAP and
            a['y'] < b['y'] + b['h'] and b['y'] < a['y'] + a['h'])


# -- time axis ----------------------------------------------------------------------------------------
def _duration(seconds):
    seconds = int(round(seconds))
    if seconds <= 0:
        return '0s'
    parts = []
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60), ('s', 1)):
        if seconds >= size:
            value, seconds = divmod(seconds, size)
            parts.append('%d%s' % (value, unit))
    return ''.join(parts[:2])


class _Scale:
    """Seconds since the start to x; with a break when the SLA lies far beyond the last entry."""

    def __init__(self, x0, x1, main_span, sla=None):
        self.x0, self.x1 = x0, x1
        self.broken = sla is not None and sla > main_span * 1.25 and (x1 - x0) > 3 * BREAK_WIDTH
        self.main_span = max(main_span if self.broken else max(main_span, sla or 0), 1.0)
        self.main_end = x1 - BREAK_WIDTH if self.broken else x1
        self.sla = sla

    def __call__(self, seconds):
        if self.broken and seconds > self.main_span:
            return self.x1 - 14 if seconds >= (self.sla or 0) else self.main_end + 24
        return self.x0 + (self.main_end - self.x0) * min(max(seconds, 0.0), self.main_span) / self.main_span

    def ticks(self):
        count = max(int((self.main_end - self.x0) // TICK_SPACING), 1)
        step = next((step for step in NICE_STEPS if self.main_span / step <= count), None)
        if step is None:
            step = math.ceil(self.main_span / count / 86400.0) * 86400
        values = [step * index for index in range(int(self.main_span // step) + 1)]
        if self.broken and self.sla is not None:
            values.append(self.sla)
        return values


def _tick_labels(scale, width, top):
    ticks = []
    for seconds in scale.ticks():
        x = scale(seconds)
        label = '+' + _duration(seconds)
        w = cells(label) * CHAR_WIDTH
        left = min(max(x - w / 2, MARGIN), width - MARGIN - w)
        ticks.append({'x': round(x, 1), 'label': label, 'text_x': round(left, 1), 'text_y': top + ASCENT, 'text_w': round(w, 1),
                      'box': box(left, top, w, LINE_HEIGHT)})
    kept = []
    for tick in ticks:  # never two tick labels over each other (a short axis): keep the first
        if not any(overlaps(tick['box'], other['box'], 4) for other in kept):
            kept.append(tick)
    return kept


# -- timeline -----------------------------------------------------------------------------------------
def _label_geometry(x, text, width):
    """Where the label of a marker at ``x`` goes: the side with room (right first), wrapped to fit."""
    right_room = width - MARGIN - (x + MARKER_RADIUS + MARKER_GAP) - 2 * PAD_X
    left_room = (x - MARKER_RADIUS - MARKER_GAP) - MARGIN - 2 * PAD_X
    wanted = min(cells(_clean(text)), MAX_LINE_CELLS) * CHAR_WIDTH
    side = 'right' if right_room >= wanted or right_room >= left_room else 'left'
    room = right_room if side == 'right' else left_room
    lines, complete = wrap(text, min(MAX_LINE_CELLS, max(int(room // CHAR_WIDTH), 4)))
    text_w = max(cells(line) for line in lines) * CHAR_WIDTH
    box_w = text_w + 2 * PAD_X
    box_x = x + MARKER_RADIUS + MARKER_GAP if side == 'right' else x - MARKER_RADIUS - MARKER_GAP - box_w
    return side, lines, complete, box_x, box_w


def timeline_layout(items, sla_seconds=None, sla_text=None, width=960):
    """The timeline figure.

    ``items``: ``{'offset': seconds since the start, 'text': label, 'colour': ..., 'title': tooltip}`` in time order.
    ``sla_seconds``: where the SLA marker goes (a diamond on its own line, with ``sla_text``), or ``None``.

    Returns ``{'width', 'height', 'axis': {'x0', 'x1', 'y'}, 'axis_break': {'x'} or None, 'ticks': [...],
    'sla': {...} or None, 'points': [{'x', 'y', 'marker': box, 'shape', 'colour', 'title', 'label': {...}}]}`` where each
    label is ``{'box', 'lines': [{'text', 'x', 'y', 'w'}], 'side', 'complete'}``.
    """
    x0, x1 = MARGIN + 40, width - MARGIN - 40
    main_span = max([float(item['offset']) for item in items] + [1.0])
    scale = _Scale(x0, x1, main_span, sla_seconds)
    ticks = _tick_labels(scale, width, MARGIN)
    axis_y = MARGIN + LINE_HEIGHT + 12
    band_top = axis_y + 10
    sequence = []
    if sla_seconds is not None:
        sequence.append({'offset': sla_seconds, 'text': sla_text or 'SLA', 'colour': '#d62728', 'title': sla_text or 'SLA',
                         'shape': 'diamond', 'kind': 'sla'})
    sequence.extend(dict(item, shape='circle', kind='entry') for item in items)
    placed, footprints = [], []
    for item in sequence:
        x = scale(float(item['offset']))
        side, lines, complete, box_x, box_w = _label_geometry(x, item['text'], width)
        box_h = len(lines) * LINE_HEIGHT + 2 * PAD_Y
        span = max(1, int(math.ceil((box_h + 4) / float(ROW_PITCH))))
        reach = (min(x - MARKER_RADIUS, box_x) - ITEM_GAP, max(x + MARKER_RADIUS, box_x + box_w) + ITEM_GAP)
        # reading order: below every earlier item whose marker lies under this one's footprint (a burst reads top-down)
        row = max([point['row'] + point['span'] for point in placed if reach[0] <= point['x'] <= reach[1]] + [0])
        while True:
            top = band_top + row * ROW_PITCH
            marker_y = top + PAD_Y + LINE_HEIGHT / 2.0
            marker = box(x - MARKER_RADIUS, marker_y - MARKER_RADIUS, 2 * MARKER_RADIUS, 2 * MARKER_RADIUS)
            label_box = box(box_x, top, box_w, box_h)
            left = min(marker['x'], label_box['x'])
            right = max(marker['x'] + marker['w'], label_box['x'] + label_box['w'])
            footprint = box(left, top, right - left, span * ROW_PITCH - 2)
            if not any(_collides(footprint, other) for other in footprints):
                break
            row += 1
        footprints.append(footprint)
        text_x = box_x + PAD_X
        placed.append({
            'x': round(x, 1), 'y': round(marker_y, 1), 'marker': marker, 'shape': item['shape'], 'kind': item['kind'],
            'colour': item.get('colour') or '#333333', 'title': item.get('title') or item['text'], 'row': row, 'span': span,
            'label': {'box': label_box, 'side': side, 'complete': complete,
                      'lines': [{'text': line, 'x': round(text_x, 1), 'y': round(top + PAD_Y + index * LINE_HEIGHT + ASCENT, 1),
                                 'w': round(cells(line) * CHAR_WIDTH, 1)} for index, line in enumerate(lines)]},
        })
    bottom = max([footprint['y'] + footprint['h'] for footprint in footprints] + [band_top])
    sla = next((point for point in placed if point['kind'] == 'sla'), None)
    return {'width': width, 'height': int(math.ceil(bottom + MARGIN)), 'font_size': FONT_SIZE,
            'axis': {'x0': x0, 'x1': x1, 'y': axis_y}, 'ticks': ticks,
            'axis_break': {'x': round(scale.main_end + 12, 1)} if scale.broken else None,
            'sla': sla, 'points': [point for point in placed if point['kind'] == 'entry']}


def figure_boxes(layout):
    """Every label box, marker box and tick label box of a timeline layout, for checks: ``(labels, markers, ticks)``."""
    points = layout['points'] + ([layout['sla']] if layout['sla'] else [])
    return ([point['label']['box'] for point in points], [point['marker'] for point in points],
            [tick['box'] for tick in layout['ticks']])


# -- bar charts (trends) ------------------------------------------------------------------------------
def _nice_ceiling(value):
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        ceiling = factor * 10 ** exponent
        if ceiling >= value:
            return float(ceiling)
    return float(10 ** (exponent + 1))


def _nice_duration_ceiling(seconds):
    for step in NICE_STEPS + (1209600, 2592000):
        if step * 4 >= seconds:
            return float(step * 4), float(step)
    return _nice_ceiling(seconds), _nice_ceiling(seconds) / 4


def bar_chart(categories, series, kind='duration', width=None, height=220, title='', ceiling=None):
    """A grouped bar chart: ``categories`` along x, one bar per series in each group.

    ``series``: ``[{'name', 'colour', 'values': [number or None per category]}]``. ``kind``: ``duration`` (seconds,
    labelled 5m, 2h...), ``percent`` (0-100) or ``count`` (``ceiling`` sets the top, e.g. 3 stages). A missing value
    draws no bar and says ``n/a``. The chart widens so that every group keeps room for its bars and its label.
    """
    per_group = max(max(len(series), 1) * 26 + 24, 84)
    left, right, top, bottom_room = 64, 16, 36, 44
    width = max(width or 0, left + right + per_group * max(len(categories), 1), 360)
    plot_w = width - left - right
    plot_h = height - top - bottom_room
    values = [value for item in series for value in item['values'] if value is not None]
    highest = max(values) if values else 0
    if kind == 'percent':
        ceiling, step = 100.0, 25.0
    elif kind == 'duration':
        ceiling, step = _nice_duration_ceiling(highest)
    else:
        ceiling = float(ceiling or _nice_ceiling(max(highest, 1)))
        step = 1.0 if ceiling <= 6 and ceiling == int(ceiling) else ceiling / 4
    fmt = {'percent': lambda v: '%d%%' % round(v), 'duration': _duration, 'count': lambda v: '%g' % v}[kind]
    y_ticks = []
    value = 0.0
    while value <= ceiling + 1e-9:
        y = top + plot_h - plot_h * value / ceiling
        y_ticks.append({'y': round(y, 1), 'label': fmt(value), 'text_x': left - 6, 'text_y': round(y + 4, 1)})
        value += step
    group_w = plot_w / float(max(len(categories), 1))
    bar_w = min(22.0, (group_w - 16) / max(len(series), 1))
    bars, groups = [], []
    for index, category in enumerate(categories):
        gx = left + group_w * index
        inner = bar_w * len(series)
        start = gx + (group_w - inner) / 2.0
        label_cells = max(int((group_w - 4) // CHAR_WIDTH), 3)
        lines, _complete = wrap(category, label_cells, 2)
        groups.append({'x': round(gx + group_w / 2.0, 1), 'label': category,
                       'lines': [{'text': line, 'y': top + plot_h + 14 + number * 12} for number, line in enumerate(lines)]})
        for number, item in enumerate(series):
            value = item['values'][index]
            x = start + bar_w * number
            if value is None:
                bars.append({'x': round(x, 1), 'y': top + plot_h, 'w': round(bar_w - 2, 1), 'h': 0, 'colour': item['colour'],
                             'series': item['name'], 'label': 'n/a', 'label_y': top + plot_h - 4, 'missing': True})
                continue
            h = plot_h * min(value, ceiling) / ceiling
            bars.append({'x': round(x, 1), 'y': round(top + plot_h - h, 1), 'w': round(bar_w - 2, 1), 'h': round(h, 1),
                         'colour': item['colour'], 'series': item['name'], 'label': fmt(value),
                         'label_y': round(top + plot_h - h - 4, 1), 'missing': False})
    return {'width': int(width), 'height': height, 'title': title, 'plot': {'x': left, 'y': top, 'w': plot_w, 'h': plot_h},
            'y_ticks': y_ticks, 'groups': groups, 'bars': bars,
            'legend': [{'name': item['name'], 'colour': item['colour']} for item in series]}
