# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Signed requests as Slack and PagerDuty send them, for the launcher's inbound receivers.

The signatures are computed here from the published algorithms, independently of the launcher's own code
(extensions/launcher/incident_launcher/signatures.py), so that a test signs as Slack and PagerDuty do:

- Slack: ``X-Slack-Request-Timestamp: <unix seconds>`` and ``X-Slack-Signature: v0=hex(HMAC-SHA256(signing secret,
  "v0:<timestamp>:<raw body>"))``; bodies are ``application/x-www-form-urlencoded`` (interactivity: one ``payload``
  field holding JSON; slash commands: the command's fields).
- PagerDuty webhooks v3: ``X-PagerDuty-Signature: v1=hex(HMAC-SHA256(secret, raw body))``, one per secret of the
  subscription, comma-separated; ``X-Webhook-Id`` (the same for every delivery attempt of one webhook),
  ``X-Webhook-Subscription``; a JSON body ``{"event": {...}}``.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import time
import urllib.parse
import uuid

SLACK_USER = {'id': 'U0123ABCD', 'username': 'alice', 'name': 'alice', 'team_id': 'T0001'}
PD_USER = {'id': 'PLH1HKV', 'type': 'user_reference', 'summary': 'Jane Doe', 'self': 'https://api.pagerduty.com/users/PLH1HKV',
           'html_url': 'https://acme.pagerduty.com/users/PLH1HKV'}


def _hmac(secret, message):
    return hmac.new(secret.encode('utf-8'), message, hashlib.sha256).hexdigest()


# -- Slack ------------------------------------------------------------------------------------------------------
def slack_headers(secret, body, timestamp=None):
    timestamp = str(int(time.time()) if timestamp is None else int(timestamp))
    return {'Content-Type': 'application/x-www-form-urlencoded', 'X-Slack-Request-Timestamp': timestamp,
            'X-Slack-Signature': 'v0=' + _hmac(secret, b'v0:' + timestamp.encode() + b':' + body)}


def slack_block_actions(action_id, value, response_url, user=None, text='Acknowledge'):
    """An interactivity request for a click on a button of a message (``block_actions``)."""
    user = dict(SLACK_USER, **(user or {}))
    payload = {
        'type': 'block_actions', 'team': {'id': 'T0001', 'domain': 'acme'}, 'user': user, 'api_app_id': 'A0001',
        'token': 'deprecated-verification-token', 'trigger_id': '%d.1.%s' % (int(time.time()), uuid.uuid4().hex),
        'container': {'type': 'message', 'message_ts': '1700000001.000100', 'channel_id': 'C0123456', 'is_ephemeral': False},
        'channel': {'id': 'C0123456', 'name': 'security-incidents'}, 'response_url': response_url,
        'actions': [{'type': 'button', 'action_id': action_id, 'block_id': 'b1', 'value': value,
                     'text': {'type': 'plain_text', 'text': text, 'emoji': True}, 'action_ts': '%.6f' % time.time()}],
    }
    return urllib.parse.urlencode({'payload': json.dumps(payload)}).encode()


def slack_view_submission(incident_id, resolution, user=None):
    """The submission of the resolution dialog the launcher opened (views.open)."""
    user = dict(SLACK_USER, **(user or {}))
    payload = {
        'type': 'view_submission', 'team': {'id': 'T0001', 'domain': 'acme'}, 'user': user, 'api_app_id': 'A0001',
        'trigger_id': '%d.2.%s' % (int(time.time()), uuid.uuid4().hex),
        'view': {'id': 'V%s' % uuid.uuid4().hex[:10].upper(), 'type': 'modal', 'callback_id': 'incident_resolve',
                 'private_metadata': incident_id,
                 'state': {'values': {'resolution': {'resolution': {'type': 'plain_text_input', 'value': resolution}}}}},
    }
    return urllib.parse.urlencode({'payload': json.dumps(payload)}).encode()


def slack_command(text, response_url, user=None, command='/incident'):
    """A slash command request."""
    user = dict(SLACK_USER, **(user or {}))
    fields = {'token': 'deprecated-verification-token', 'team_id': 'T0001', 'team_domain': 'acme', 'channel_id': 'C0123456',
              'channel_name': 'security-incidents', 'user_id': user['id'], 'user_name': user['name'], 'command': command,
              'text': text, 'api_app_id': 'A0001', 'response_url': response_url,
              'trigger_id': '%d.3.%s' % (int(time.time()), uuid.uuid4().hex)}
    return urllib.parse.urlencode(fields).encode()


# -- PagerDuty --------------------------------------------------------------------------------------------------
def pagerduty_headers(secrets, body, webhook_id=None):
    return {'Content-Type': 'application/json', 'User-Agent': 'PagerDuty-Webhook/V3.0',
            'X-PagerDuty-Signature': ','.join('v1=' + _hmac(secret, body) for secret in secrets),
            'X-Webhook-Id': webhook_id or str(uuid.uuid4()), 'X-Webhook-Subscription': 'PSUB123'}


def _now(offset=0.0):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (moment.microsecond // 1000)


def pagerduty_incident_event(event_type, incident_key, title=None, agent=None, incident_id='Q000001PD', occurred_offset=0.0):
    """An ``incident.*`` event whose data is the incident (acknowledged, resolved, triggered, ...)."""
    return {'event': {
        'id': str(uuid.uuid4()), 'event_type': event_type, 'resource_type': 'incident', 'occurred_at': _now(occurred_offset),
        'agent': PD_USER if agent is None else agent, 'client': {'name': 'PagerDuty'},
        'data': {'id': incident_id, 'type': 'incident', 'self': 'https://api.pagerduty.com/incidents/%s' % incident_id,
                 'html_url': 'https://acme.pagerduty.com/incidents/%s' % incident_id, 'number': 2,
                 'status': event_type.split('.')[-1], 'incident_key': incident_key, 'created_at': _now(-60),
                 'title': title or 'P1 CRITICAL %s: a title' % incident_key,
                 'service': {'id': 'PF9KMXH', 'type': 'service_reference', 'summary': 'slurm-exporter'},
                 'assignees': [], 'urgency': 'high', 'resolve_reason': None}}}


def pagerduty_note_event(content, incident_id='Q000001PD', title='a title', agent=None):
    """``incident.annotated``: a note on the PagerDuty incident."""
    return {'event': {
        'id': str(uuid.uuid4()), 'event_type': 'incident.annotated', 'resource_type': 'incident', 'occurred_at': _now(),
        'agent': PD_USER if agent is None else agent, 'client': None,
        'data': {'incident': {'id': incident_id, 'type': 'incident_reference', 'summary': title,
                              'html_url': 'https://acme.pagerduty.com/incidents/%s' % incident_id,
                              'self': 'https://api.pagerduty.com/incidents/%s' % incident_id},
                 'id': 'P2LA89X', 'content': content, 'trimmed': False, 'type': 'incident_note'}}}


def encode(document):
    return json.dumps(document).encode()
