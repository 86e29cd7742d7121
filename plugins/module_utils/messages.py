# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What messages and reports say about an incident beyond its fields: the links people follow (report, runbook,
alert source, Grafana) and what needs a person's attention (failed actions, actions a person must do, health not
verified, evidence with gaps, compensations). Pure functions over the record; every channel and report uses them.

Records carry results this version may not know yet (a newer writer): an unknown action result is shown as it is
(``needs_person`` -> "needs person") and counted as needing attention, never dropped and never an error.
"""

from __future__ import annotations

import datetime
import re
import urllib.parse

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

MAX_URL = 3000
GRAFANA_MARGIN = datetime.timedelta(minutes=15)
# How each action result reads; any other result is "attention" (a person should look at it).
RESULT_TONES = {'success': 'ok', 'failed': 'failed', 'skipped': 'muted', 'pending': 'pending', 'suppressed': 'muted'}
LINK_TEXTS = {'report': 'Report', 'runbook': 'Runbook', 'source': 'Alert source', 'grafana': 'Grafana'}
_UNSAFE_URL = re.compile(r'[\s<>"|\\^`{}\x00-\x1f\x7f]')
_DESCRIPTION_KEYS = ('reason', 'summary', 'message', 'msg', 'error', 'why')
_STEP_KEYS = ('steps', 'instructions', 'next_steps')
_SUBJECT_KEYS = ('object', 'pod', 'container', 'name', 'path', 'what', 'kind')


# -- results ----------------------------------------------------------------------------------------------
def result_label(result):
    """How an action result reads: ``needs_person`` -> ``needs person``; anything else as it is."""
    return str(result if result not in (None, '') else 'unknown').replace('_', ' ')


def result_tone(result):
    """ok, failed, muted (skipped, suppressed), pending, or attention (anything else, e.g. needs_person)."""
    return RESULT_TONES.get(result, 'attention')


def _text(value):
    """A detail value as one line of text (mappings as ``key=value``, lists joined)."""
    if value is None:
        return ''
    if isinstance(value, dict):
        return ', '.join('%s=%s' % (key, _text(item)) for key, item in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return '; '.join(_text(item) for item in value)
    return str(value)


def compensation_text(details):
    """``details.compensation`` of an action as text ('' when there is none).

    A list of steps ``{action, compensation, summary}`` (as the response records them) reads
    ``scale_down -> scale_restore (summary)``; a mapping ``{action, result, ...}`` reads ``<action>: <result> (other=values)``;
    text as it is.
    """
    value = (details or {}).get('compensation') if isinstance(details, dict) else None
    if value in (None, '', [], {}):
        return ''
    entries = value if isinstance(value, list) else [value]
    parts = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get('compensation'):
            text = '%s -> %s' % (entry.get('action') or entry.get('name') or 'action', _text(entry['compensation']))
            if entry.get('summary'):
                text += ' (%s)' % _text(entry['summary'])
            parts.append(text)
        elif isinstance(entry, dict):
            name = entry.get('action') or entry.get('name') or 'compensation'
            result = entry.get('result') or entry.get('status')
            rest = {key: item for key, item in entry.items() if key not in ('action', 'name', 'result', 'status')}
            text = str(name) + (': %s' % result_label(result) if result else '')
            if rest:
                text += ' (%s)' % _text(rest)
            parts.append(text)
        else:
            parts.append(_text(entry))
    return '; '.join(part for part in parts if part)


def gap_lines(gaps):
    """Gaps of an evidence capture as lines of text: a list of texts or ``{pod, reason}`` mappings, or a mapping of
    kind to what is missing (``{'logs': ['pod-a', 'pod-b']}`` -> ``logs: pod-a``, ``logs: pod-b``)."""
    if gaps in (None, [], '', {}):
        return []
    if isinstance(gaps, dict):
        lines = []
        for key, value in sorted(gaps.items()):
            for item in (value if isinstance(value, list) else [value]):
                lines.append('%s: %s' % (key, _text(item)))
        return [line for line in lines if line]
    lines = []
    for gap in (gaps if isinstance(gaps, list) else [gaps]):
        if isinstance(gap, dict):
            subject = next((gap[key] for key in _SUBJECT_KEYS if gap.get(key)), None)
            reason = next((gap[key] for key in _DESCRIPTION_KEYS if gap.get(key)), None)
            if subject is not None and reason is not None:
                lines.append('%s: %s' % (_text(subject), _text(reason)))
            else:
                lines.append(_text(gap))
        else:
            lines.append(_text(gap))
    return [line for line in lines if line]


def evidence_gaps(item):
    """The gaps of an evidence capture (``gaps`` on the entry or in its details) as lines of text."""
    if not isinstance(item, dict):
        return []
    gaps = item.get('gaps')
    if gaps in (None, [], '', {}):
        gaps = (item.get('details') or {}).get('gaps') if isinstance(item.get('details'), dict) else None
    return gap_lines(gaps)


def _unverified(details):
    """A health verification that could not verify: ``verified: false`` (verify_health), or any detail ``unverified``."""
    if not isinstance(details, dict):
        return False
    return details.get('verified') in (False, 'false', 'False') or any(value == 'unverified' for value in details.values())


def attention(record):
    """What needs a person, in record order: each ``{kind, title, label, tone, detail, steps, compensation}``.

    - actions that failed, or whose result this version does not know as settled (``needs_person``, ...);
    - actions whose details record a health verification as ``unverified``;
    - actions (an evidence capture) and evidence entries with gaps (logs of pods that could not be read, ...).
    """
    items = []
    for action in record.get('actions') or []:
        details = action.get('details') if isinstance(action.get('details'), dict) else {}
        tone = result_tone(action.get('result'))
        unverified = _unverified(details)
        gaps = gap_lines(details.get('gaps'))
        if tone not in ('failed', 'attention') and not unverified and not gaps:
            continue
        label = result_label(action.get('result'))
        if tone not in ('failed', 'attention'):
            label, tone = ('unverified' if unverified else 'gaps'), 'attention'
        description = next((_text(details[key]) for key in _DESCRIPTION_KEYS if details.get(key)), '')
        if gaps and not description:
            description = '%d item(s) could not be captured' % len(gaps)
        elif unverified and not description:
            description = 'nothing confirmed that the service works; a person confirms and resolves'

        steps = next((details[key] for key in _STEP_KEYS if details.get(key)), [])
        steps = [_text(step) for step in (steps if isinstance(steps, list) else [steps])] + gaps
        items.append({'kind': 'action', 'title': '%s (%s)' % (action.get('name'), action.get('phase')), 'label': label,
                      'tone': tone, 'detail': description, 'steps': steps, 'compensation': compensation_text(details)})
    for item in record.get('evidence') or []:
        gaps = evidence_gaps(item)
        if gaps:
            items.append({'kind': 'evidence', 'title': 'evidence %s' % item.get('path', ''), 'label': 'gaps', 'tone': 'attention',
                          'detail': '%d item(s) could not be captured' % len(gaps), 'steps': gaps, 'compensation': ''})
    return items


def attention_line(item):
    """One line of text for an attention item."""
    line = '%s: %s' % (item['title'], item['label'])
    if item['detail']:
        line += ' - %s' % item['detail']
    if item['compensation']:
        line += ' (compensation: %s)' % item['compensation']
    return line


# -- links ------------------------------------------------------------------------------------------------
def safe_url(value):
    """``value`` when it is an absolute http(s) URL that is safe to put in a link or button, else ``None``.

    Alert annotations are data: a ``javascript:`` URL, a URL with spaces, quotes or angle brackets (which could end
    a Slack link or an HTML attribute) or one longer than Slack's 3000 characters is left out.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_URL or _UNSAFE_URL.search(value):
        return None
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ('http', 'https') or not parts.netloc:
        return None
    return value


def check_link_settings(settings):
    """Validate the ``links`` option: report_url (with ``{id}``) and grafana_url, absolute http(s) URLs."""
    settings = settings or {}
    for key in ('report_url', 'grafana_url'):
        value = settings.get(key)
        if value in (None, ''):
            continue
        probe = value.replace('{id}', 'INC-20260101-0001') if key == 'report_url' else value
        if safe_url(probe) is None:
            raise ValidationError('links.%s: %r is not an absolute http(s) URL without spaces, quotes or braces%s'
                                  % (key, value, ' (other than {id})' if key == 'report_url' else ''))
    return settings


def grafana_url(base, record):
    """``base`` with the incident's time range (``from``/``to`` in epoch milliseconds, 15 minutes either side)."""
    starts = [timeutil.parse_ts(record['created_at'])]
    for alert in record.get('alerts') or []:
        if alert.get('startsAt'):
            try:
                starts.append(timeutil.parse_ts(alert['startsAt']))
            except ValidationError:
                pass
    begin = min(starts) - GRAFANA_MARGIN
    end = timeutil.parse_ts(record['resolved_at']) + GRAFANA_MARGIN if record.get('resolved_at') else None
    parts = urllib.parse.urlsplit(base)
    query = [(key, value) for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if key not in ('from', 'to')]
    query.append(('from', str(int(begin.timestamp() * 1000))))
    query.append(('to', str(int(end.timestamp() * 1000)) if end else 'now'))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, urllib.parse.urlencode(query), parts.fragment))


def incident_links(record, settings=None):
    """The links of an incident, in this order, each ``{kind, text, url}`` and only when there is a safe URL:

    report (``settings.report_url`` with ``{id}`` replaced), runbook (the first alert's ``runbook_url``
    annotation), source (the first alert's ``generatorURL``, where Prometheus shows the rule's query), grafana
    (``settings.grafana_url`` over the incident's time range).
    """
    settings = settings or {}
    links = []

    def add(kind, url):
        url = safe_url(url)
        if url:
            links.append({'kind': kind, 'text': LINK_TEXTS[kind], 'url': url})

    if settings.get('report_url'):
        add('report', settings['report_url'].replace('{id}', record['id']))
    alerts = record.get('alerts') or []
    runbook = next((alert['annotations']['runbook_url'] for alert in alerts
                    if safe_url((alert.get('annotations') or {}).get('runbook_url'))), None)
    add('runbook', runbook)
    source = next((alert['generatorURL'] for alert in alerts if safe_url(alert.get('generatorURL'))), None)
    add('source', source)
    if settings.get('grafana_url') and safe_url(settings['grafana_url']):
        add('grafana', grafana_url(settings['grafana_url'], record))
    return links


def report_path(record):
    """The path of the incident's HTML report (else its Markdown report) when one is registered, else ''."""
    reports = record.get('reports') or []
    for kind in ('html', 'markdown'):
        for item in reversed(reports):
            if item.get('kind') == kind and item.get('path'):
                return item['path']
    return ''
