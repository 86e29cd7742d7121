# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one builder of Alertmanager alerts and webhook payloads (version 4) for the tests.

``alert()`` is what Alertmanager sends for a firing SlurmExporterDown (service_outage) unless told otherwise;
``security_alert()`` is what the collection's own detection rule SlurmExporterAuthenticationFailures raises
(the alerts the launcher's first response may act on); ``payload()`` wraps alerts as one notification.
"""

from __future__ import annotations

ZERO_TIME = '0001-01-01T00:00:00Z'
STARTS = '2026-11-24T10:00:00.123456789Z'


def alert(fingerprint='a1b2c3d4e5f60718', status='firing', starts=STARTS, ends=None, annotations=None, **labels):
    """One alert; ``labels`` are added to (or replace) alertname=SlurmExporterDown, incident_type=service_outage."""
    return {
        'status': status,
        'labels': dict({'alertname': 'SlurmExporterDown', 'incident_type': 'service_outage'}, **labels),
        'annotations': dict({'summary': 'exporter down'} if annotations is None else annotations),
        'startsAt': starts,
        'endsAt': ends if ends is not None else ('2026-11-24T10:05:00Z' if status == 'resolved' else ZERO_TIME),
        'generatorURL': 'http://prometheus:9090/graph?g0.expr=up',
        'fingerprint': fingerprint,
    }


def security_alert(fingerprint='5ec0a1b2c3d4e5f6', status='firing', **labels):
    """What the detection rule SlurmExporterAuthenticationFailures (security_breach) raises: its name and its labels."""
    return alert(fingerprint, status, **dict({'alertname': 'SlurmExporterAuthenticationFailures', 'incident_type': 'security_breach',
                                              'severity': 'critical', 'component': 'incident-response'}, **labels))


def payload(*alerts, **top):
    """A webhook notification holding ``alerts`` (one default alert when none); ``top`` replaces top-level fields."""
    alerts = list(alerts) or [alert()]
    first = alerts[0] if isinstance(alerts[0], dict) and isinstance(alerts[0].get('labels'), dict) else {'labels': {}}
    document = {
        'version': '4', 'groupKey': '{}:{alertname="%s"}' % first['labels'].get('alertname', ''), 'truncatedAlerts': 0,
        'status': 'firing', 'receiver': 'incident-response', 'groupLabels': {}, 'commonLabels': {}, 'commonAnnotations': {},
        'externalURL': 'http://alertmanager:9093', 'alerts': alerts,
    }
    document.update(top)
    return document
