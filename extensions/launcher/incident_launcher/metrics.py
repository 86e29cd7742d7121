# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Prometheus metrics in the text exposition format (version 0.0.4), without a client library."""

from __future__ import annotations

import bisect
import threading

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

FAMILIES = (
    ('incident_launcher_alerts_received_total', 'counter', 'Alerts in webhook payloads that passed authentication and validation.'),
    ('incident_launcher_alerts_accepted_total', 'counter', 'Alerts written to the spool (acknowledged with 2xx).'),
    ('incident_launcher_alerts_deduplicated_total', 'counter',
     'Alerts answered 2xx but not spooled: same fingerprint, status and startsAt within the dedup window.'),
    ('incident_launcher_alerts_rejected_total', 'counter', 'Rejected webhook requests (or single alerts), by reason.'),
    ('incident_launcher_alerts_failed_total', 'counter', 'Spooled alerts moved to failed/ after their last attempt.'),
    ('incident_launcher_runs_started_total', 'counter', 'Response runs started (every attempt counts).'),
    ('incident_launcher_runs_succeeded_total', 'counter', 'Response runs that finished successfully.'),
    ('incident_launcher_runs_failed_total', 'counter', 'Response runs that failed (retried or moved to failed/).'),
    ('incident_launcher_runs_retried_total', 'counter', 'Failed runs scheduled again with backoff.'),
    ('incident_launcher_entries_taken_over_total', 'counter', 'Cluster spool: alerts taken over from a lost replica.'),
    ('incident_launcher_claims_lost_total', 'counter', 'Cluster spool: alerts another replica took over from this one.'),
    ('incident_launcher_heartbeat_failures_total', 'counter', 'Cluster spool: replica heartbeats the API server did not take.'),
    ('incident_launcher_first_response_total', 'counter', 'In-process first responses (isolation of security incidents), by result.'),
    ('incident_launcher_queue_depth', 'gauge', 'Spooled alerts waiting for or in a run.'),
    ('incident_launcher_runs_in_flight', 'gauge', 'Response runs in progress.'),
    ('incident_launcher_runs_in_flight_peak', 'gauge', 'Highest number of concurrent runs since start.'),
    ('incident_launcher_connections_open', 'gauge', 'Open client connections.'),
    ('incident_launcher_connections_open_peak', 'gauge', 'Most client connections open at once since start.'),
    ('incident_launcher_connections_closed_total', 'counter',
     'Connections the launcher closed or refused, by reason (request_timeout, header_too_large, evicted, peer_limit, '
     'connection_limit, accept_error).'),
    ('incident_launcher_inbound_refused_total', 'counter',
     'Inbound requests from Slack and PagerDuty refused, by source and reason (signature_missing, signature_invalid, stale, '
     'replayed, not_configured, too_large, no_length, bad_request, request_timeout, busy): never written to disk.'),
    ('incident_launcher_inbound_commands_total', 'counter',
     'What people asked through Slack and PagerDuty, by source, verb and result (applied, unchanged, refused, not_found, '
     'forbidden, ignored, busy).'),
    ('incident_launcher_ack_latency_seconds', 'histogram', 'Time from a webhook request to its 2xx answer (spool written and synced).'),
)


def _escape(value):
    return str(value).replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"')


def _labels(labels):
    if not labels:
        return ''
    return '{%s}' % ','.join('%s="%s"' % (key, _escape(value)) for key, value in labels)


def _number(value):
    if value == float('inf'):
        return '+Inf'
    if float(value).is_integer():
        return '%d' % value
    return repr(float(value))


class Metrics:
    """Counters, gauges and the ack-latency histogram; thread-safe."""

    def __init__(self, buckets=ACK_BUCKETS):
        self.lock = threading.Lock()
        self.kinds = {name: kind for name, kind, _help in FAMILIES}
        self.values = {}
        self.gauges = {}
        self.buckets = tuple(buckets)
        self.bucket_counts = [0] * (len(self.buckets) + 1)
        self.hist_sum = 0.0
        self.hist_count = 0

    def inc(self, name, value=1, **labels):
        if self.kinds.get(name) != 'counter':
            raise KeyError('unknown counter %s' % name)
        key = (name, tuple(sorted(labels.items())))
        with self.lock:
            self.values[key] = self.values.get(key, 0) + value

    def set_gauge(self, name, value):
        if self.kinds.get(name) != 'gauge':
            raise KeyError('unknown gauge %s' % name)
        with self.lock:
            self.gauges[name] = value

    def gauge_max(self, name, value):
        with self.lock:
            if value > self.gauges.get(name, 0):
                self.gauges[name] = value

    def observe_ack(self, seconds):
        with self.lock:
            self.bucket_counts[bisect.bisect_left(self.buckets, seconds)] += 1
            self.hist_sum += seconds
            self.hist_count += 1

    def get(self, name, **labels):
        with self.lock:
            if self.kinds.get(name) == 'gauge':
                return self.gauges.get(name, 0)
            return self.values.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name):
        with self.lock:
            return sum(value for (key, _labels), value in self.values.items() if key == name)

    def render(self):
        lines = []
        with self.lock:
            for name, kind, help_text in FAMILIES:
                lines.append('# HELP %s %s' % (name, help_text))
                lines.append('# TYPE %s %s' % (name, kind))
                if kind == 'counter':
                    series = sorted((labels, value) for (key, labels), value in self.values.items() if key == name)
                    if not series:
                        series = [((), 0)]
                    lines.extend('%s%s %s' % (name, _labels(labels), _number(value)) for labels, value in series)
                elif kind == 'gauge':
                    lines.append('%s %s' % (name, _number(self.gauges.get(name, 0))))
                else:
                    cumulative = 0
                    for bound, count in zip(self.buckets + (float('inf'),), self.bucket_counts):
                        cumulative += count
                        lines.append('%s_bucket{le="%s"} %d' % (name, _number(bound) if bound == float('inf') else repr(bound), cumulative))
                    lines.append('%s_sum %s' % (name, repr(self.hist_sum)))
                    lines.append('%s_count %d' % (name, self.hist_count))
        return '\n'.join(lines) + '\n'
