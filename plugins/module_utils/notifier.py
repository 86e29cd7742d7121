# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One notification over every configured channel: the settings (validated before anything is sent), the send
through each channel's module (slack, pagerduty, webhook, e-mail, the file outbox) with the shared retry policy and
redaction, and what to record. incident_notify is a thin wrapper around :class:`Notifier`.
"""

from __future__ import annotations

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import notify, pagerduty, slack
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.messages import check_link_settings

CHANNELS = ('slack', 'pagerduty', 'webhook', 'email')
SUMMARY_FIELDS = ('id', 'type', 'category', 'severity', 'priority', 'status', 'drill', 'title', 'created_at', 'acknowledged_at',
                  'resolved_at', 'response_due_at', 'escalation_level')


def summary_of(record):
    return {key: record.get(key) for key in SUMMARY_FIELDS}


class NotifySettings:
    """Which channels, with what settings; built from the module's options by name, validated up front."""

    def __init__(self, slack_option=None, pagerduty_option=None, webhook_option=None, email_option=None, outbox=None, links=None):
        self.slack = slack.SlackSettings.from_option(slack_option) if slack_option else None
        self.pagerduty = pagerduty.PagerDutySettings.from_option(pagerduty_option) if pagerduty_option else None
        self.webhook = dict(webhook_option) if webhook_option else None
        self.email = dict(email_option) if email_option else None
        self.links = check_link_settings(links)
        configured = [name for name in CHANNELS if getattr(self, name)]
        self.outbox = outbox if outbox is not None else not configured
        self.channels = configured + (['outbox'] if self.outbox else [])
        self.raw = {'slack': slack_option, 'pagerduty': pagerduty_option, 'webhook': webhook_option, 'email': email_option}

    @classmethod
    def from_params(cls, params):
        return cls(slack_option=params.get('slack'), pagerduty_option=params.get('pagerduty'), webhook_option=params.get('webhook'),
                   email_option=params.get('email'), outbox=params.get('outbox'), links=params.get('links'))

    def validate(self):
        """Raise ValidationError for a channel that cannot be used (before anything is sent)."""
        for channel in (self.slack, self.pagerduty):
            problem = channel.problem() if channel else None
            if problem:
                raise ValidationError(problem)
        return self

    def secrets(self):
        """Every value to redact: webhook URLs, tokens, routing keys, header values, passwords."""
        found = []
        for section, keys in (('slack', ('webhook_url', 'token')), ('pagerduty', ('routing_key', 'api_token')), ('webhook', ('url',)),
                              ('email', ('password',))):
            for key in keys:
                found.append((self.raw[section] or {}).get(key))
        found.extend(((self.raw['pagerduty'] or {}).get('routing_keys') or {}).values())
        found.extend(((self.raw['webhook'] or {}).get('headers') or {}).values())
        return found


class Outcome:  # pylint: disable=too-few-public-methods
    """The deliveries of one notification and the record extensions they produced (the Slack thread)."""

    def __init__(self, deliveries, extensions):
        self.deliveries = deliveries
        self.extensions = extensions

    @property
    def failed(self):
        return [delivery.channel for delivery in self.deliveries if delivery.status == 'failed']

    def notifications(self, template):
        """The record's ``notifications`` entries for these deliveries."""
        return [{'channel': delivery.channel, 'template': template, 'status': delivery.status, 'attempts': delivery.attempts,
                 'details': delivery.detail} for delivery in self.deliveries]


class Notifier:
    """Sends rendered messages (``text``, ``email``, ``slack``, ``pagerduty``, ``links``) over the configured channels."""

    def __init__(self, settings, sender, store_root, email_retries=2, clock=notify.utc_now):
        self.settings = settings
        self.sender = sender
        self.store_root = store_root
        self.email_retries = email_retries
        self.clock = clock

    def planned(self):
        """Check mode: what would be sent, nothing sent."""
        return [notify.Delivery(name, 'skipped', 0, {'check_mode': True}) for name in self.settings.channels]

    def send(self, record, profile, template, messages):
        settings = self.settings
        links = messages.get('links') or []
        deliveries, extensions = [], {}
        if settings.slack:
            payload = messages.get('slack') or {'text': messages['text']}
            delivery, thread = slack.post(self.sender, settings.slack, record, template, payload, profile['channel'])
            deliveries.append(delivery)
            if thread:
                extensions['x_slack_thread'] = thread
        if settings.pagerduty and template in pagerduty.NOTE_TEMPLATES:
            note = (messages.get('pagerduty') or {}).get('note') or messages['text']
            delivery, incident = pagerduty.add_note(self.sender, settings.pagerduty, record, note)
            deliveries.append(delivery)
            if incident and incident != record.get('x_pagerduty_incident'):
                extensions['x_pagerduty_incident'] = incident
        elif settings.pagerduty:
            payload = messages.get('pagerduty') or {'summary': messages['text'].splitlines()[0]}
            deliveries.append(pagerduty.send(self.sender, settings.pagerduty, record, template, payload, links, self.clock()))
        if settings.webhook:
            body = {'event': template, 'incident': summary_of(record), 'text': messages['text'], 'links': links,
                    'sent_at': self.clock().strftime('%Y-%m-%dT%H:%M:%SZ')}
            deliveries.append(notify.webhook(self.sender, settings.webhook['url'], body, settings.webhook.get('headers')))
        if settings.email:
            mail = messages.get('email') or {'subject': messages['text'].splitlines()[0], 'body': messages['text']}
            deliveries.append(notify.send_email(settings.email, mail['subject'], mail['body'], self.sender.redact,
                                                retries=self.email_retries, html=mail.get('html')))
        if settings.outbox:
            entry = {'time': self.clock().strftime('%Y-%m-%dT%H:%M:%SZ'), 'incident': record['id'], 'template': template,
                     'drill': record['drill'], 'text': messages['text'], 'email': messages.get('email'), 'slack': messages.get('slack'),
                     'pagerduty': messages.get('pagerduty'), 'links': links, 'sent_to': [delivery.as_dict() for delivery in deliveries]}
            deliveries.append(notify.outbox_append(self.store_root, entry))
        return Outcome(deliveries, extensions)
