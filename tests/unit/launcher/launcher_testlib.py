# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Alertmanager webhook payloads (version 4) for the launcher tests."""

from __future__ import annotations


def alert(fingerprint='a1b2c3d4e5f60718', status='firing', starts='2026-11-24T10:00:00.123456789Z', **labels):
    return {
        'status': status,
        'labels': dict({'alertname': 'SlurmExporterDown', 'incident_type': 'service_outage'}, **labels),
        'annotations': {'summary': 'exporter down'},
        'startsAt': starts,
        'endsAt': '0001-01-01T00:00:00Z',
        'generatorURL': 'http://prometheus:9090/graph?g0.expr=up',
        'fingerprint': fingerprint,
    }


def payload(*alerts, **top):
    document = {
        'version': '4', 'groupKey': '{}:{alertname="SlurmExporterDown"}', 'truncatedAlerts': 0, 'status': 'firing',
        'receiver': 'incident-response', 'groupLabels': {'alertname': 'SlurmExporterDown'}, 'commonLabels': {},
        'commonAnnotations': {}, 'externalURL': 'http://alertmanager:9093', 'alerts': list(alerts) or [alert()],
    }
    document.update(top)
    return document
