# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Figures for the post-incident report and the monthly trends report (pure functions over records)."""

from __future__ import annotations

import collections
import datetime

from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils.render import (
    REVIEW_WITHIN, environment, human_duration, incident_context, parse_ts, render)

PHASE_COLOURS = {
    'detection': '#d62728', 'triage': '#ff7f0e', 'containment': '#9467bd', 'investigation': '#1f77b4',
    'eradication': '#8c564b', 'recovery': '#2ca02c', 'communication': '#7f7f7f', 'escalation': '#e377c2',
    'lessons_learned': '#17becf',
}


def _seconds(start, end):
    if not start or not end:
        return None
    return (parse_ts(end) - parse_ts(start)).total_seconds()


def incident_metrics(record, profile):
    """Times to acknowledge, mitigate and resolve; the response SLA of the severity, met or missed."""
    tta = _seconds(record['created_at'], record.get('acknowledged_at'))
    ttm = _seconds(record['created_at'], record.get('mitigated_at'))
    ttr = _seconds(record['created_at'], record.get('resolved_at'))
    target = profile['severity_response_time_s']
    if tta is not None:
        sla = 'met' if tta <= target else 'missed'
    else:
        sla = 'missed (never acknowledged)' if record['status'] == 'resolved' else 'open'
    resolved = parse_ts(record.get('resolved_at'))
    return {
        'tta_s': tta, 'ttm_s': ttm, 'ttr_s': ttr,
        'tta': human_duration(tta), 'ttm': human_duration(ttm), 'ttr': human_duration(ttr),
        'response_target_s': target, 'response_target': human_duration(target), 'sla': sla,
        'review_due': (resolved + REVIEW_WITHIN).strftime('%Y-%m-%dT%H:%M:%SZ') if resolved else None,
        'notifications_sent': sum(1 for item in record['notifications'] if item['status'] == 'sent'),
        'notifications_failed': sum(1 for item in record['notifications'] if item['status'] == 'failed'),
        'actions_failed': [action for action in record['actions'] if action['result'] == 'failed'],
    }


def timeline_figure(record, width=900, row=22):
    """Coordinates of an SVG timeline: one marker per entry along a time axis from creation to the last entry."""
    entries = record['timeline']
    start = parse_ts(record['created_at'])
    end = max([parse_ts(entry['time']) for entry in entries] + [parse_ts(record.get('resolved_at')) or start, start])
    span = max((end - start).total_seconds(), 1.0)
    left, right = 60, width - 20
    points = []
    for index, entry in enumerate(entries):
        offset = (parse_ts(entry['time']) - start).total_seconds()
        points.append({'x': round(left + (right - left) * offset / span, 1), 'y': 40 + index * row, 'phase': entry['phase'],
                       'colour': PHASE_COLOURS.get(entry['phase'], '#333333'), 'label': '%s %s' % (entry['time'][11:19], entry['message'][:90]),
                       'offset': human_duration(offset)})
    ticks = [{'x': round(left + (right - left) * fraction, 1), 'label': human_duration(span * fraction)} for fraction in (0, 0.25, 0.5, 0.75, 1)]
    return {'width': width, 'height': 60 + len(entries) * row, 'left': left, 'right': right, 'points': points, 'ticks': ticks,
            'phases': sorted({entry['phase'] for entry in entries}), 'colours': PHASE_COLOURS}


def render_incident_report(record, profile, extra=None, user_dir=None, now=None):
    env = environment('reports', user_dir)
    context = incident_context(record, profile, extra, now)
    context['metrics'] = incident_metrics(record, profile)
    context['figure'] = timeline_figure(record)
    return {'markdown': render(env, 'incident.md.j2', context), 'html': render(env, 'incident.html.j2', context),
            'metrics': context['metrics']}


def trends(records, since=None, until=None):
    """Per month: incidents by type and severity, MTTA/MTTR, SLA compliance; drills counted apart."""
    months = collections.OrderedDict()
    for record in sorted(records, key=lambda item: item['created_at']):
        month = record['created_at'][:7]
        bucket = months.setdefault(month, {'month': month, 'incidents': 0, 'drills': 0, 'by_type': collections.Counter(),
                                           'by_severity': collections.Counter(), 'tta': [], 'ttr': [], 'sla_met': 0, 'sla_total': 0,
                                           'drill_tta': []})
        tta = _seconds(record['created_at'], record.get('acknowledged_at'))
        if record['drill']:
            bucket['drills'] += 1
            if tta is not None:
                bucket['drill_tta'].append(tta)
            continue
        bucket['incidents'] += 1
        bucket['by_type'][record['type']] += 1
        bucket['by_severity'][record['severity']] += 1
        ttr = _seconds(record['created_at'], record.get('resolved_at'))
        if tta is not None:
            bucket['tta'].append(tta)
        if ttr is not None:
            bucket['ttr'].append(ttr)
        due = record.get('response_due_at')
        if record.get('acknowledged_at') or record['status'] == 'resolved':
            bucket['sla_total'] += 1
            if record.get('acknowledged_at') and due and record['acknowledged_at'] <= due:
                bucket['sla_met'] += 1
    rows = []
    for bucket in months.values():
        rows.append({
            'month': bucket['month'], 'incidents': bucket['incidents'], 'drills': bucket['drills'],
            'by_type': dict(sorted(bucket['by_type'].items())), 'by_severity': dict(sorted(bucket['by_severity'].items())),
            'mtta': human_duration(sum(bucket['tta']) / len(bucket['tta'])) if bucket['tta'] else 'n/a',
            'mttr': human_duration(sum(bucket['ttr']) / len(bucket['ttr'])) if bucket['ttr'] else 'n/a',
            'mtta_s': sum(bucket['tta']) / len(bucket['tta']) if bucket['tta'] else None,
            'mttr_s': sum(bucket['ttr']) / len(bucket['ttr']) if bucket['ttr'] else None,
            'sla': '%d/%d' % (bucket['sla_met'], bucket['sla_total']),
            'sla_pct': round(100.0 * bucket['sla_met'] / bucket['sla_total'], 1) if bucket['sla_total'] else None,
            'drill_mtta': human_duration(sum(bucket['drill_tta']) / len(bucket['drill_tta'])) if bucket['drill_tta'] else 'n/a',
        })
    return {'since': since, 'until': until, 'months': rows,
            'total': sum(row['incidents'] for row in rows), 'drills': sum(row['drills'] for row in rows)}


def render_trends(records, since=None, until=None, user_dir=None, now=None):
    env = environment('reports', user_dir)
    figures = trends(records, since, until)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {'markdown': render(env, 'trends.md.j2', {'trends': figures, 'now': now.strftime('%Y-%m-%dT%H:%M:%SZ')}),
            'figures': figures}
