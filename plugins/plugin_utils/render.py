# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side rendering of the collection's notification and report templates.

Templates are rendered with Jinja's immutable sandbox, never with Ansible's templar: the
incident record (alert labels and annotations included) is passed in as data, so a value such
as ``{{ lookup('pipe', 'id') }}`` is printed as it is. A template directory given by the user
is searched before the collection's own ``templates/``.
"""

from __future__ import annotations

import datetime
import json
import os

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible.errors import AnsibleActionFail

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = os.path.join(COLLECTION_ROOT, 'templates')
SPECIAL_MENTIONS = {'@channel': '<!channel>', '@here': '<!here>', '@everyone': '<!everyone>'}
REVIEW_WITHIN = datetime.timedelta(hours=48)


def slack_escape(value):
    """Slack mrkdwn escaping: &, < and > (so text cannot form mentions or links)."""
    return str(value).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


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
    env.policies['json.dumps_kwargs'] = {'sort_keys': False, 'ensure_ascii': False}
    return env


def render(env, name, context):
    try:
        return env.get_template(name).render(context)
    except TemplateError as exc:
        raise AnsibleActionFail('template %s: %s' % (name, exc)) from None


def incident_context(record, catalog_profile, extra=None, now=None):
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
    }


def render_notification(template, record, catalog_profile, extra=None, user_dir=None, now=None):
    """Render ``template`` (initial, status_update, resolution, ...) for every format.

    Returns ``{'text': str, 'email': {'subject', 'body'}, 'slack': dict, 'pagerduty': dict}``.
    """
    env = environment('notifications', user_dir)
    context = incident_context(record, catalog_profile, extra, now)
    text = render(env, '%s.text.j2' % template, context).strip() + '\n'
    context['text'] = text
    messages = {'text': text}
    mail = render(env, '%s.email.j2' % template, context)
    first, _sep, body = mail.partition('\n')
    if not first.startswith('Subject: '):
        raise AnsibleActionFail('template %s.email.j2: the first line must be "Subject: ..."' % template)
    messages['email'] = {'subject': first[len('Subject: '):].strip(), 'body': body.lstrip('\n')}
    for fmt in ('slack', 'pagerduty'):
        raw = render(env, '%s.%s.j2' % (template, fmt), context)
        try:
            messages[fmt] = json.loads(raw)
        except ValueError as exc:
            raise AnsibleActionFail('template %s.%s.j2 did not produce JSON: %s' % (template, fmt, exc)) from None
    return messages
