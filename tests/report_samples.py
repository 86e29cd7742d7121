# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Incident records to render reports from: a P1 breach whose timeline is dense in its first seconds (the case where
labels used to overlap), with what the safety work records (a step that needs a person, a suppressed restart, a
compensation, health not verified, evidence with gaps), and a year of incidents and drills for the trends page.
Used by the report rendering tests and ``make screenshots`` (scripts/screenshots.py)."""

from __future__ import annotations

import copy
import datetime

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 11, 24, 22, 51, 0, tzinfo=UTC)


def ts(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def dense_breach(start=START, incident_id='INC-20261124-0001'):
    def at(seconds):
        return ts(start + datetime.timedelta(seconds=seconds))

    steps = [
        (0, 'detection', 'opened', 'Incident opened: security_breach (critical, P1)', 'launcher'),
        (0, 'detection', 'alert', 'Alert SlurmExporterAuthFailures attached (firing)', 'launcher'),
        (0, 'containment', 'action', 'Action isolate_pods: success', 'launcher'),
        (0, 'communication', 'notification', 'Notification initial via slack: sent', 'ansible'),
        (1, 'communication', 'notification', 'Notification initial via pagerduty: sent', 'ansible'),
        (3, 'investigation', 'evidence', 'Evidence bundle /var/incident-response/evidence/%s/20261124T225103Z-921acb registered' % incident_id,
         'ansible'),
        (3, 'containment', 'action', 'Action capture_evidence: success', 'ansible'),
        (5, 'containment', 'action', 'Action scale_down: success', 'ansible'),
        (6, 'eradication', 'action', 'Action rotate_credentials: needs_person', 'ansible'),
        (8, 'eradication', 'action', 'Action rotate_tls_secret: success', 'ansible'),
        (11, 'recovery', 'action', 'Action restore_known_good_revision: success', 'ansible'),
        (11, 'recovery', 'action', 'Action scale_restore: success', 'ansible'),
        (12, 'recovery', 'action', 'Action restart_pods: suppressed', 'ansible'),
        (14, 'recovery', 'action', 'Action wait_healthy: success', 'ansible'),
        (15, 'recovery', 'action', 'Action verify_health: success', 'ansible'),
        (16, 'recovery', 'action', 'Action lift_isolation: success', 'ansible'),
        (17, 'recovery', 'status', 'Status investigating -> monitoring: automated response completed; a person resolves security incidents',
         'ansible'),
        (17, 'communication', 'notification', 'Notification status_update via slack: sent', 'ansible'),
        (420, 'triage', 'acknowledgement', 'Acknowledged by alice (PagerDuty)', 'alice'),
        (1500, 'investigation', 'note', 'Token seen from 203.0.113.7 in slurmrestd logs; the JWT signing key must be rotated on the controllers',
         'alice'),
        (2400, 'recovery', 'status', 'Status monitoring -> resolved: JWT key rotated on the controllers, old token rejected', 'alice'),
        (2401, 'communication', 'notification', 'Notification resolution via slack: sent', 'ansible'),
    ]
    timeline = [{'time': at(s), 'phase': phase, 'kind': kind, 'message': message, 'actor': actor, 'details': {}}
                for s, phase, kind, message, actor in steps]
    actions = [
        ('isolate_pods', 'containment', 'success', True, 0, {}),
        ('capture_evidence', 'containment', 'success', False, 3, {}),
        ('scale_down', 'containment', 'success', True, 5, {'compensation': {'action': 'scale_restore', 'result': 'success', 'replicas': 3}}),
        ('rotate_credentials', 'eradication', 'needs_person', False, 6,
         {'reason': 'no slurm_controllers host in the inventory: the JWT signing key cannot be rotated from here',
          'steps': ['on each controller, replace /etc/slurm/jwt_hs256.key with a new random key', 'scontrol reconfigure',
                    'issue the exporter a new token: scontrol token username=slurm-exporter lifespan=86400',
                    'store it in the Secret slurm-credentials (key jwt-token)']}),
        ('rotate_tls_secret', 'eradication', 'success', True, 8, {}),
        ('restore_known_good_revision', 'recovery', 'success', True, 11, {}),
        ('scale_restore', 'recovery', 'success', True, 11, {}),
        ('restart_pods', 'recovery', 'suppressed', False, 12, {'reason': 'restarted 2m ago for the same workload'}),
        ('wait_healthy', 'recovery', 'success', False, 14, {}),
        ('verify_health', 'recovery', 'success', False, 15, {'verification': 'unverified', 'reason': 'no health URL configured'}),
        ('lift_isolation', 'recovery', 'success', True, 16, {}),
    ]
    return {
        'schema_version': 1, 'id': incident_id, 'revision': 30, 'type': 'security_breach', 'category': 'security',
        'severity': 'critical', 'priority': 'P1', 'status': 'resolved', 'drill': False,
        'title': 'Exporter JWT used from an unknown client', 'summary': "slurmrestd accepted the exporter's JWT from 203.0.113.7",
        'impact': 'SLURM accounting data readable by an unknown client for up to 40 minutes',
        'created_at': at(0), 'updated_at': at(2401), 'acknowledged_at': at(420), 'acknowledged_by': 'alice',
        'mitigated_at': at(17), 'resolved_at': at(2400), 'response_due_at': at(900), 'escalation_due_at': at(1800),
        'escalation_level': 0,
        'alerts': [{'fingerprint': '5e1f0c2b9a7d3e41', 'status': 'resolved', 'startsAt': at(-60), 'endsAt': at(2300), 'received_at': at(0),
                    'generatorURL': 'http://prometheus.example.org:9090/graph?g0.expr=increase%28slurm_exporter_collector_errors_total'
                                    '%7Berror_type%3D%22authentication%22%7D%5B5m%5D%29+%3E+0',
                    'labels': {'alertname': 'SlurmExporterAuthFailures', 'incident_type': 'security_breach', 'severity': 'critical',
                               'namespace': 'slurm-exporter'},
                    'annotations': {'summary': 'authentication failures against slurmrestd',
                                    'runbook_url': 'https://runbooks.example.org/slurm-exporter/security-breach'}}],
        'timeline': timeline,
        'actions': [{'name': name, 'phase': phase, 'result': result, 'changed': changed, 'time': at(s), 'details': details}
                    for name, phase, result, changed, s, details in actions],
        'evidence': [{'path': '/var/incident-response/evidence/%s/20261124T225103Z-921acb' % incident_id, 'sha256': '642e6abd79c3ec4c' * 4,
                      'time': at(3), 'details': {'gaps': [
                          {'pod': 'slurm-exporter-7d9c6-x2x4p', 'reason': 'previous logs: container never restarted'},
                          {'pod': 'slurm-exporter-7d9c6-9qzvb', 'reason': 'logs: 403 forbidden'}]}}],
        'notifications': [{'channel': channel, 'template': template, 'status': 'sent', 'attempts': 1, 'time': at(s), 'details': {}}
                          for channel, template, s in (('slack', 'initial', 0), ('pagerduty', 'initial', 1), ('slack', 'status_update', 17),
                                                       ('slack', 'resolution', 2401))],
        'root_cause': 'The JWT was written to a debug log shipped to a shared bucket',
        'resolution': 'JWT signing key rotated on the controllers, new token issued, known-good deployment restored',
        'follow_ups': [{'title': 'Stop logging request headers at debug level', 'owner': 'platform-team', 'due': '2026-12-01', 'status': 'open'},
                       {'title': 'Add slurm_controllers to the production inventory', 'owner': 'sre', 'due': '2026-11-28', 'status': 'in_progress'}],
        'reports': [],
    }


def trend_records(months=6, end=datetime.datetime(2026, 11, 28, tzinfo=UTC)):
    """A few incidents and drills per month, with acknowledgements in and out of the SLA and open follow-ups."""
    types = [('security_breach', 'critical', 'P1', 900), ('service_outage', 'critical', 'P1', 900), ('api_failure', 'medium', 'P3', 7200),
             ('performance_degradation', 'high', 'P2', 3600), ('resource_exhaustion', 'high', 'P2', 3600)]
    records = []
    number = 0
    for month in range(months):
        back = months - 1 - month
        year, number_of_month = divmod(end.year * 12 + end.month - 1 - back, 12)
        first = datetime.datetime(year, number_of_month + 1, 3, 9, tzinfo=UTC)
        for index in range(3 + month % 3):
            number += 1
            kind, severity, priority, due = types[(month + index) % len(types)]
            start = first + datetime.timedelta(days=index * 7, hours=index)
            tta = [300, 600, 1200, 2400, 200, 5400][(month + index) % 6]
            ttr = tta + [1800, 3600, 7200, 14400][(month * 2 + index) % 4]
            record = copy.deepcopy(dense_breach(start, 'INC-%s-%04d' % (start.strftime('%Y%m%d'), number)))
            record.update(type=kind, severity=severity, priority=priority, title='%s on slurm-exporter' % kind.replace('_', ' '),
                          acknowledged_at=ts(start + datetime.timedelta(seconds=tta)),
                          resolved_at=ts(start + datetime.timedelta(seconds=ttr)),
                          response_due_at=ts(start + datetime.timedelta(seconds=due)), follow_ups=[])
            if index == 0 and month >= months - 3:
                record['follow_ups'] = [{'title': 'Alert on %s earlier' % kind.replace('_', ' '), 'owner': 'sre',
                                         'due': ts(start + datetime.timedelta(days=20))[:10], 'status': 'open'}]
            records.append(record)
        number += 1
        drill_start = first + datetime.timedelta(days=12)
        drill = copy.deepcopy(dense_breach(drill_start, 'INC-%s-%04d' % (drill_start.strftime('%Y%m%d'), number)))
        ack = [240, 420, 1500, 300, 660, 180][month % 6]
        drill.update(drill=True, type='service_outage', title='[DRILL] service outage', acknowledged_at=ts(drill_start + datetime.timedelta(seconds=ack)),
                     mitigated_at=ts(drill_start + datetime.timedelta(seconds=ack + 400)),
                     resolved_at=ts(drill_start + datetime.timedelta(seconds=ack + 900)), follow_ups=[])
        records.append(drill)
    return records
