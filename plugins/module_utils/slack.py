# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Slack: Block Kit messages within Slack's limits, and posting them (incoming webhook, or the Web API with one
thread per incident).

The builders (:func:`header`, :func:`section`, :func:`fields`, :func:`button`, ...) are given to the notification
templates as ``bk``; every one of them keeps its part inside Slack's published limits (header 150 characters,
section text 3000, ten fields of 2000, 25 elements per actions block, button text 75 and value 2000, 50 blocks per
message), cutting text at a safe place and marking the cut with an ellipsis. :func:`fit` applies the same limits
to a whole payload, so that a message from a user's own template is never refused by Slack for its size.

Text passed as mrkdwn is markup: values from the incident must already be escaped with :func:`escape` (the
``slack_escape`` template filter), so that a label cannot mention ``@channel`` or form a link.

The action_id values of the interactive buttons are a contract with the inbound receiver (docs/notifications.md):
``incident_acknowledge`` and ``incident_resolve`` with the incident ID as value, ``incident_approve`` and
``incident_reject`` with ``INC-YYYYMMDD-NNNN:<phase>:<action>``; link buttons are ``incident_link_<kind>``.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import approvals
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.notify import slack_api, slack_webhook

MAX_BLOCKS = 50
MAX_FALLBACK = 3000
HEADER_TEXT = 150
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTON_URL = 3000
ACTION_ID = 255
BLOCK_ID = 255
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
ELLIPSIS = '\u2026'

ACKNOWLEDGE = 'incident_acknowledge'
RESOLVE = 'incident_resolve'
# The approval request's buttons (module_utils/approvals.py): value INC-YYYYMMDD-NNNN:<phase>:<action>.
APPROVE = 'incident_approve'
REJECT = 'incident_reject'
INTERACTIVE = (ACKNOWLEDGE, RESOLVE, APPROVE, REJECT)
LINK_PREFIX = 'incident_link_'

BLOCK_TYPES = ('header', 'section', 'context', 'actions', 'divider', 'image', 'rich_text', 'input', 'file', 'video')
TEXT_TYPES = ('plain_text', 'mrkdwn')
_ENTITY_TAIL = re.compile(r'&[a-z#0-9]{0,6}$')
_OPEN_TAG_TAIL = re.compile(r'<[^>]*$')


def escape(value):
    """Slack mrkdwn escaping: &, < and > (so that text cannot form mentions or links)."""
    return str(value).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def truncate(text, limit):
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    text = str(text)
    if len(text) <= limit:
        return text
    return text[:max(limit - 1, 0)].rstrip() + ELLIPSIS


def truncate_mrkdwn(text, limit):
    """Like :func:`truncate`, never cutting an escape (``&amp;``), a mention or a link (``<...>``) in two."""
    text = str(text)
    if len(text) <= limit:
        return text
    cut = text[:max(limit - 1, 0)]
    for pattern in (_ENTITY_TAIL, _OPEN_TAG_TAIL):
        match = pattern.search(cut)
        if match:
            cut = cut[:match.start()]
    # an unbalanced *bold*, _italic_ or `code` only loses its formatting: Slack shows the character
    return cut.rstrip() + ELLIPSIS


def plain(text, limit=SECTION_TEXT):
    return {'type': 'plain_text', 'text': truncate(text, limit) or ' ', 'emoji': True}


def mrkdwn(text, limit=SECTION_TEXT):
    return {'type': 'mrkdwn', 'text': truncate_mrkdwn(text, limit) or ' '}


# -- builders (the templates' ``bk``) -----------------------------------------------------------------
def header(text):
    """A header block (plain text, 150 characters at most)."""
    text = ' '.join(str(text).split())
    return {'type': 'header', 'text': plain(text, HEADER_TEXT)} if text else None


def section(text):
    """A section of mrkdwn (markup; escape data first); ``None`` for empty text, which templates may leave out."""
    text = str(text or '').strip('\n')
    if not text.strip():
        return None
    return {'type': 'section', 'text': mrkdwn(text, SECTION_TEXT)}


def field(label, value):
    """One field of a fields section: the label in bold over the value (markup)."""
    value = str(value) if value not in (None, '') else '-'
    return mrkdwn('*%s*\n%s' % (label, value), FIELD_TEXT)


def fields(items):
    """A section of up to ten fields (from :func:`field`); the rest are dropped (ten is Slack's limit)."""
    items = [item for item in (items or []) if item]
    if not items:
        return None
    return {'type': 'section', 'fields': items[:MAX_FIELDS]}


def context(items):
    """A context block of mrkdwn texts (markup), ten at most."""
    elements = [mrkdwn(str(item).strip()) for item in (items or []) if item is not None and str(item).strip()]
    return {'type': 'context', 'elements': elements[:CONTEXT_ELEMENTS]} if elements else None


def divider():
    return {'type': 'divider'}


def confirm(title, text, ok, deny='Cancel'):
    """A confirmation dialog for a button."""
    return {'title': plain(title, CONFIRM_TITLE), 'text': plain(text, CONFIRM_TEXT), 'confirm': plain(ok, CONFIRM_BUTTON),
            'deny': plain(deny, CONFIRM_BUTTON)}


def button(text, action_id, value=None, url=None, style=None, confirm=None):  # pylint: disable=redefined-outer-name
    """A button: interactive (``value``) or a link (``url``); ``style`` primary or danger."""
    element = {'type': 'button', 'text': plain(text, BUTTON_TEXT), 'action_id': str(action_id)[:ACTION_ID]}
    if value is not None:
        element['value'] = str(value)[:BUTTON_VALUE]
    if url:
        if len(url) > BUTTON_URL:
            return None  # a cut URL points elsewhere: leave the button out
        element['url'] = url
    if style in ('primary', 'danger'):
        element['style'] = style
    if confirm:
        element['confirm'] = confirm
    return element


def link_button(link):
    """A link button from a link of :func:`messages.incident_links` (``kind``, ``text``, ``url``)."""
    return button(link['text'], LINK_PREFIX + link['kind'], url=link['url'])


def link_buttons(links):
    """Link buttons for a list of links."""
    return [link_button(link) for link in links or []]


def actions(elements, block_id=None):
    """An actions block of buttons (25 at most); ``None`` when there is none."""
    elements = [element for element in (elements or []) if element][:ACTIONS_ELEMENTS]
    if not elements:
        return None
    block = {'type': 'actions', 'elements': elements}
    if block_id:
        block['block_id'] = str(block_id)[:BLOCK_ID]
    return block


def message(text, blocks):
    """The message: a fallback ``text`` (what notifications and screen readers show) and the blocks, fitted."""
    return fit({'text': text, 'blocks': [block for block in (blocks or []) if block]})


# -- limits -------------------------------------------------------------------------------------------
def _fit_text(obj, limit):
    if not isinstance(obj, dict) or not isinstance(obj.get('text'), str):
        return obj
    obj = dict(obj)
    cut = truncate_mrkdwn if obj.get('type') == 'mrkdwn' else truncate
    obj['text'] = cut(obj['text'], limit) or ' '
    return obj


def _fit_element(element, seen):
    if not isinstance(element, dict):
        return element
    element = dict(element)
    if element.get('type') == 'button':
        element['text'] = _fit_text(element.get('text'), BUTTON_TEXT)
        if isinstance(element.get('value'), str):
            element['value'] = element['value'][:BUTTON_VALUE]
        if isinstance(element.get('confirm'), dict):
            dialog = dict(element['confirm'])
            for key, limit in (('title', CONFIRM_TITLE), ('text', CONFIRM_TEXT), ('confirm', CONFIRM_BUTTON), ('deny', CONFIRM_BUTTON)):
                if key in dialog:
                    dialog[key] = _fit_text(dialog[key], limit)
            element['confirm'] = dialog
    elif element.get('type') in TEXT_TYPES:
        element = _fit_text(element, SECTION_TEXT)
    action_id = element.get('action_id')
    if isinstance(action_id, str):
        action_id = action_id[:ACTION_ID]
        unique, number = action_id, 1
        while unique in seen:
            number += 1
            suffix = '_%d' % number
            unique = action_id[:ACTION_ID - len(suffix)] + suffix
        seen.add(unique)
        element['action_id'] = unique
    return element


def _fit_block(block, seen):
    if not isinstance(block, dict):
        return block
    block = dict(block)
    kind = block.get('type')
    if kind == 'header':
        block['text'] = _fit_text(block.get('text'), HEADER_TEXT)
    elif kind == 'section':
        if 'text' in block:
            block['text'] = _fit_text(block['text'], SECTION_TEXT)
        if isinstance(block.get('fields'), list):
            block['fields'] = [_fit_text(item, FIELD_TEXT) for item in block['fields'][:MAX_FIELDS]]
        if isinstance(block.get('accessory'), dict):
            block['accessory'] = _fit_element(block['accessory'], seen)
    elif kind == 'context' and isinstance(block.get('elements'), list):
        block['elements'] = [_fit_element(item, seen) for item in block['elements'][:CONTEXT_ELEMENTS]]
    elif kind == 'actions' and isinstance(block.get('elements'), list):
        block['elements'] = [_fit_element(item, seen) for item in block['elements'][:ACTIONS_ELEMENTS]]
    if isinstance(block.get('block_id'), str):
        block['block_id'] = block['block_id'][:BLOCK_ID]
    return block


def fit(payload):
    """``payload`` within Slack's limits: texts cut, lists capped, action_ids made unique, a fallback text present.

    Over 50 blocks, the blocks before the last actions/context blocks are dropped from the end, so that the
    buttons and links stay. Idempotent on a payload that already fits.
    """
    payload = copy.deepcopy(payload) if isinstance(payload, dict) else {'text': str(payload)}
    blocks = payload.get('blocks')
    if isinstance(blocks, list):
        if len(blocks) > MAX_BLOCKS:
            tail = []
            while blocks and len(tail) < 2 and isinstance(blocks[-1], dict) and blocks[-1].get('type') in ('actions', 'context'):
                tail.insert(0, blocks.pop())
            blocks = blocks[:MAX_BLOCKS - len(tail)] + tail
        seen = set()
        payload['blocks'] = [_fit_block(block, seen) for block in blocks]
    text = payload.get('text')
    if not isinstance(text, str) or not text.strip():
        text = _first_text(payload.get('blocks') or []) or 'Incident notification'
    payload['text'] = truncate_mrkdwn(text, MAX_FALLBACK)
    return payload


def _first_text(blocks):
    for block in blocks:
        if isinstance(block, dict) and isinstance(block.get('text'), dict) and block['text'].get('text', '').strip():
            return block['text']['text']
    return ''


# -- posting ------------------------------------------------------------------------------------------
class SlackSettings:  # pylint: disable=too-few-public-methods
    """The ``slack`` option of incident_notify."""

    def __init__(self, webhook_url=None, token=None, api_url='https://slack.com/api', channel=None, thread=True, buttons=True):
        self.webhook_url = webhook_url
        self.token = token
        self.api_url = api_url or 'https://slack.com/api'
        self.channel = channel
        self.thread = thread if thread is not None else True
        self.buttons = buttons if buttons is not None else True

    @classmethod
    def from_option(cls, option):
        return cls(**{key: option.get(key) for key in ('webhook_url', 'token', 'api_url', 'channel', 'thread', 'buttons')})

    def problem(self):
        if not self.webhook_url and not self.token:
            return 'slack: give webhook_url or token'
        return None


def without_buttons(payload):
    """The payload with the interactive buttons (acknowledge, resolve, approve, reject) taken out; link buttons stay."""
    payload = copy.deepcopy(payload)
    blocks = []
    for block in payload.get('blocks') or []:
        if isinstance(block, dict) and block.get('type') == 'actions':
            elements = [element for element in block.get('elements') or []
                        if not (isinstance(element, dict) and element.get('action_id') in INTERACTIVE)]
            if not elements:
                continue
            block = dict(block, elements=elements)
        blocks.append(block)
    if 'blocks' in payload:
        payload['blocks'] = blocks
    return payload


def post(sender, settings, record, template, payload, default_channel):
    """Send one message; returns ``(delivery, thread)`` where ``thread`` is the ``x_slack_thread`` extension
    to record (the first message of the incident in a channel, Web API only) or ``None``.

    Web API: the channel is ``settings.channel`` or the catalog's for the incident's category; later messages go
    to the thread of the first one, and the resolution is also broadcast to the channel.
    """
    payload = dict(payload) if settings.buttons else without_buttons(payload)
    if not settings.token:
        return slack_webhook(sender, settings.webhook_url, payload), None
    channel = settings.channel or default_channel
    payload['channel'] = channel
    thread = record.get('x_slack_thread') or {}
    if settings.thread and thread.get('channel') == channel and thread.get('ts'):
        payload['thread_ts'] = thread['ts']
        if template == 'resolution':
            payload['reply_broadcast'] = True
    delivery = slack_api(sender, settings.api_url, settings.token, payload)
    started = None
    if delivery.status == 'sent' and not payload.get('thread_ts') and delivery.detail.get('ts'):
        started = {'channel': channel, 'ts': delivery.detail['ts']}
    return delivery, started


def problems(payload):
    """What Slack would refuse in ``payload`` (a list of messages; empty when it fits). For tests and checks."""
    found = []
    if not isinstance(payload, dict):
        return ['payload: expected an object']
    blocks = payload.get('blocks')
    if blocks is not None:
        if not isinstance(blocks, list):
            return ['blocks: expected a list']
        if len(blocks) > MAX_BLOCKS:
            found.append('blocks: %d blocks, more than %d' % (len(blocks), MAX_BLOCKS))
        if not isinstance(payload.get('text'), str) or not payload['text'].strip():
            found.append('text: the fallback text is missing')
    for index, block in enumerate(blocks or []):
        found.extend(_block_problems(block, '/blocks/%d' % index))
    ids = [element.get('action_id') for block in blocks or [] if isinstance(block, dict)
           for element in (block.get('elements') or []) + ([block['accessory']] if isinstance(block.get('accessory'), dict) else [])
           if isinstance(element, dict) and element.get('action_id')]
    duplicates = sorted({item for item in ids if ids.count(item) > 1})
    if duplicates:
        found.append('action_id: not unique: %s' % ', '.join(duplicates))
    return found


def _text_problems(obj, path, limit, kinds=TEXT_TYPES):
    if not isinstance(obj, dict) or obj.get('type') not in kinds:
        return ['%s: expected a %s text object' % (path, ' or '.join(kinds))]
    text = obj.get('text')
    if not isinstance(text, str) or not text:
        return ['%s/text: must be a non-empty string' % path]
    if len(text) > limit:
        return ['%s/text: %d characters, more than %d' % (path, len(text), limit)]
    return []


def _block_problems(block, path):
    if not isinstance(block, dict) or block.get('type') not in BLOCK_TYPES:
        return ['%s: unknown block type' % path]
    kind = block['type']
    found = []
    if kind == 'header':
        found.extend(_text_problems(block.get('text'), path + '/text', HEADER_TEXT, ('plain_text',)))
    elif kind == 'section':
        if 'text' not in block and 'fields' not in block:
            found.append('%s: a section needs text or fields' % path)
        if 'text' in block:
            found.extend(_text_problems(block['text'], path + '/text', SECTION_TEXT))
        if 'fields' in block:
            if not isinstance(block['fields'], list) or len(block['fields']) > MAX_FIELDS:
                found.append('%s/fields: at most %d' % (path, MAX_FIELDS))
            else:
                for index, item in enumerate(block['fields']):
                    found.extend(_text_problems(item, '%s/fields/%d' % (path, index), FIELD_TEXT))
    elif kind == 'context':
        elements = block.get('elements')
        if not isinstance(elements, list) or not elements or len(elements) > CONTEXT_ELEMENTS:
            found.append('%s/elements: 1 to %d elements' % (path, CONTEXT_ELEMENTS))
        else:
            for index, item in enumerate(elements):
                found.extend(_text_problems(item, '%s/elements/%d' % (path, index), SECTION_TEXT))
    elif kind == 'actions':
        elements = block.get('elements')
        if not isinstance(elements, list) or not elements or len(elements) > ACTIONS_ELEMENTS:
            found.append('%s/elements: 1 to %d elements' % (path, ACTIONS_ELEMENTS))
        else:
            for index, item in enumerate(elements):
                found.extend(_button_problems(item, '%s/elements/%d' % (path, index)))
    return found


def _button_problems(element, path):
    if not isinstance(element, dict) or element.get('type') != 'button':
        return []
    found = _text_problems(element.get('text'), path + '/text', BUTTON_TEXT, ('plain_text',))
    if not isinstance(element.get('action_id'), str) or not 0 < len(element['action_id']) <= ACTION_ID:
        found.append('%s/action_id: 1 to %d characters' % (path, ACTION_ID))
    if len(str(element.get('value', ''))) > BUTTON_VALUE:
        found.append('%s/value: more than %d characters' % (path, BUTTON_VALUE))
    if len(str(element.get('url', ''))) > BUTTON_URL:
        found.append('%s/url: more than %d characters' % (path, BUTTON_URL))
    if element.get('style') not in (None, 'primary', 'danger'):
        found.append('%s/style: primary or danger' % path)
    return found


BUILDERS = {
    'header': header, 'section': section, 'field': field, 'fields': fields, 'context': context, 'divider': divider,
    'button': button, 'link_button': link_button, 'link_buttons': link_buttons, 'confirm': confirm, 'actions': actions, 'message': message,
    'ACKNOWLEDGE': ACKNOWLEDGE, 'RESOLVE': RESOLVE, 'APPROVE': APPROVE, 'REJECT': REJECT, 'approval_value': approvals.button_value,
}
