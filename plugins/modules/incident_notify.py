#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: incident_notify
short_description: Tell people about an incident on Slack, PagerDuty, a webhook, e-mail or the file outbox
version_added: 0.1.0
description:
  - Renders a notification template (V(initial), V(status_update), V(escalation), V(resolution), or one of your own) for an
    incident on the controller, sends it to the configured channels, and records every send (channel, template,
    status, attempts, time) in the incident's record.
  - "Slack: an incoming webhook, or the Web API C(chat.postMessage) with one thread per incident (the first
    message's C(ts) is kept in the record as C(x_slack_thread) and later messages go to the thread). The channel
    comes from the incident's category in the catalog (C(#security-incidents), C(#ops-incidents), C(#incidents))
    and the mention from its severity (C(@channel) for critical, C(@oncall) for high). Block Kit with a plain-text
    fallback."
  - "PagerDuty Events API v2: V(initial), V(status_update) and V(escalation) trigger, V(resolution) resolves (V(acknowledged)
    acknowledges), with C(dedup_key) = the incident ID, a routing key per severity, severity mapped to
    critical/error/warning/info, custom details and links."
  - A generic JSON webhook, and plain-text e-mail over SMTP.
  - The file outbox (JSON lines in C(<store>/outbox/notifications.jsonl)) is used when no other channel is
    configured, so that every message can be seen without any service.
  - Retries with exponential backoff; a 429 answer's Retry-After is honoured. A failed send is recorded as failed
    and does not fail the task unless O(fail_on_error=true). Webhook URLs, tokens, routing keys and passwords are
    never logged and are redacted from every error.
  - Alert labels and annotations are data in the templates; they are printed, never evaluated, and Slack text is
    escaped so that a label cannot mention C(@channel) or hide a link.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.store
attributes:
  check_mode:
    support: full
    description: Renders and returns the messages; sends nothing and records nothing.
  diff_mode:
    support: none
    description: Sends messages; there is nothing to diff.
  action:
    support: full
    description: An action plugin renders the templates on the controller.
options:
  id:
    description: The incident (C(INC-YYYYMMDD-NNNN)).
    type: str
    required: true
  template:
    description:
      - Template to render; the files C(<template>.text.j2), C(.email.j2), C(.slack.j2) and C(.pagerduty.j2) are
        looked up in O(template_dir) first, then in the collection's C(templates/notifications/).
    type: str
    default: initial
  template_dir:
    description: Directory with your own templates (same names), searched before the collection's.
    type: path
  context:
    description:
      - Extra template variables, for example C(progress), C(next_steps), C(eta), C(next_update).
    type: dict
    default: {}
  outbox:
    description: Write to the file outbox. Defaults to true when no other channel is configured.
    type: bool
  slack:
    description: Slack settings; give O(slack.webhook_url), or O(slack.token) for the Web API (threads).
    type: dict
    suboptions:
      webhook_url:
        description: Incoming webhook URL.
        type: str
      token:
        description: Bot token (C(xoxb-...)) for C(chat.postMessage).
        type: str
      api_url:
        description: Slack Web API base URL.
        type: str
        default: https://slack.com/api
      channel:
        description: Channel, instead of the one the catalog gives the incident's category.
        type: str
      thread:
        description: Post updates into the incident's thread (Web API only).
        type: bool
        default: true
  pagerduty:
    description: PagerDuty Events API v2 settings.
    type: dict
    suboptions:
      routing_key:
        description: Integration (routing) key used when O(pagerduty.routing_keys) has none for the severity.
        type: str
      routing_keys:
        description: Routing key per severity (for example C(critical) and C(high)).
        type: dict
      url:
        description: Events API endpoint.
        type: str
        default: https://events.pagerduty.com/v2/enqueue
      event_action:
        description: Instead of the action the template implies.
        type: str
        choices: [trigger, acknowledge, resolve]
      links:
        description: Links to attach (for example the report and the evidence), each with C(href) and C(text).
        type: list
        elements: dict
        default: []
  webhook:
    description: A generic JSON webhook that receives the incident summary and the rendered text.
    type: dict
    suboptions:
      url:
        description: Endpoint.
        type: str
        required: true
      headers:
        description: Extra headers (for example an authorization header).
        type: dict
        default: {}
  email:
    description: E-mail over SMTP.
    type: dict
    suboptions:
      host:
        description: SMTP server.
        type: str
        required: true
      port:
        description: SMTP port (25, or 465 with O(email.security=ssl)).
        type: int
      security:
        description: Transport security.
        type: str
        choices: [none, starttls, ssl]
        default: starttls
      username:
        description: SMTP user.
        type: str
      password:
        description: SMTP password.
        type: str
      sender:
        description: From address.
        type: str
        required: true
      to:
        description: Recipients.
        type: list
        elements: str
        required: true
  messages:
    description:
      - Rendered messages (C(text), C(email), C(slack), C(pagerduty)). The action plugin fills this from O(template);
        give it only to send messages you rendered yourself.
    type: dict
  retries:
    description: Retries after the first attempt of each send.
    type: int
    default: 4
  retry_delay:
    description: First backoff delay in seconds; it doubles with each retry.
    type: float
    default: 1.0
  max_retry_delay:
    description: Longest wait between attempts, Retry-After included.
    type: float
    default: 30.0
  timeout:
    description: Seconds to wait for each HTTP request.
    type: float
    default: 10.0
  fail_on_error:
    description: Fail the task when any send failed (after it was recorded).
    type: bool
    default: false
  actor:
    description: Who sends, for the timeline.
    type: str
    default: ansible
seealso:
  - module: slurm_exporter.incident_response.incident
  - module: slurm_exporter.incident_response.incident_report
'''

EXAMPLES = r'''
- name: Initial notification to the outbox (nothing else configured)
  slurm_exporter.incident_response.incident_notify:
    id: "{{ incident.id }}"

- name: Status update to Slack (thread) and PagerDuty
  slurm_exporter.incident_response.incident_notify:
    id: "{{ incident.id }}"
    template: status_update
    context:
      progress: Pods isolated, evidence captured
      next_steps: Rotate credentials
      eta: 30 minutes
    slack:
      token: "{{ vault_slack_bot_token }}"
    pagerduty:
      routing_keys:
        critical: "{{ vault_pd_key_critical }}"
        high: "{{ vault_pd_key_high }}"

- name: Resolution by e-mail, with my own templates
  slurm_exporter.incident_response.incident_notify:
    id: "{{ incident.id }}"
    template: resolution
    template_dir: "{{ inventory_dir }}/templates/notifications"
    email:
      host: smtp.example.org
      sender: incidents@example.org
      to: [sre@example.org]
'''

RETURN = r'''
planned:
  description: Check mode only; the incident does not exist yet because an earlier task of this run would open it, so nothing was rendered.
  returned: in check mode, for a planned incident
  type: bool
  sample: true
deliveries:
  description: One entry per channel with C(channel), C(status) (sent, failed), C(attempts) and C(detail) (HTTP status, redacted error, Slack ts).
  returned: always
  type: list
  elements: dict
failed_channels:
  description: Channels whose send failed.
  returned: always
  type: list
  elements: str
messages:
  description: The rendered messages (what was, or in check mode would be, sent).
  returned: always
  type: dict
recorded:
  description: Whether the sends were recorded in the incident.
  returned: always
  type: bool
'''

import datetime  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import notify  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402

ARGUMENT_SPEC = {
    'id': {'type': 'str', 'required': True},
    'template': {'type': 'str', 'default': 'initial'},
    'template_dir': {'type': 'path'},
    'context': {'type': 'dict', 'default': {}},
    'outbox': {'type': 'bool'},
    'slack': {'type': 'dict', 'options': {
        'webhook_url': {'type': 'str', 'no_log': True},
        'token': {'type': 'str', 'no_log': True},
        'api_url': {'type': 'str', 'default': 'https://slack.com/api'},
        'channel': {'type': 'str'},
        'thread': {'type': 'bool', 'default': True},
    }},
    'pagerduty': {'type': 'dict', 'options': {
        'routing_key': {'type': 'str', 'no_log': True},
        'routing_keys': {'type': 'dict', 'no_log': True},
        'url': {'type': 'str', 'default': 'https://events.pagerduty.com/v2/enqueue'},
        'event_action': {'type': 'str', 'choices': ['trigger', 'acknowledge', 'resolve']},
        'links': {'type': 'list', 'elements': 'dict', 'default': []},
    }},
    'webhook': {'type': 'dict', 'options': {
        'url': {'type': 'str', 'required': True, 'no_log': True},
        'headers': {'type': 'dict', 'default': {}, 'no_log': True},
    }},
    'email': {'type': 'dict', 'options': {
        'host': {'type': 'str', 'required': True},
        'port': {'type': 'int'},
        'security': {'type': 'str', 'choices': ['none', 'starttls', 'ssl'], 'default': 'starttls'},
        'username': {'type': 'str'},
        'password': {'type': 'str', 'no_log': True},
        'sender': {'type': 'str', 'required': True},
        'to': {'type': 'list', 'elements': 'str', 'required': True},
    }},
    'messages': {'type': 'dict'},
    'retries': {'type': 'int', 'default': 4},
    'retry_delay': {'type': 'float', 'default': 1.0},
    'max_retry_delay': {'type': 'float', 'default': 30.0},
    'timeout': {'type': 'float', 'default': 10.0},
    'fail_on_error': {'type': 'bool', 'default': False},
    'actor': {'type': 'str', 'default': 'ansible'},
}


def secrets_of(params):
    found = []
    for section, keys in (('slack', ('webhook_url', 'token')), ('pagerduty', ('routing_key',)), ('webhook', ('url',)),
                          ('email', ('password',))):
        for key in keys:
            found.append((params.get(section) or {}).get(key))
    found.extend(((params.get('pagerduty') or {}).get('routing_keys') or {}).values())
    found.extend(((params.get('webhook') or {}).get('headers') or {}).values())
    return found


def summary_of(record):
    keys = ('id', 'type', 'category', 'severity', 'priority', 'status', 'drill', 'title', 'created_at', 'acknowledged_at',
            'resolved_at', 'response_due_at', 'escalation_level')
    return {key: record[key] for key in keys}


def run(module):  # pylint: disable=too-many-locals,too-many-branches
    params = module.params
    if not params['messages'] or not isinstance(params['messages'].get('text'), str):
        module.fail_json(msg='messages: missing the rendered text; run the module through its action plugin '
                             '(slurm_exporter.incident_response.incident_notify) or give messages.text')
    for key in ('retries', 'retry_delay', 'max_retry_delay', 'timeout'):
        if params[key] < 0 or (key == 'timeout' and params[key] == 0):
            module.fail_json(msg='%s: must be greater than zero' % key if key == 'timeout' else '%s: cannot be negative' % key)
    incident_id = rec.validate_id(params['id'])
    store = module.incident_store()
    record = store.read(incident_id)
    profile = module.incident_catalog.profile(record['type'], record['severity'])
    messages = params['messages']
    redact = notify.Redactor(secrets_of(params))
    sender = notify.Sender(params['retries'], params['retry_delay'], params['max_retry_delay'], params['timeout'], redact)
    template = params['template']
    configured = [name for name in ('slack', 'pagerduty', 'webhook', 'email') if params[name]]
    use_outbox = params['outbox'] if params['outbox'] is not None else not configured
    plan = configured + (['outbox'] if use_outbox else [])
    if module.check_mode:
        return {'changed': False, 'deliveries': [{'channel': name, 'status': 'skipped', 'attempts': 0, 'detail': {'check_mode': True}}
                                                 for name in plan], 'failed_channels': [], 'messages': messages, 'recorded': False}
    deliveries = []
    extensions = {}
    if params['slack']:
        slack = params['slack']
        payload = dict(messages.get('slack') or {'text': messages['text']})
        if slack.get('token'):
            channel = slack.get('channel') or profile['channel']
            payload['channel'] = channel
            thread = record.get('x_slack_thread') or {}
            if slack['thread'] and thread.get('channel') == channel and thread.get('ts'):
                payload['thread_ts'] = thread['ts']
                if template == 'resolution':
                    payload['reply_broadcast'] = True
            delivery = notify.slack_api(sender, slack['api_url'], slack['token'], payload)
            if delivery.status == 'sent' and not payload.get('thread_ts') and delivery.detail.get('ts'):
                extensions['x_slack_thread'] = {'channel': channel, 'ts': delivery.detail['ts']}
        elif slack.get('webhook_url'):
            delivery = notify.slack_webhook(sender, slack['webhook_url'], payload)
        else:
            module.fail_json(msg='slack: give webhook_url or token')
        deliveries.append(delivery)
    if params['pagerduty']:
        pd = params['pagerduty']
        key = (pd.get('routing_keys') or {}).get(record['severity']) or pd.get('routing_key')
        if not key:
            module.fail_json(msg='pagerduty: no routing key for severity %s (give routing_key or routing_keys.%s)'
                             % (record['severity'], record['severity']))
        body = dict(messages.get('pagerduty') or {'summary': messages['text'].splitlines()[0][:1024]})
        action = pd.get('event_action') or notify.PAGERDUTY_ACTION.get(template, 'trigger')
        event = {'routing_key': key, 'event_action': action, 'dedup_key': record['id'], 'client': 'slurm_exporter.incident_response'}
        if action == 'trigger':
            body.setdefault('source', 'slurm-exporter-incident-response')
            body['severity'] = notify.PAGERDUTY_SEVERITY.get(record['severity'], 'error')
            body['timestamp'] = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
            event['payload'] = body
            if pd['links']:
                event['links'] = [{'href': link.get('href'), 'text': link.get('text', link.get('href'))} for link in pd['links']]
        deliveries.append(notify.pagerduty(sender, pd['url'], event))
    if params['webhook']:
        payload = {'event': template, 'incident': summary_of(record), 'text': messages['text'],
                   'sent_at': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}
        deliveries.append(notify.webhook(sender, params['webhook']['url'], payload, params['webhook']['headers']))
    if params['email']:
        mail = messages.get('email') or {'subject': messages['text'].splitlines()[0], 'body': messages['text']}
        deliveries.append(notify.send_email(params['email'], mail['subject'], mail['body'], redact, retries=min(params['retries'], 2)))
    if use_outbox:
        entry = {'time': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'), 'incident': record['id'],
                 'template': template, 'drill': record['drill'], 'text': messages['text'],
                 'email': messages.get('email'), 'slack': messages.get('slack'), 'pagerduty': messages.get('pagerduty'),
                 'sent_to': [delivery.as_dict() for delivery in deliveries]}
        deliveries.append(notify.outbox_append(store.root, entry))
    service = module.incident_service(store)
    edits = {'notifications': [{'channel': delivery.channel, 'template': template, 'status': delivery.status,
                                'attempts': delivery.attempts, 'details': delivery.detail} for delivery in deliveries]}
    if extensions:
        edits['extensions'] = extensions
    service.update(record['id'], edits)
    failed = [delivery.channel for delivery in deliveries if delivery.status != 'sent']
    result = {'changed': True, 'deliveries': [delivery.as_dict() for delivery in deliveries], 'failed_channels': failed,
              'messages': messages, 'recorded': True}
    if failed and params['fail_on_error']:
        module.fail_json(msg='notification failed on: %s' % ', '.join(failed), **result)
    return result


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
