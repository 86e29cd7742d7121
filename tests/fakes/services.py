# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP services on a free loopback port that answer as Slack and PagerDuty do.

- Slack incoming webhook ``/services/T0001/B0001/<secret>``: JSON with ``text`` or ``blocks``; 200 ``ok``,
  400 ``invalid_payload`` / ``no_text`` / ``invalid_blocks``, 404 ``no_service``.
- Slack Web API ``/api/chat.postMessage``: ``Authorization: Bearer <token>``; 200 with ``{"ok": true, "ts": ...}``
  or ``{"ok": false, "error": "invalid_auth" | "not_authed" | "channel_not_found" | "no_text" | "invalid_blocks"}``
  (``invalid_blocks`` with ``errors`` and ``response_metadata.messages`` naming the JSON pointer, as Slack does).
- Block Kit, on both: known block types; header text plain_text of at most 150 characters; section text at most
  3000, at most 10 fields of at most 2000; context 1-10 elements; actions 1-25 elements; buttons with plain_text
  of at most 75 characters, an action_id of 1-255 characters unique in the message, a value of at most 2000 and
  a url of at most 3000 characters, style primary or danger, a complete confirm dialog; text objects plain_text
  or mrkdwn with non-empty text; at most 50 blocks. A message with blocks must carry a fallback ``text`` (Slack
  only warns; push notifications and screen readers show it, so the fake refuses ``no_text``).
- PagerDuty Events API v2 ``/v2/enqueue``: 32-character routing key, event_action, dedup_key, and for trigger a
  payload with summary (at most 1024 characters), source and severity (critical, error, warning, info), a
  ``timestamp`` in ISO 8601, ``component``/``group``/``class`` strings, ``custom_details`` an object; ``links`` a
  list of objects with a string ``href`` and an optional string ``text``; ``images`` objects with ``src``;
  ``client``/``client_url`` strings; an event of at most 512 KB; 202 or 400 ``invalid event``.
- A generic webhook ``/hook`` (optional header check).
- Slack ``/api/views.open`` (the resolution dialog): bot token, a ``trigger_id``, a modal view within Slack's limits
  (title, submit and close plain_text of at most 24 characters, callback_id at most 255, private_metadata at most 3000,
  at most 100 blocks, input blocks with a plain_text label and a plain_text_input element with an action_id).
- Slack response URLs ``/actions/...`` and ``/commands/...`` (replies to an interaction): JSON with ``text`` or
  ``blocks``, ``response_type`` ephemeral or in_channel; 200 ``ok``, 400 ``invalid_payload``; each URL answers at most
  five times, as Slack's do.
- PagerDuty REST API v2 ``GET /incidents?incident_key=...`` and ``POST /incidents/<id>/notes``: ``Authorization: Token
  token=<api token>``, ``Accept: application/vnd.pagerduty+json;version=2``, a ``From`` e-mail address on writes, a note
  ``{"note": {"content": ...}}`` of at most 25,000 characters; 201 with the note, 400/401/404 with PagerDuty's error
  object. A trigger event on ``/v2/enqueue`` opens the PagerDuty incident (incident_key = the event's dedup key), as a
  service that creates incidents from events does.

Scripted answers (``script(path, [(status, headers, body), ...])``) come first: 429 with Retry-After, 500, ...
Every request is recorded with its time, headers and decoded JSON body.
"""

from __future__ import annotations

import collections
import http.server
import json
import re
import socketserver
import threading
import time
import urllib.parse

PD_SEVERITIES = ('critical', 'error', 'warning', 'info')
PD_MAX_EVENT = 512 * 1024
PD_TIMESTAMP = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$')
BLOCK_TYPES = ('header', 'section', 'context', 'actions', 'divider', 'image', 'rich_text', 'input', 'file', 'video')


def _text_errors(obj, pointer, limit, kinds=('plain_text', 'mrkdwn')):
    if not isinstance(obj, dict) or obj.get('type') not in kinds:
        return ['[ERROR] must be a %s text object [json-pointer:%s]' % (' or '.join(kinds), pointer)]
    errors = []
    if not isinstance(obj.get('text'), str) or not obj['text']:
        errors.append('[ERROR] must be more than 0 characters [json-pointer:%s/text]' % pointer)
    elif len(obj['text']) > limit:
        errors.append('[ERROR] must be less than %d characters [json-pointer:%s/text]' % (limit + 1, pointer))
    if 'emoji' in obj and obj.get('type') != 'plain_text':
        errors.append('[ERROR] emoji is only allowed in plain_text [json-pointer:%s/emoji]' % pointer)
    return errors


def _button_errors(element, pointer, action_ids):
    if not isinstance(element, dict) or element.get('type') != 'button':
        return ['[ERROR] unsupported element [json-pointer:%s]' % pointer]
    errors = _text_errors(element.get('text'), pointer + '/text', 75, ('plain_text',))
    action_id = element.get('action_id')
    if not isinstance(action_id, str) or not 0 < len(action_id) <= 255:
        errors.append('[ERROR] action_id must be 1-255 characters [json-pointer:%s/action_id]' % pointer)
    elif action_id in action_ids:
        errors.append('[ERROR] action_id already exists in message [json-pointer:%s/action_id]' % pointer)
    action_ids.add(action_id)
    if 'value' in element and (not isinstance(element['value'], str) or len(element['value']) > 2000):
        errors.append('[ERROR] must be less than 2001 characters [json-pointer:%s/value]' % pointer)
    if 'url' in element and (not isinstance(element['url'], str) or len(element['url']) > 3000
                             or not element['url'].startswith(('http://', 'https://'))):
        errors.append('[ERROR] must be a valid http(s) url of less than 3001 characters [json-pointer:%s/url]' % pointer)
    if element.get('style') not in (None, 'primary', 'danger'):
        errors.append('[ERROR] must be one of primary, danger [json-pointer:%s/style]' % pointer)
    if 'confirm' in element:
        dialog = element['confirm']
        if not isinstance(dialog, dict):
            errors.append('[ERROR] must be a confirm object [json-pointer:%s/confirm]' % pointer)
        else:
            for key, limit, required in (('title', 100, True), ('text', 300, True), ('confirm', 30, True), ('deny', 30, True)):
                if required and key not in dialog:
                    errors.append('[ERROR] missing required field: %s [json-pointer:%s/confirm]' % (key, pointer))
                elif key in dialog:
                    errors.extend(_text_errors(dialog[key], '%s/confirm/%s' % (pointer, key), limit,
                                               ('plain_text', 'mrkdwn') if key == 'text' else ('plain_text',)))
    return errors


def block_kit_errors(body):
    """Slack's own checks of a message's blocks, as ``[ERROR] ... [json-pointer:...]`` lines."""
    blocks = body.get('blocks')
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return ['[ERROR] expected an array [json-pointer:/blocks]']
    errors = []
    if len(blocks) > 50:
        errors.append('[ERROR] no more than 50 items allowed [json-pointer:/blocks]')
    action_ids, block_ids = set(), set()
    for index, block in enumerate(blocks):
        pointer = '/blocks/%d' % index
        if not isinstance(block, dict) or block.get('type') not in BLOCK_TYPES:
            errors.append('[ERROR] unsupported type [json-pointer:%s/type]' % pointer)
            continue
        kind = block['type']
        if 'block_id' in block:
            if not isinstance(block['block_id'], str) or len(block['block_id']) > 255 or block['block_id'] in block_ids:
                errors.append('[ERROR] invalid or duplicate block_id [json-pointer:%s/block_id]' % pointer)
            block_ids.add(block.get('block_id'))
        if kind == 'header':
            errors.extend(_text_errors(block.get('text'), pointer + '/text', 150, ('plain_text',)))
        elif kind == 'section':
            if 'text' not in block and 'fields' not in block:
                errors.append('[ERROR] must provide either text or fields [json-pointer:%s]' % pointer)
            if 'text' in block:
                errors.extend(_text_errors(block['text'], pointer + '/text', 3000))
            if 'fields' in block:
                fields = block['fields']
                if not isinstance(fields, list) or not fields or len(fields) > 10:
                    errors.append('[ERROR] must be 1-10 items [json-pointer:%s/fields]' % pointer)
                else:
                    for number, item in enumerate(fields):
                        errors.extend(_text_errors(item, '%s/fields/%d' % (pointer, number), 2000))
            if 'accessory' in block:
                errors.extend(_button_errors(block['accessory'], pointer + '/accessory', action_ids))
        elif kind == 'context':
            elements = block.get('elements')
            if not isinstance(elements, list) or not elements or len(elements) > 10:
                errors.append('[ERROR] must be 1-10 items [json-pointer:%s/elements]' % pointer)
            else:
                for number, item in enumerate(elements):
                    errors.extend(_text_errors(item, '%s/elements/%d' % (pointer, number), 3000))
        elif kind == 'actions':
            elements = block.get('elements')
            if not isinstance(elements, list) or not elements or len(elements) > 25:
                errors.append('[ERROR] must be 1-25 items [json-pointer:%s/elements]' % pointer)
            else:
                for number, item in enumerate(elements):
                    errors.extend(_button_errors(item, '%s/elements/%d' % (pointer, number), action_ids))
        elif kind == 'divider' and set(block) - {'type', 'block_id'}:
            errors.append('[ERROR] unsupported fields in divider [json-pointer:%s]' % pointer)
    return errors


def pagerduty_errors(body):
    """The Events API v2's checks of an event, as its ``errors`` list."""
    errors = []
    if len(json.dumps(body).encode()) > PD_MAX_EVENT:
        errors.append('Event object is larger than 512 KB')
    key = body.get('routing_key')
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' must be 32 characters")
    action = body.get('event_action')
    if action not in ('trigger', 'acknowledge', 'resolve'):
        errors.append("'event_action' is invalid")
    if action in ('acknowledge', 'resolve') and not body.get('dedup_key'):
        errors.append("'dedup_key' is required for %s" % action)
    if len(str(body.get('dedup_key', ''))) > 255:
        errors.append("'dedup_key' is too long")
    for field in ('client', 'client_url'):
        if field in body and not isinstance(body[field], str):
            errors.append("'%s' must be a string" % field)
    if action != 'trigger':
        return errors
    payload = body.get('payload')
    if not isinstance(payload, dict):
        return errors + ["'payload' is missing"]
    for field in ('summary', 'source', 'severity'):
        if not isinstance(payload.get(field), str) or not payload[field]:
            errors.append("'payload.%s' is missing" % field)
    if payload.get('severity') and payload['severity'] not in PD_SEVERITIES:
        errors.append("'payload.severity' is invalid")
    if len(str(payload.get('summary', ''))) > 1024:
        errors.append("'payload.summary' is too long")
    if 'timestamp' in payload and not (isinstance(payload['timestamp'], str) and PD_TIMESTAMP.match(payload['timestamp'])):
        errors.append("'payload.timestamp' is not ISO 8601")
    for field in ('component', 'group', 'class'):
        if field in payload and not isinstance(payload[field], str):
            errors.append("'payload.%s' must be a string" % field)
    if 'custom_details' in payload and not isinstance(payload['custom_details'], dict):
        errors.append("'payload.custom_details' must be an object")
    for field, required in (('links', 'href'), ('images', 'src')):
        if field not in body:
            continue
        items = body[field]
        if not isinstance(items, list):
            errors.append("'%s' must be an array" % field)
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get(required), str) or not item[required]:
                errors.append("'%s[%d].%s' is required" % (field, index, required))
            elif any(not isinstance(value, str) for value in item.values()):
                errors.append("'%s[%d]' fields must be strings" % (field, index))
    return errors


def slack_view_errors(view):
    """Slack's checks of a modal view (views.open)."""
    if not isinstance(view, dict) or view.get('type') != 'modal':
        return ['[ERROR] must be a modal view [json-pointer:/view/type]']
    errors = []
    for key, required in (('title', True), ('submit', False), ('close', False)):
        if key in view or required:
            errors.extend(_text_errors(view.get(key), '/view/' + key, 24, ('plain_text',)))
    if len(str(view.get('callback_id', ''))) > 255:
        errors.append('[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]')
    if len(str(view.get('private_metadata', ''))) > 3000:
        errors.append('[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]')
    blocks = view.get('blocks')
    if not isinstance(blocks, list) or len(blocks) > 100:
        return errors + ['[ERROR] must be 1-100 items [json-pointer:/view/blocks]']
    others = [block for block in blocks if not (isinstance(block, dict) and block.get('type') == 'input')]
    errors.extend(block_kit_errors({'blocks': others}))
    for index, block in enumerate(blocks):
        if not (isinstance(block, dict) and block.get('type') == 'input'):
            continue
        pointer = '/view/blocks/%d' % index
        errors.extend(_text_errors(block.get('label'), pointer + '/label', 2000, ('plain_text',)))
        element = block.get('element')
        if not isinstance(element, dict) or element.get('type') != 'plain_text_input':
            errors.append('[ERROR] unsupported element [json-pointer:%s/element]' % pointer)
        elif not isinstance(element.get('action_id'), str) or not 0 < len(element['action_id']) <= 255:
            errors.append('[ERROR] action_id must be 1-255 characters [json-pointer:%s/element/action_id]' % pointer)
        elif 'max_length' in element and not (isinstance(element['max_length'], int) and 0 < element['max_length'] <= 3000):
            errors.append('[ERROR] max_length must be 1-3000 [json-pointer:%s/element/max_length]' % pointer)
    return errors


class Services:  # pylint: disable=too-many-instance-attributes
    def __init__(self, slack_token='xoxb-test-0000-secret-token', webhook_secret='XyZsecretWebhookPart123', hook_token=None,
                 pagerduty_token='pd-rest-token-0123456789abcdef'):
        self.slack_token = slack_token
        self.webhook_secret = webhook_secret
        self.hook_token = hook_token
        self.pagerduty_token = pagerduty_token
        # PagerDuty incidents by id: {'id', 'incident_key', 'status', 'html_url', 'notes': [...]}
        self.pagerduty_incidents = {}
        self.response_url_uses = collections.Counter()
        self.requests = []
        self.scripts = collections.defaultdict(collections.deque)
        self.lock = threading.Lock()
        self.ts = 1700000000
        handler = type('Handler', (_Handler,), {'services': self})
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True)
        self.thread.start()

    @property
    def slack_webhook_url(self):
        return '%s/services/T0001/B0001/%s' % (self.url, self.webhook_secret)

    def script(self, path, answers):
        with self.lock:
            self.scripts[path].extend(answers)

    def received(self, path):
        with self.lock:
            return [entry for entry in self.requests if entry['path'] == path]

    def response_url(self, name='1'):
        """A Slack response URL of this fake (an interaction's ``response_url``)."""
        return '%s/actions/T0001/%s/Zx9%s' % (self.url, name, name)

    def pagerduty_incident(self, incident_key):
        with self.lock:
            return next((item for item in self.pagerduty_incidents.values() if item['incident_key'] == incident_key), None)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    services = None
    protocol_version = 'HTTP/1.1'
    # TCP_NODELAY: headers and body are two writes; with Nagle's algorithm the second waits for the client's
    # delayed ACK, 40 ms on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet."""

    def _answer(self, status, body, headers=None, content_type='application/json'):
        data = body if isinstance(body, bytes) else (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        services = self.services
        raw = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        path = urllib.parse.urlsplit(self.path).path
        with services.lock:
            services.requests.append({'time': time.monotonic(), 'path': path, 'target': self.path, 'headers': dict(self.headers),
                                      'body': body})
            scripted = services.scripts[path].popleft() if services.scripts[path] else None
        if scripted is not None:
            status, headers, answer = scripted
            self._answer(status, answer, headers, 'text/plain' if isinstance(answer, str) else 'application/json')
            return
        if self.path.startswith('/services/'):
            self._slack_webhook(body)
        elif path == '/api/chat.postMessage':
            self._slack_api(body)
        elif path == '/v2/enqueue':
            self._pagerduty(body)
        elif path == '/api/views.open':
            self._slack_views_open(body)
        elif path.startswith(('/actions/', '/commands/')):
            self._slack_response_url(path, body)
        elif path.startswith('/incidents/') and path.endswith('/notes'):
            self._pagerduty_note(path.split('/')[2], body)
        elif path == '/hook':
            if services.hook_token and self.headers.get('X-Token') != services.hook_token:
                self._answer(401, {'error': 'unauthorized'})
            elif not isinstance(body, dict):
                self._answer(400, {'error': 'expected JSON'})
            else:
                self._answer(200, {'received': True})
        else:
            self._answer(404, 'not found', content_type='text/plain')

    def _slack_webhook(self, body):
        if self.path != '/services/T0001/B0001/%s' % self.services.webhook_secret:
            self._answer(404, 'no_service', content_type='text/plain')
        elif not isinstance(body, dict) or self.headers.get('Content-Type', '').split(';')[0] != 'application/json':
            self._answer(400, 'invalid_payload', content_type='text/plain')
        elif not body.get('text') and not body.get('blocks'):
            self._answer(400, 'no_text', content_type='text/plain')
        elif body.get('blocks') is not None and not isinstance(body['blocks'], list):
            self._answer(400, 'invalid_blocks_format', content_type='text/plain')
        elif block_kit_errors(body):
            self._answer(400, 'invalid_blocks', content_type='text/plain')
        elif body.get('blocks') and (not isinstance(body.get('text'), str) or not body['text'].strip()):
            self._answer(400, 'no_text', content_type='text/plain')
        else:
            self._answer(200, 'ok', content_type='text/plain')

    def _slack_api(self, body):
        auth = self.headers.get('Authorization', '')
        if not auth:
            self._answer(200, {'ok': False, 'error': 'not_authed'})
        elif auth != 'Bearer %s' % self.services.slack_token:
            self._answer(200, {'ok': False, 'error': 'invalid_auth'})
        elif not isinstance(body, dict) or not body.get('channel'):
            self._answer(200, {'ok': False, 'error': 'channel_not_found'})
        elif not body.get('text') and not body.get('blocks'):
            self._answer(200, {'ok': False, 'error': 'no_text'})
        elif block_kit_errors(body):
            errors = block_kit_errors(body)
            self._answer(200, {'ok': False, 'error': 'invalid_blocks', 'errors': errors, 'response_metadata': {'messages': errors}})
        elif body.get('blocks') and (not isinstance(body.get('text'), str) or not body['text'].strip()):
            self._answer(200, {'ok': False, 'error': 'no_text'})
        else:
            with self.services.lock:
                self.services.ts += 1
                ts = '%d.000100' % self.services.ts
            self._answer(200, {'ok': True, 'channel': 'C0123456', 'ts': ts, 'message': {'text': body.get('text')}})

    def _pagerduty(self, body):
        errors = pagerduty_errors(body) if isinstance(body, dict) else ['Event object is not JSON']
        if errors:
            self._answer(400, {'status': 'invalid event', 'message': 'Event object is invalid', 'errors': errors})
            return
        services = self.services
        with services.lock:
            key = body.get('dedup_key')
            known = next((item for item in services.pagerduty_incidents.values() if item['incident_key'] == key), None)
            if body['event_action'] == 'trigger' and (known is None or known['status'] == 'resolved'):
                number = len(services.pagerduty_incidents) + 1
                incident_id = 'Q%06dPD' % number
                services.pagerduty_incidents[incident_id] = {
                    'id': incident_id, 'incident_key': key, 'status': 'triggered', 'number': number,
                    'title': body['payload']['summary'], 'html_url': 'https://acme.pagerduty.com/incidents/%s' % incident_id, 'notes': []}
            elif known is not None and body['event_action'] in ('acknowledge', 'resolve'):
                known['status'] = 'acknowledged' if body['event_action'] == 'acknowledge' else 'resolved'
        self._answer(202, {'status': 'success', 'message': 'Event processed', 'dedup_key': body.get('dedup_key')})

    def _pagerduty_rest_refusal(self, write):
        auth = self.headers.get('Authorization', '')
        if auth != 'Token token=%s' % self.services.pagerduty_token:
            return 401, {'error': {'message': 'Unauthorized', 'code': 2006}}
        if self.headers.get('Accept', '') != 'application/vnd.pagerduty+json;version=2':
            return 406, {'error': {'message': 'Not Acceptable: Accept application/vnd.pagerduty+json;version=2', 'code': 2001}}
        if write and not re.match(r'^[^@\s]+@[^@\s]+\.[^@\s]+$', self.headers.get('From', '')):
            return 400, {'error': {'message': 'Invalid Input Provided', 'code': 2001,
                                   'errors': ['A valid user email is required in the From header']}}
        return None

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        services = self.services
        parts = urllib.parse.urlsplit(self.path)
        with services.lock:
            services.requests.append({'time': time.monotonic(), 'path': parts.path, 'target': self.path, 'headers': dict(self.headers),
                                      'body': None})
        if parts.path != '/incidents':
            self._answer(404, {'error': {'message': 'Not Found', 'code': 2100}})
            return
        refusal = self._pagerduty_rest_refusal(write=False)
        if refusal:
            self._answer(*refusal)
            return
        query = urllib.parse.parse_qs(parts.query)
        keys = query.get('incident_key', [])
        statuses = query.get('statuses[]') or ['triggered', 'acknowledged', 'resolved']
        with services.lock:
            found = [dict((key, value) for key, value in item.items() if key != 'notes') for item in services.pagerduty_incidents.values()
                     if (not keys or item['incident_key'] in keys) and item['status'] in statuses]
        self._answer(200, {'incidents': found, 'limit': 25, 'offset': 0, 'more': False, 'total': None})

    def _pagerduty_note(self, incident_id, body):
        services = self.services
        refusal = self._pagerduty_rest_refusal(write=True)
        if refusal:
            self._answer(*refusal)
            return
        note = body.get('note') if isinstance(body, dict) else None
        content = note.get('content') if isinstance(note, dict) else None
        if not isinstance(content, str) or not content.strip() or len(content) > 25000:
            self._answer(400, {'error': {'message': 'Invalid Input Provided', 'code': 2001, 'errors': ['Note content is invalid']}})
            return
        with services.lock:
            incident = services.pagerduty_incidents.get(incident_id)
            if incident is None:
                answer = None
            else:
                answer = {'id': 'N%05d' % (len(incident['notes']) + 1), 'content': content, 'created_at': '2026-01-01T00:00:00Z',
                          'user': {'type': 'user_reference', 'summary': self.headers.get('From')}}
                incident['notes'].append(answer)
        if answer is None:
            self._answer(404, {'error': {'message': 'Not Found', 'code': 2100}})
        else:
            self._answer(201, {'note': answer})

    def _slack_views_open(self, body):
        auth = self.headers.get('Authorization', '')
        if not auth:
            self._answer(200, {'ok': False, 'error': 'not_authed'})
        elif auth != 'Bearer %s' % self.services.slack_token:
            self._answer(200, {'ok': False, 'error': 'invalid_auth'})
        elif not isinstance(body, dict) or not isinstance(body.get('trigger_id'), str) or not body['trigger_id']:
            self._answer(200, {'ok': False, 'error': 'invalid_trigger_id'})
        else:
            errors = slack_view_errors(body.get('view'))
            if errors:
                self._answer(200, {'ok': False, 'error': 'invalid_arguments', 'response_metadata': {'messages': errors}})
            else:
                self._answer(200, {'ok': True, 'view': dict(body['view'], id='V0001')})

    def _slack_response_url(self, path, body):
        services = self.services
        with services.lock:
            services.response_url_uses[path] += 1
            uses = services.response_url_uses[path]
        if uses > 5:
            self._answer(404, 'used_url', content_type='text/plain')
        elif not isinstance(body, dict) or (not body.get('text') and not body.get('blocks')) \
                or body.get('response_type', 'ephemeral') not in ('ephemeral', 'in_channel') or block_kit_errors(body):
            self._answer(400, 'invalid_payload', content_type='text/plain')
        else:
            self._answer(200, 'ok', content_type='text/plain')


class SmtpServer:
    """A minimal SMTP receiver (EHLO, MAIL, RCPT, DATA, QUIT) that keeps the messages."""

    def __init__(self):
        self.messages = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b'220 localhost ESMTP test\r\n')
                envelope = {'from': None, 'to': [], 'data': b''}
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    command = line.decode('ascii', 'replace').strip()
                    verb = command.split(' ', 1)[0].upper()
                    if verb in ('EHLO', 'HELO'):
                        self.wfile.write(b'250 localhost\r\n')
                    elif verb == 'MAIL':
                        envelope['from'] = command[10:].strip('<> ')
                        self.wfile.write(b'250 OK\r\n')
                    elif verb == 'RCPT':
                        envelope['to'].append(command[8:].strip('<> '))
                        self.wfile.write(b'250 OK\r\n')
                    elif verb == 'DATA':
                        self.wfile.write(b'354 End data with <CR><LF>.<CR><LF>\r\n')
                        lines = []
                        while True:
                            data = self.rfile.readline()
                            if data in (b'.\r\n', b'.\n', b''):
                                break
                            lines.append(data)
                        envelope['data'] = b''.join(lines)
                        outer.messages.append(dict(envelope))
                        self.wfile.write(b'250 OK queued\r\n')
                    elif verb == 'QUIT':
                        self.wfile.write(b'221 Bye\r\n')
                        return
                    else:
                        self.wfile.write(b'250 OK\r\n')

        self.server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
