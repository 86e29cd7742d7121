#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: alertmanager_config
short_description: Generate the Alertmanager configuration that feeds incidents to the response automation
version_added: 0.1.0
description:
  - Routes every alert labelled C(component=incident-response) to the incident response webhook (the collection's
    launcher, or an Event-Driven Ansible rulebook) with C(send_resolved) so that resolved alerts update the same
    incident, and the authentication the receiver expects (bearer token or basic auth).
  - Before it, alerts of the security incident types also go to the security team's receiver with C(continue), so
    the automated response still runs.
  - Returns the configuration and writes it to O(dest) (mode 0600, only when it changes). Check it with
    C(amtool check-config).
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
requirements:
  - PyYAML
attributes:
  check_mode:
    support: full
    description: Reports whether O(dest) would change; writes nothing.
  diff_mode:
    support: none
    description: The file holds credentials; no diff is shown.
options:
  webhook_url:
    description: URL of the incident response webhook.
    type: str
    default: http://incident-webhook.incident-response.svc:10341/webhook
  bearer_token:
    description: Token sent as C(Authorization Bearer) to the webhook.
    type: str
  basic_auth:
    description: Basic authentication for the webhook instead of a token.
    type: dict
    suboptions:
      username:
        description: User name.
        type: str
        required: true
      password:
        description: Password.
        type: str
        required: true
  security_receiver:
    description: An Alertmanager receiver (without C(name)) for the security team, for example with C(slack_configs) or C(pagerduty_configs).
    type: dict
  default_receiver:
    description: The receiver of everything else (without C(name)); empty drops them.
    type: dict
  response_timing:
    description:
      - Grouping times of the route to the webhook, as Alertmanager durations (C(30s), C(5m), C(1h)).
    type: dict
    suboptions:
      group_wait:
        description: How long the first alert of a new group waits before it is sent (batching versus time to respond).
        type: str
        default: 0s
      group_interval:
        description: How soon a group with new or resolved alerts is sent again (greater than zero).
        type: str
        default: 30s
      repeat_interval:
        description: How often an unchanged firing group is resent (the launcher and the rulebook de-duplicate resends).
        type: str
        default: 1h
  dest:
    description: File to write.
    type: path
seealso:
  - module: slurm_exporter.incident_response.detection_rules
'''

EXAMPLES = r'''
- name: Alertmanager configuration
  slurm_exporter.incident_response.alertmanager_config:
    bearer_token: "{{ vault_incident_webhook_token }}"
    security_receiver:
      pagerduty_configs:
        - routing_key: "{{ vault_pagerduty_security }}"
    dest: /etc/alertmanager/alertmanager.yml

- name: Alertmanager configuration for the rulebook on this host, batching alerts for 10 s
  slurm_exporter.incident_response.alertmanager_config:
    webhook_url: http://127.0.0.1:10341/webhook
    bearer_token: "{{ vault_incident_webhook_token }}"
    response_timing:
      group_wait: 10s
      repeat_interval: 4h
    dest: /etc/alertmanager/alertmanager.yml
'''

RETURN = r'''
config:
  description: The configuration, with credentials replaced by C(********).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import detection  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import write_if_changed  # noqa: E402

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core on the controller
    HAS_YAML = False


def masked(config):
    copy = yaml.safe_load(yaml.safe_dump(config))
    for receiver in copy['receivers']:
        for webhook in receiver.get('webhook_configs', []):
            http = webhook.get('http_config', {})
            if 'authorization' in http:
                http['authorization']['credentials'] = '********'
            if 'basic_auth' in http:
                http['basic_auth']['password'] = '********'
        for kind in ('pagerduty_configs', 'slack_configs'):
            for item in receiver.get(kind, []):
                for key in ('routing_key', 'service_key', 'api_url'):
                    if key in item:
                        item[key] = '********'
    return copy


def main():
    module = AnsibleModule(argument_spec={
        'webhook_url': {'type': 'str', 'default': 'http://incident-webhook.incident-response.svc:10341/webhook'},
        'bearer_token': {'type': 'str', 'no_log': True},
        'basic_auth': {'type': 'dict', 'options': {'username': {'type': 'str', 'required': True},
                                                   'password': {'type': 'str', 'required': True, 'no_log': True}}},
        'security_receiver': {'type': 'dict', 'no_log': True},
        'default_receiver': {'type': 'dict'},
        'response_timing': {'type': 'dict', 'options': {'group_wait': {'type': 'str', 'default': '0s'},
                                                        'group_interval': {'type': 'str', 'default': '30s'},
                                                        'repeat_interval': {'type': 'str', 'default': '1h'}}},
        'dest': {'type': 'path'},
    }, mutually_exclusive=[('bearer_token', 'basic_auth')], supports_check_mode=True)
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib('PyYAML'))
    params = module.params
    try:
        config = detection.alertmanager_config(params['webhook_url'], params['bearer_token'], params['basic_auth'],
                                               params['security_receiver'], params['default_receiver'],
                                               response_timing=params['response_timing'])
    except IncidentResponseError as exc:
        module.fail_json(msg=exc.message)
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    changed = False
    if params['dest']:
        try:
            changed, _before = write_if_changed(params['dest'], text, 0o600, module.check_mode)
        except IncidentResponseError as exc:
            module.fail_json(msg=exc.message)
    module.exit_json(changed=changed, config=masked(config))


if __name__ == '__main__':
    main()
