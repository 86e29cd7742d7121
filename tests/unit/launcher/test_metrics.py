# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The /metrics text: valid Prometheus exposition format, cumulative histogram, labelled counters."""

from __future__ import annotations

import re

from incident_launcher.metrics import FAMILIES, Metrics

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def parse(text):
    """Samples by (name, labels text); every line must be a comment, or a sample of a family declared before it."""
    assert text.endswith('\n')
    declared, samples = {}, {}
    for line in text.splitlines():
        if line.startswith('# HELP '):
            continue
        if line.startswith('# TYPE '):
            _hash, _type, name, kind = line.split(' ')
            declared[name] = kind
            continue
        match = SAMPLE_RE.match(line)
        assert match, line
        name = match.group(1)
        family = re.sub(r'_(bucket|sum|count)$', '', name) if name not in declared else name
        assert family in declared, line
        samples[(name, match.group(2) or '')] = float(match.group(4).replace('+Inf', 'inf'))
    return declared, samples


def test_exposition_format():
    metrics = Metrics(buckets=(0.01, 0.1, 1.0))
    metrics.inc('incident_launcher_alerts_received_total', 3)
    metrics.inc('incident_launcher_alerts_rejected_total', reason='schema')
    metrics.inc('incident_launcher_alerts_rejected_total', reason='auth_missing')
    metrics.inc('incident_launcher_alerts_rejected_total', reason='schema')
    metrics.set_gauge('incident_launcher_queue_depth', 7)
    metrics.gauge_max('incident_launcher_runs_in_flight_peak', 2)
    metrics.gauge_max('incident_launcher_runs_in_flight_peak', 1)
    for seconds in (0.005, 0.01, 0.05, 2.0):
        metrics.observe_ack(seconds)
    declared, samples = parse(metrics.render())
    assert set(declared) == {name for name, _kind, _help in FAMILIES}
    assert declared['incident_launcher_ack_latency_seconds'] == 'histogram'
    assert samples[('incident_launcher_alerts_received_total', '')] == 3
    assert samples[('incident_launcher_alerts_rejected_total', '{reason="schema"}')] == 2
    assert samples[('incident_launcher_alerts_rejected_total', '{reason="auth_missing"}')] == 1
    assert samples[('incident_launcher_queue_depth', '')] == 7
    assert samples[('incident_launcher_runs_in_flight_peak', '')] == 2
    buckets = [samples[('incident_launcher_ack_latency_seconds_bucket', '{le="%s"}' % bound)] for bound in ('0.01', '0.1', '1.0', '+Inf')]
    assert buckets == [2, 3, 3, 4]
    assert samples[('incident_launcher_ack_latency_seconds_count', '')] == 4
    assert abs(samples[('incident_launcher_ack_latency_seconds_sum', '')] - 2.065) < 1e-9
    # counters that never moved are still exported (0), so rate() works from the first scrape
    assert samples[('incident_launcher_runs_failed_total', '')] == 0


def test_label_values_are_escaped():
    metrics = Metrics()
    metrics.inc('incident_launcher_first_response_total', result='a"b\\c\nd')
    _declared, samples = parse(metrics.render())
    assert samples[('incident_launcher_first_response_total', '{result="a\\"b\\\\c\\nd"}')] == 1
