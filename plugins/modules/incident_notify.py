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
  - Renders a notification template (V(initial), V(status_update), V(escalation), V(resolution), V(acknowledged),
    V(approval), or one of your own) for an incident on the controller, sends it to the configured channels, and
    records every send (channel, template, status, attempts, time) in the incident's record.
  - "Slack: an incoming webhook, or the Web API C(chat.postMessage) with one thread per incident (the first
    message's C(ts) is kept in the record as C(x_slack_thread) and later messages go to the thread). The channel
    comes from the incident's category in the catalog (C(#security-incidents), C(#ops-incidents), C(#incidents))
    and the mention from its severity (C(@channel) for critical, C(@oncall) for high)."
  - "Slack messages are Block Kit: a header, the summary with the mention, the severity, status and other facts
    as fields, what the template reports (alerts, actions, progress, root cause, follow-ups), what needs a person
    (failed actions, actions a person must do, health not verified, evidence with gaps), buttons, and a fallback
    C(text) written for push notifications. Buttons: C(Acknowledge) (C(action_id) C(incident_acknowledge)) while
    the incident is not acknowledged, C(Resolve) (C(incident_resolve), with a confirmation) while it is open and
    not a drill, both with the incident ID as C(value), for an inbound receiver; link buttons to the report
    (O(links.report_url)), the runbook (the alert's C(runbook_url) annotation), the alert source (its
    C(generatorURL)) and Grafana (O(links.grafana_url)). The V(approval) template (an action waits for a person;
    C(approval) and C(description) in O(context)) carries C(Approve) and C(Reject) buttons (C(incident_approve),
    C(incident_reject)) whose value is C(INC-YYYYMMDD-NNNN:<phase>:<action>). Every part is kept within Slack's limits."
  - "PagerDuty Events API v2: V(initial), V(status_update) and V(escalation) trigger, V(resolution) resolves (V(acknowledged)
    acknowledges), with C(dedup_key) = the incident ID, a routing key per severity (a severity without one is not
    paged: the send is recorded as C(skipped)), severity mapped to critical/error/warning/info, C(custom_details)
    (facts, alerts, actions, what needs a person, evidence) and C(links) (report, runbook, alert source, Grafana,
    then O(pagerduty.links)); C(client_url) is the report's URL. The V(approval) template is a note on the PagerDuty
    incident instead (REST API, O(pagerduty.api_token)), found by its C(incident_key) and kept in the record as
    C(x_pagerduty_incident)."
  - A generic JSON webhook (with the links), and e-mail over SMTP as multipart/alternative, the plain text and an
    HTML part drawn from the same blocks as the Slack message.
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
      - Extra template variables, for example C(progress), C(next_steps), C(eta), C(next_update); the V(approval) template
        reads C(approval) (the approval as incident_approval returns it) and C(description).
    type: dict
    default: {}
  outbox:
    description: Write to the file outbox. Defaults to true when no other channel is configured.
    type: bool
  links:
    description:
      - "Links every message carries besides those from the alert (its C(runbook_url) annotation and C(generatorURL)):
        Slack link buttons, PagerDuty C(links), lines of the text and e-mail, the webhook's C(links)."
      - Absolute http(s) URLs; an alert's URL that is not one (or holds spaces, quotes or angle brackets) is left out.
    type: dict
    suboptions:
      report_url:
        description:
          - URL of the incident's report where people read it (for example the report directory served over HTTPS);
            C({id}) is replaced by the incident ID. Without it, the messages name the report's file once it is written.
        type: str
      grafana_url:
        description:
          - URL of a Grafana dashboard; the incident's time range is added as C(from) and C(to) (epoch milliseconds,
            15 minutes before the first alert to 15 minutes after the resolution, or C(now)), other query parameters
            (C(orgId), C(var-...)) are kept.
        type: str
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
      buttons:
        description:
          - Include the C(Acknowledge) and C(Resolve) buttons. Turn off when no receiver handles Slack interactivity
            for the app (link buttons stay).
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
      api_token:
        description:
          - REST API v2 token, for the notes the C(approval) template adds to the PagerDuty incident (the one whose
            C(incident_key) is the incident ID). Without it the approval request is not sent to PagerDuty (recorded as
            C(skipped) with the reason).
        type: str
      api_url:
        description: PagerDuty REST API base URL.
        type: str
        default: https://api.pagerduty.com
      from_email:
        description: E-mail address of the PagerDuty user a note is written as (the C(From) header); required with O(pagerduty.api_token).
        type: str
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

- name: Initial notification with links to the report and to Grafana over the incident's time range
  slurm_exporter.incident_response.incident_notify:
    id: "{{ incident.id }}"
    links:
      report_url: https://incidents.example.org/reports/{id}/report.html
      grafana_url: https://grafana.example.org/d/slurm-exporter/slurm-exporter?orgId=1
    slack:
      webhook_url: "{{ vault_slack_webhook_url }}"
      buttons: false          # no receiver for Slack interactivity yet

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
  description:
    - One entry per channel with C(channel), C(status) (sent, failed, skipped), C(attempts) and C(detail) (HTTP status,
      redacted error, Slack ts, the reason of a skip).
  returned: always
  type: list
  elements: dict
failed_channels:
  description: Channels whose send failed.
  returned: always
  type: list
  elements: str
messages:
  description:
    - The rendered messages (what was, or in check mode would be, sent) - C(text), C(email) (C(subject), C(body),
      C(html)), C(slack) (C(text) and C(blocks)), C(pagerduty) (the event payload) and C(links) (C(kind), C(text), C(url)).
  returned: always
  type: dict
recorded:
  description: Whether the sends were recorded in the incident.
  returned: always
  type: bool
'''

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import notify  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.notifier import Notifier, NotifySettings  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402

ARGUMENT_SPEC = {
    'id': {'type': 'str', 'required': True},
    'template': {'type': 'str', 'default': 'initial'},
    'template_dir': {'type': 'path'},
    'context': {'type': 'dict', 'default': {}},
    'outbox': {'type': 'bool'},
    'links': {'type': 'dict', 'options': {
        'report_url': {'type': 'str'},
        'grafana_url': {'type': 'str'},
    }},
    'slack': {'type': 'dict', 'options': {
        'webhook_url': {'type': 'str', 'no_log': True},
        'token': {'type': 'str', 'no_log': True},
        'api_url': {'type': 'str', 'default': 'https://slack.com/api'},
        'channel': {'type': 'str'},
        'thread': {'type': 'bool', 'default': True},
        'buttons': {'type': 'bool', 'default': True},
    }},
    'pagerduty': {'type': 'dict', 'options': {
        'routing_key': {'type': 'str', 'no_log': True},
        'routing_keys': {'type': 'dict', 'no_log': True},
        'url': {'type': 'str', 'default': 'https://events.pagerduty.com/v2/enqueue'},
        'event_action': {'type': 'str', 'choices': ['trigger', 'acknowledge', 'resolve']},
        'links': {'type': 'list', 'elements': 'dict', 'default': []},
        'api_token': {'type': 'str', 'no_log': True},
        'api_url': {'type': 'str', 'default': 'https://api.pagerduty.com'},
        'from_email': {'type': 'str'},
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


def run(module):
    params = module.params
    if not params['messages'] or not isinstance(params['messages'].get('text'), str):
        module.fail_json(msg='messages: missing the rendered text; run the module through its action plugin '
                             '(slurm_exporter.incident_response.incident_notify) or give messages.text')
    for key in ('retries', 'retry_delay', 'max_retry_delay', 'timeout'):
        if params[key] < 0 or (key == 'timeout' and params[key] == 0):
            module.fail_json(msg='%s: must be greater than zero' % key if key == 'timeout' else '%s: cannot be negative' % key)
    settings = NotifySettings.from_params(params).validate()
    incident_id = rec.validate_id(params['id'])
    store = module.incident_store()
    record = store.read(incident_id)
    profile = module.incident_catalog.profile(record['type'], record['severity'])
    messages = params['messages']
    sender = notify.Sender(retries=params['retries'], backoff=params['retry_delay'], max_backoff=params['max_retry_delay'],
                           timeout=params['timeout'], redactor=notify.Redactor(settings.secrets()))
    notifier = Notifier(settings, sender, store.root, email_retries=min(params['retries'], 2))
    if module.check_mode:
        return {'changed': False, 'deliveries': [delivery.as_dict() for delivery in notifier.planned()], 'failed_channels': [],
                'messages': messages, 'recorded': False}
    outcome = notifier.send(record, profile, params['template'], messages)
    edits = {'notifications': outcome.notifications(params['template'])}
    if outcome.extensions:
        edits['extensions'] = outcome.extensions
    module.incident_service(store).update(record['id'], edits)
    result = {'changed': True, 'deliveries': [delivery.as_dict() for delivery in outcome.deliveries], 'failed_channels': outcome.failed,
              'messages': messages, 'recorded': True}
    if outcome.failed and params['fail_on_error']:
        module.fail_json(msg='notification failed on: %s' % ', '.join(outcome.failed), **result)
    return result


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
