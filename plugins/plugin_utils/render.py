# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side rendering of the collection's notification and report templates.

Templates are rendered with Jinja's immutable sandbox, never with Ansible's templar: the
incident record (alert labels and annotations included) is passed in as data, so a value such
as ``{{ lookup('pipe', 'id') }}`` is printed as it is. A template directory given by the user
is searched before the collection's own ``templates/``.

A notification is rendered for every format at once: the plain text, the Slack Block Kit
message (fitted to Slack's limits whatever the template produced), the e-mail (subject, the
plain text, and an HTML part drawn from the same blocks, so both say the same), the PagerDuty
event payload, and the incident's links.
"""

from __future__ import annotations

import datetime
import json
import os
import re

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from ansible.errors import AnsibleActionFail

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import messages as msg
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import slack

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = os.path.join(COLLECTION_ROOT, 'templates')
SPECIAL_MENTIONS = {'@channel': '<!channel>', '@here': '<!here>', '@everyone': '<!everyone>'}
REVIEW_WITHIN = datetime.timedelta(hours=48)


slack_escape = slack.escape
_SLACK_MARKUP = re.compile(r'<([^<>\s][^<>]*)>')
_STRAY_AMPERSAND = re.compile(r'&(?!(?:amp|lt|gt|quot|#\d{1,6}|#x[0-9a-fA-F]{1,6});)')
_INLINE = [(re.compile(r'(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])'), 'strong'),
           (re.compile(r'(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])'), 'em'),
           (re.compile(r'(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])'), 'del')]


def parse_ts(value):
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))


def human_duration(seconds):
    if seconds is None:
        return 'n/a'
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if days:
        parts.append('%dd' % days)
    if hours:
        parts.append('%dh' % hours)
    if minutes:
        parts.append('%dm' % minutes)
    if seconds and not days:
        parts.append('%ds' % seconds)
    return ' '.join(parts) or '0s'


def environment(kind, user_dir=None):
    """A sandboxed environment over ``templates/<kind>`` (and ``user_dir`` first)."""
    paths = []
    if user_dir:
        if not os.path.isdir(user_dir):
            raise AnsibleActionFail('template_dir: %s is not a directory' % user_dir)
        paths.append(user_dir)
    paths.append(os.path.join(TEMPLATES, kind))
    env = ImmutableSandboxedEnvironment(loader=FileSystemLoader(paths), undefined=StrictUndefined, keep_trailing_newline=True,
                                        autoescape=lambda name: bool(name) and name.endswith('.html.j2'))
    env.filters['slack_escape'] = slack_escape
    env.filters['human_duration'] = human_duration
    env.filters['result_label'] = msg.result_label
    env.filters['result_tone'] = msg.result_tone
    env.filters['attention_line'] = msg.attention_line
    env.filters['compensation'] = msg.compensation_text
    env.filters['evidence_gaps'] = msg.evidence_gaps
    env.globals['bk'] = slack.BUILDERS
    env.policies['json.dumps_kwargs'] = {'sort_keys': False, 'ensure_ascii': False}
    return env


def render(env, name, context):
    try:
        return env.get_template(name).render(context)
    except TemplateError as exc:
        raise AnsibleActionFail('template %s: %s' % (name, exc)) from None


def incident_context(record, catalog_profile, extra=None, now=None, link_settings=None):
    """Variables every template gets."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    created = parse_ts(record['created_at'])
    resolved = parse_ts(record.get('resolved_at'))
    profile = dict(catalog_profile)
    mention = profile.get('mention') or ''
    profile['mention_markup'] = SPECIAL_MENTIONS.get(mention, mention)
    next_update = {'P1': 'in 30 minutes', 'P2': 'in 1 hour', 'P3': 'in 4 hours'}.get(record['priority'], 'next business day')
    return {
        'incident': record,
        'profile': profile,
        'context': dict(extra or {}),
        'now': now.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'elapsed': human_duration((now - created).total_seconds()),
        'duration': human_duration(((resolved or now) - created).total_seconds()),
        'review_due': (resolved + REVIEW_WITHIN).strftime('%Y-%m-%dT%H:%M:%SZ') if resolved else 'after resolution',
        'next_update': next_update,
        'links': msg.incident_links(record, link_settings),
        'attention': msg.attention(record),
        'report_path': msg.report_path(record),
    }


def _inline_html(text):
    """mrkdwn text (no ``<...>`` markup left) as HTML: Slack's escapes kept, *bold*, _italic_, ~strike~, `code`."""
    pieces = re.split(r'(```[\s\S]*?```|`[^`\n]+`)', _STRAY_AMPERSAND.sub('&amp;', text))
    out = []
    for index, piece in enumerate(pieces):
        if index % 2:
            tag = 'pre' if piece.startswith('```') else 'code'
            inner = piece.strip('`')
            out.append('<%s>%s</%s>' % (tag, inner, tag))
            continue
        for pattern, tag in _INLINE:
            piece = pattern.sub(lambda match, tag=tag: '<%s>%s</%s>' % (tag, match.group(1), tag), piece)
        out.append(piece.replace('\n', '<br>\n'))
    return ''.join(out)


def _markup_html(token):
    """One Slack ``<...>`` token as HTML: a mention as its name, a safe link as a link, anything else as text."""
    target, _sep, label = token.partition('|')
    if target.startswith('!'):
        name = target[1:].split('^', 1)[0]
        return str(escape(label if label.startswith('@') else label or '@' + name))
    if target[:1] in ('@', '#'):
        return str(escape(target[0] + label if label else target))
    url = msg.safe_url(target)
    if url:
        return '<a href="%s">%s</a>' % (escape(url), escape(label or url))
    return str(escape('<%s>' % token))


def mrkdwn_html(text):
    """Slack mrkdwn (as the Block Kit templates write it, data already escaped) as safe HTML."""
    parts = _SLACK_MARKUP.split(str(text))
    out = []
    for index, part in enumerate(parts):
        out.append(_markup_html(part) if index % 2 else _inline_html(part))
    return Markup(''.join(out))  # nosec: every piece is escaped above


def email_parts(payload):
    """The blocks of a Slack message as the parts of the HTML e-mail: header, text, fields, context, links.

    Interactive buttons (acknowledge, resolve) are left out: they only work in Slack.
    """
    parts = []
    for block in payload.get('blocks') or []:
        if not isinstance(block, dict):
            continue
        kind = block.get('type')
        if kind == 'header':
            parts.append({'kind': 'header', 'text': block['text']['text']})
        elif kind == 'section':
            if isinstance(block.get('text'), dict):
                parts.append({'kind': 'text', 'html': _text_html(block['text'])})
            if block.get('fields'):
                parts.append({'kind': 'fields', 'items': [_text_html(item) for item in block['fields']]})
        elif kind == 'context':
            parts.append({'kind': 'context', 'items': [_text_html(item) for item in block.get('elements') or []
                                                       if isinstance(item, dict) and 'text' in item]})
        elif kind == 'actions':
            links = [{'text': element['text']['text'], 'url': element['url']} for element in block.get('elements') or []
                     if isinstance(element, dict) and msg.safe_url(element.get('url'))]
            if links:
                parts.append({'kind': 'links', 'links': links})
        elif kind == 'divider':
            parts.append({'kind': 'divider'})
    return parts


def _text_html(obj):
    if obj.get('type') == 'plain_text':
        return Markup(str(escape(obj.get('text', ''))).replace('\n', '<br>\n'))
    return mrkdwn_html(obj.get('text', ''))


def render_notification(template, record, catalog_profile, extra=None, user_dir=None, now=None, links=None):
    """Render ``template`` (initial, status_update, resolution, ...) for every format.

    ``links`` are the link settings (``report_url``, ``grafana_url``). Returns ``{'text': str, 'email': {'subject',
    'body', 'html'}, 'slack': dict, 'pagerduty': dict, 'links': [{kind, text, url}]}``.
    """
    env = environment('notifications', user_dir)
    context = incident_context(record, catalog_profile, extra, now, links)
    text = render(env, '%s.text.j2' % template, context).strip() + '\n'
    context['text'] = text
    messages = {'text': text, 'links': context['links']}
    for fmt in ('slack', 'pagerduty'):
        raw = render(env, '%s.%s.j2' % (template, fmt), context)
        try:
            messages[fmt] = json.loads(raw)
        except ValueError as exc:
            raise AnsibleActionFail('template %s.%s.j2 did not produce JSON: %s' % (template, fmt, exc)) from None
    messages['slack'] = slack.fit(messages['slack'])
    mail = render(env, '%s.email.j2' % template, context)
    first, _sep, body = mail.partition('\n')
    if not first.startswith('Subject: '):
        raise AnsibleActionFail('template %s.email.j2: the first line must be "Subject: ..."' % template)
    subject = first[len('Subject: '):].strip()
    context.update(subject=subject, parts=email_parts(messages['slack']))
    try:
        html_template = env.select_template(['%s.email.html.j2' % template, 'email.html.j2'])
        html = html_template.render(context)
    except TemplateError as exc:
        raise AnsibleActionFail('template %s.email.html.j2 / email.html.j2: %s' % (template, exc)) from None
    messages['email'] = {'subject': subject, 'body': body.lstrip('\n'), 'html': html}
    return messages
