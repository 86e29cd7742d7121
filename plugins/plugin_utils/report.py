# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Figures for the post-incident report and the trends report (pure functions over records), and their rendering
(Markdown and a self-contained HTML page each; charts are inline SVG, no external asset)."""

from __future__ import annotations

import collections
import datetime

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import drill as drill_scoring
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError
from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils import figures
from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils.render import (
    REVIEW_WITHIN, environment, human_duration, incident_context, parse_ts, render)

OPEN_FOLLOW_UP = ('open', 'in_progress')
CHART_WIDTH = 960

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


def timeline_figure(record, metrics=None, width=960):
    """The SVG timeline: each entry's marker on its time, its label beside it (layout computed so that no label
    overlaps a marker or another label), and the response SLA as a marker of its own."""
    start = parse_ts(record['created_at'])
    items = []
    for entry in record['timeline']:
        offset = max((parse_ts(entry['time']) - start).total_seconds(), 0.0)
        items.append({'offset': offset, 'text': '%s %s' % (entry['time'][11:19], entry['message']),
                      'colour': PHASE_COLOURS.get(entry['phase'], '#333333'),
                      'title': '%s +%s %s (%s): %s' % (entry['time'], human_duration(offset), entry['phase'], entry['actor'], entry['message'])})
    sla_seconds = sla_text = None
    if metrics and metrics.get('response_target_s'):
        sla_seconds = float(metrics['response_target_s'])
        verdict = {'met': 'met', 'missed': 'missed'}.get(metrics['sla'], metrics['sla'])
        sla_text = 'SLA: acknowledge within %s (%s)' % (metrics['response_target'], verdict)
    layout = figures.timeline_layout(items, sla_seconds, sla_text, width=width)
    layout['phases'] = sorted({entry['phase'] for entry in record['timeline']})
    layout['colours'] = PHASE_COLOURS
    return layout


def render_incident_report(record, profile, extra=None, user_dir=None, now=None, links=None):
    env = environment('reports', user_dir)
    context = incident_context(record, profile, extra, now, links)
    context['metrics'] = incident_metrics(record, profile)
    context['figure'] = timeline_figure(record, context['metrics'])
    return {'markdown': render(env, 'incident.md.j2', context), 'html': render(env, 'incident.html.j2', context),
            'metrics': context['metrics']}


def _mean(values):
    return sum(values) / len(values) if values else None


def _drill_score(record, profile_for):
    if profile_for is None:
        return None
    try:
        return drill_scoring.score(record, profile_for(record))
    except (IncidentResponseError, KeyError, TypeError, ValueError):
        return None


def open_follow_ups(records, now):
    """Follow-ups still open or in progress across incidents, the overdue first, then by due date."""
    today = now.strftime('%Y-%m-%d')
    items = []
    for record in records:
        for item in record.get('follow_ups') or []:
            if item.get('status') not in OPEN_FOLLOW_UP:
                continue
            due = item.get('due') or ''
            items.append({'incident': record['id'], 'incident_title': record.get('title', ''), 'drill': record.get('drill', False),
                          'title': item.get('title', ''), 'owner': item.get('owner') or '', 'due': due or None,
                          'status': item['status'], 'overdue': bool(due) and due[:10] < today})
    return sorted(items, key=lambda item: (not item['overdue'], item['due'] or '9999', item['incident'], item['title']))


def trends(records, since=None, until=None, profile_for=None, now=None):
    """Per month: incidents by type and severity, MTTA/MTTR, SLA compliance; per type: MTTA/MTTR and SLA; drills
    counted apart (with their scores when ``profile_for(record)`` gives the catalog profile); the open follow-ups."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    months = collections.OrderedDict()
    types = {}
    drills = []
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
            score = _drill_score(record, profile_for)
            drills.append({'id': record['id'], 'type': record['type'], 'created_at': record['created_at'], 'month': month,
                           'tta_s': tta, 'tta': human_duration(tta), 'score': score})
            continue
        bucket['incidents'] += 1
        bucket['by_type'][record['type']] += 1
        bucket['by_severity'][record['severity']] += 1
        ttr = _seconds(record['created_at'], record.get('resolved_at'))
        if tta is not None:
            bucket['tta'].append(tta)
        if ttr is not None:
            bucket['ttr'].append(ttr)
        kind = types.setdefault(record['type'], {'type': record['type'], 'incidents': 0, 'tta': [], 'ttr': [], 'sla_met': 0, 'sla_total': 0})
        kind['incidents'] += 1
        if tta is not None:
            kind['tta'].append(tta)
        if ttr is not None:
            kind['ttr'].append(ttr)
        due = record.get('response_due_at')
        if record.get('acknowledged_at') or record['status'] == 'resolved':
            bucket['sla_total'] += 1
            kind['sla_total'] += 1
            if record.get('acknowledged_at') and due and record['acknowledged_at'] <= due:
                bucket['sla_met'] += 1
                kind['sla_met'] += 1
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
    by_type = []
    for kind in sorted(types.values(), key=lambda item: item['type']):
        by_type.append({'type': kind['type'], 'incidents': kind['incidents'],
                        'mtta_s': _mean(kind['tta']), 'mttr_s': _mean(kind['ttr']),
                        'mtta': human_duration(_mean(kind['tta'])) if kind['tta'] else 'n/a',
                        'mttr': human_duration(_mean(kind['ttr'])) if kind['ttr'] else 'n/a',
                        'sla': '%d/%d' % (kind['sla_met'], kind['sla_total']),
                        'sla_pct': round(100.0 * kind['sla_met'] / kind['sla_total'], 1) if kind['sla_total'] else None})
    scored = [item['score'] for item in drills if item['score']]
    return {'since': since, 'until': until, 'months': rows, 'by_type': by_type, 'drill_runs': drills,
            'drills_passed': sum(1 for score in scored if score['passed']), 'drills_scored': len(scored),
            'follow_ups': open_follow_ups(records, now),
            'total': sum(row['incidents'] for row in rows), 'drills': sum(row['drills'] for row in rows)}


def trends_charts(figures_):
    """The charts of the trends page: MTTA/MTTR per month and per type, SLA attainment per month, drill scores."""
    months = [row['month'] for row in figures_['months']]
    charts = {
        'per_month': figures.bar_chart(months, [
            {'name': 'MTTA', 'colour': '#1f77b4', 'values': [row['mtta_s'] for row in figures_['months']]},
            {'name': 'MTTR', 'colour': '#ff7f0e', 'values': [row['mttr_s'] for row in figures_['months']]}],
            title='Mean time to acknowledge and to resolve, per month', width=CHART_WIDTH),
        'per_type': figures.bar_chart([row['type'] for row in figures_['by_type']], [
            {'name': 'MTTA', 'colour': '#1f77b4', 'values': [row['mtta_s'] for row in figures_['by_type']]},
            {'name': 'MTTR', 'colour': '#ff7f0e', 'values': [row['mttr_s'] for row in figures_['by_type']]}],
            title='Mean time to acknowledge and to resolve, per incident type', width=CHART_WIDTH),
        'sla': figures.bar_chart(months, [
            {'name': 'response SLA met', 'colour': '#2ca02c', 'values': [row['sla_pct'] for row in figures_['months']]}],
            kind='percent', title='Response SLA attainment, per month', width=CHART_WIDTH),
    }
    runs = [item for item in figures_['drill_runs'] if item['score']][-24:]
    charts['drills'] = figures.bar_chart([item['created_at'][:10] for item in runs], [
        {'name': 'stages met', 'colour': '#17becf', 'values': [item['score']['met'] for item in runs]}],
        kind='count', ceiling=max(item['score']['total'] for item in runs), width=CHART_WIDTH,
        title='Drill scores: stages met (acknowledge, mitigate, resolve in time), per drill') if runs else None
    return charts


def render_trends(records, since=None, until=None, user_dir=None, now=None, profile_for=None):
    """The trends report as Markdown and as an HTML page with charts; ``figures`` are the numbers behind both."""
    env = environment('reports', user_dir)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    figures_ = trends(records, since, until, profile_for, now)
    context = {'trends': figures_, 'now': now.strftime('%Y-%m-%dT%H:%M:%SZ'), 'charts': trends_charts(figures_)}
    return {'markdown': render(env, 'trends.md.j2', context), 'html': render(env, 'trends.html.j2', context), 'figures': figures_}
