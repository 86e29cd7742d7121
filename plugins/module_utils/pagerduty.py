# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PagerDuty Events API v2: the event for a notification (routing key per severity, action per template, the
incident ID as dedup key, custom details and links) and its send through the shared :class:`notify.Sender`.

An incident whose severity has no routing key is not paged: the send is recorded as ``skipped`` with the reason,
since a routing key per severity is how an inventory says which severities page.

The approval request (template ``approval``) is a note on the PagerDuty incident instead of an event (REST API v2,
``api_token`` and ``from_email``): the PagerDuty incident is the one whose ``incident_key`` is the incident ID (the
events' dedup key), found once and kept in the record (``x_pagerduty_incident``).
"""

from __future__ import annotations

import json
import re
import urllib.parse

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import notify
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.messages import safe_url

SEVERITY = {'critical': 'critical', 'high': 'error', 'medium': 'warning', 'low': 'info'}
ACTION = {'initial': 'trigger', 'status_update': 'trigger', 'escalation': 'trigger', 'acknowledged': 'acknowledge',
          'resolution': 'resolve'}
SOURCE = 'slurm-exporter-incident-response'
CLIENT = 'slurm_exporter.incident_response'
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
# Templates sent as a note on the PagerDuty incident (REST API) rather than as an event.
NOTE_TEMPLATES = ('approval',)
MAX_NOTE = 25000
INCIDENT_ID_RE = re.compile(r'^[A-Z0-9]{1,32}$')
REST_ACCEPT = 'application/vnd.pagerduty+json;version=2'


class PagerDutySettings:  # pylint: disable=too-few-public-methods
    """The ``pagerduty`` option of incident_notify."""

    # pylint: disable-next=too-many-arguments
    def __init__(self, routing_key=None, routing_keys=None, url='https://events.pagerduty.com/v2/enqueue', event_action=None, links=None,
                 api_token=None, api_url='https://api.pagerduty.com', from_email=None):
        self.routing_key = routing_key
        self.routing_keys = routing_keys or {}
        self.url = url or 'https://events.pagerduty.com/v2/enqueue'
        self.event_action = event_action
        self.links = links or []
        self.api_token = api_token
        self.api_url = (api_url or 'https://api.pagerduty.com').rstrip('/')
        self.from_email = from_email

    @classmethod
    def from_option(cls, option):
        return cls(**{key: option.get(key) for key in ('routing_key', 'routing_keys', 'url', 'event_action', 'links', 'api_token', 'api_url',
                                                       'from_email')})

    def problem(self):
        if not self.routing_key and not any(self.routing_keys.values()):
            return 'pagerduty: give routing_key, or routing_keys per severity'
        if self.api_token and not self.from_email:
            return 'pagerduty.from_email: required with api_token (PagerDuty names the user who writes a note by the From header)'
        for index, link in enumerate(self.links):
            if not isinstance(link, dict) or not isinstance(link.get('href'), str) or not link['href']:
                return 'pagerduty.links[%d]: each link needs href (and optional text)' % index
        return None

    def key_for(self, severity):
        return self.routing_keys.get(severity) or self.routing_key


def links(incident_links, configured=()):
    """The event's ``links``: the incident's (report, runbook, alert source, Grafana), then the configured ones;
    each ``{href, text}``, no href twice."""
    found, seen = [], set()
    for link in list(incident_links or []) + list(configured or []):
        href = link.get('url') or link.get('href')
        if not href or href in seen:
            continue
        seen.add(href)
        found.append({'href': href, 'text': str(link.get('text') or href)})
    return found


def event(record, template, payload, settings, incident_links=(), now=None):
    """The Events API v2 event, or ``None`` when the incident's severity has no routing key."""
    key = settings.key_for(record['severity'])
    if not key:
        return None
    action = settings.event_action or ACTION.get(template, 'trigger')
    result = {'routing_key': key, 'event_action': action, 'dedup_key': record['id'][:MAX_DEDUP_KEY], 'client': CLIENT}
    if action != 'trigger':
        return result
    body = dict(payload or {})
    body['summary'] = str(body.get('summary') or record['title'])[:MAX_SUMMARY]
    body.setdefault('source', SOURCE)
    body['severity'] = SEVERITY.get(record['severity'], 'error')
    body['timestamp'] = (now or notify.utc_now()).strftime('%Y-%m-%dT%H:%M:%SZ')
    if 'custom_details' in body and not isinstance(body['custom_details'], dict):
        body['custom_details'] = {'details': body['custom_details']}
    result['payload'] = body
    report = next((link['url'] for link in incident_links or () if link.get('kind') == 'report'), None)
    if safe_url(report):
        result['client_url'] = report
    found = links(incident_links, settings.links)
    if found:
        result['links'] = found
    return result


def send(sender, settings, record, template, payload, incident_links=(), now=None):
    """Send the event; a severity without a routing key is ``skipped`` (recorded, not failed)."""
    body = event(record, template, payload, settings, incident_links, now)
    if body is None:
        return notify.Delivery('pagerduty', 'skipped', 0, {'reason': 'no routing key for severity %s' % record['severity']})
    return notify.pagerduty(sender, settings.url, body)


def _rest_headers(settings, write=False):
    headers = {'Authorization': 'Token token=%s' % settings.api_token, 'Accept': REST_ACCEPT}
    if write:
        headers['From'] = settings.from_email
    return headers


def find_incident(sender, settings, record):
    """``({'id', 'html_url'}, None)`` of the PagerDuty incident for ``record`` (open, incident_key = the incident ID), or
    ``(None, Delivery)`` saying why not."""
    known = record.get('x_pagerduty_incident') or {}
    if isinstance(known, dict) and INCIDENT_ID_RE.fullmatch(str(known.get('id') or '')):
        return {'id': known['id'], 'html_url': known.get('html_url')}, None
    found = {}

    def accept(result):
        try:
            answer = json.loads(result.body or b'{}')
        except ValueError:
            return False, {'error': 'PagerDuty answered with something that is not JSON'}, False
        incidents = [item for item in answer.get('incidents') or [] if isinstance(item, dict)
                     and INCIDENT_ID_RE.fullmatch(str(item.get('id') or ''))]
        if incidents:
            found.update(id=incidents[0]['id'], html_url=incidents[0].get('html_url'))
        return True, {}, False
    query = urllib.parse.urlencode([('incident_key', record['id']), ('statuses[]', 'triggered'), ('statuses[]', 'acknowledged')])
    delivery = sender.get_json('pagerduty', '%s/incidents?%s' % (settings.api_url, query), _rest_headers(settings), accept)
    if delivery.status != 'sent':
        return None, delivery
    if not found:
        return None, notify.Delivery('pagerduty', 'skipped', delivery.attempts,
                                     {'reason': 'no open PagerDuty incident has incident_key %s (was it paged?)' % record['id']})
    return found, None


def add_note(sender, settings, record, content):
    """A note on the incident's PagerDuty incident; returns ``(delivery, pagerduty_incident)``. Without ``api_token`` the
    send is ``skipped`` with the reason."""
    if not settings.api_token:
        return notify.Delivery('pagerduty', 'skipped', 0, {'reason': 'a note needs pagerduty.api_token (REST API) and from_email'}), None
    incident, refusal = find_incident(sender, settings, record)
    if incident is None:
        return refusal, None
    url = '%s/incidents/%s/notes' % (settings.api_url, urllib.parse.quote(incident['id'], safe=''))

    def accept(result):
        try:
            note = (json.loads(result.body or b'{}').get('note') or {})
        except (ValueError, AttributeError):
            note = {}
        return True, {'pagerduty_incident': incident['id'], 'note_id': note.get('id')}, False
    body = {'note': {'content': str(content)[:MAX_NOTE]}}
    return sender.post_json('pagerduty', url, body, _rest_headers(settings, write=True), accept), incident
