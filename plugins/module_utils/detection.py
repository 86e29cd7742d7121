# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Detection rules: Prometheus alerts per incident type, written against metrics the exporter really emits.

The exporter's metrics (see the reference NOTICE): slurm_exporter_collector_duration_seconds
(histogram), slurm_exporter_collector_errors_total{error_type=timeout|connection|authentication|api_error|unknown},
slurm_exporter_last_collection_timestamp_seconds, slurm_exporter_collector_up,
slurm_exporter_sla_violations_total, slurm_exporter_http_requests_total{status}, process_* and up.
Names that appear in upstream rules but that the exporter never emits (slurm_exporter_errors_total,
slurm_exporter_auth_failures_total, slurm_exporter_scrape_duration_seconds, slurm_exporter_up,
slurm_exporter_last_successful_backup_timestamp) are not used. Cluster state comes from
kube-state-metrics and cAdvisor; security events from Falco where it runs.

Expressions use ``${job}``, ``${namespace}``, ``${deployment}`` and ``${approved_images}``,
filled in from the generator's options. Each type's list can be replaced from inventory through
``incident_catalog.types.<type>.detection``.
"""

from __future__ import annotations

import re
import string

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil

FALCO = 'falco_events{k8s_ns_name="${namespace}",priority=~"Critical|Alert|Emergency"'
DEFAULT_DETECTION = {
    'security_breach': [
        {'alert': 'SlurmExporterAuthenticationFailures', 'for': '0m',
         'expr': 'sum(increase(slurm_exporter_collector_errors_total{job="${job}",error_type="authentication"}[5m])) > 10',
         'summary': 'SLURM API authentication failures from the exporter',
         'description': 'More than 10 authentication errors in 5 minutes: the exporter credentials may be revoked or abused.'},
        {'alert': 'SlurmExporterUnauthorizedRequests', 'for': '2m',
         'expr': 'sum(rate(slurm_exporter_http_requests_total{job="${job}",status=~"401|403"}[5m])) > 1',
         'summary': 'Unauthorized requests against the exporter',
         'description': 'More than one 401/403 answer per second for 2 minutes.'},
        {'alert': 'SlurmExporterFalcoCriticalEvent', 'for': '0m',
         'expr': 'sum(increase(' + FALCO + '}[5m])) > 0',
         'summary': 'Falco reported a critical event in the exporter namespace',
         'description': 'A Critical, Alert or Emergency Falco rule fired for a workload in the namespace.'},
    ],
    'vulnerability_exploit': [
        {'alert': 'SlurmExporterExploitSignature', 'for': '0m',
         'expr': 'sum(increase(' + FALCO + ',rule=~"(?i).*(exploit|privilege escalation|shell).*"}[5m])) > 0',
         'summary': 'Exploit signature in the exporter namespace',
         'description': 'Falco saw exploit, privilege escalation or shell activity.'},
    ],
    'malware_detection': [
        {'alert': 'SlurmExporterMalwareSignature', 'for': '0m',
         'expr': 'sum(increase(' + FALCO + ',rule=~"(?i).*(miner|malware|crypto).*"}[5m])) > 0',
         'summary': 'Malware signature in the exporter namespace',
         'description': 'Falco saw crypto-mining or malware activity.'},
    ],
    'compliance_violation': [
        {'alert': 'SlurmExporterUnapprovedImage', 'for': '15m',
         'expr': 'count(kube_pod_container_info{namespace="${namespace}",container="${deployment}",image!~"${approved_images}"}) > 0',
         'summary': 'The exporter runs an image that is not approved',
         'description': 'A container of the exporter runs an image outside the approved pattern for 15 minutes.'},
    ],
    'service_outage': [
        {'alert': 'SlurmExporterDown', 'for': '2m', 'expr': 'up{job="${job}"} == 0',
         'summary': 'SLURM exporter target is down',
         'description': 'Prometheus could not scrape the exporter for 2 minutes.'},
        {'alert': 'SlurmExporterTargetMissing', 'for': '5m', 'expr': 'absent(up{job="${job}"})',
         'summary': 'No SLURM exporter target at all',
         'description': 'Prometheus has no target for the exporter job for 5 minutes.'},
    ],
    'performance_degradation': [
        {'alert': 'SlurmExporterSlowCollection', 'for': '10m',
         'expr': 'histogram_quantile(0.95, sum by (le, collector) (rate(slurm_exporter_collector_duration_seconds_bucket{job="${job}"}[5m]))) > 10',
         'summary': 'Slow SLURM collection',
         'description': 'The 95th percentile collection time of a collector is above 10 seconds for 10 minutes.'},
        {'alert': 'SlurmExporterSLAViolations', 'for': '5m',
         'expr': 'sum by (collector) (increase(slurm_exporter_sla_violations_total{job="${job}"}[15m])) > 5',
         'summary': 'Collection SLA violations',
         'description': 'More than 5 SLA violations of a collector in 15 minutes.'},
    ],
    'data_loss': [
        {'alert': 'SlurmExporterStaleCollection', 'for': '5m',
         'expr': 'time() - max(slurm_exporter_last_collection_timestamp_seconds{job="${job}"}) > 600',
         'summary': 'SLURM metrics are stale',
         'description': 'The last successful collection is more than 10 minutes old.'},
        {'alert': 'SlurmExporterCollectorDown', 'for': '10m',
         'expr': 'min by (collector) (slurm_exporter_collector_up{job="${job}"}) == 0',
         'summary': 'A SLURM collector is down',
         'description': 'A collector has reported itself down for 10 minutes: its metrics are missing.'},
        {'alert': 'SlurmExporterMetricsAbsent', 'for': '10m',
         'expr': 'absent(slurm_exporter_last_collection_timestamp_seconds{job="${job}"})',
         'summary': 'SLURM exporter metrics are absent',
         'description': 'No collection timestamp has been scraped for 10 minutes.'},
    ],
    'api_failure': [
        {'alert': 'SlurmExporterAPIErrors', 'for': '10m',
         'expr': 'sum by (collector, error_type) (rate(slurm_exporter_collector_errors_total{job="${job}",error_type=~"timeout|api_error"}[5m])) > 0.1',
         'summary': 'SLURM API errors',
         'description': 'A collector sees more than 0.1 timeout or API errors per second for 10 minutes.'},
    ],
    'cluster_failure': [
        {'alert': 'SlurmExporterNoAvailableReplicas', 'for': '5m',
         'expr': 'kube_deployment_status_replicas_available{namespace="${namespace}",deployment="${deployment}"} == 0',
         'summary': 'The exporter deployment has no available replica',
         'description': 'kube-state-metrics reports zero available replicas for 5 minutes.'},
        {'alert': 'SlurmExporterNodeNotReady', 'for': '5m',
         'expr': 'count by (node) (kube_pod_info{namespace="${namespace}",pod=~"${deployment}-.*"} * on (node) group_left() '
                 '(kube_node_status_condition{condition="Ready",status="true"} == 0)) > 0',
         'summary': 'A node running the exporter is not ready',
         'description': 'A node that hosts an exporter pod has not been Ready for 5 minutes.'},
    ],
    'resource_exhaustion': [
        {'alert': 'SlurmExporterMemoryNearLimit', 'for': '5m',
         'expr': 'max by (pod) (container_memory_working_set_bytes{namespace="${namespace}",container="${deployment}"} / '
                 '(container_spec_memory_limit_bytes{namespace="${namespace}",container="${deployment}"} > 0)) > 0.9',
         'summary': 'Exporter memory near its limit',
         'description': 'An exporter container uses more than 90% of its memory limit for 5 minutes.'},
        {'alert': 'SlurmExporterCPUThrottled', 'for': '10m',
         'expr': 'max by (pod) (rate(container_cpu_cfs_throttled_periods_total{namespace="${namespace}",container="${deployment}"}[5m]) / '
                 'rate(container_cpu_cfs_periods_total{namespace="${namespace}",container="${deployment}"}[5m])) > 0.5',
         'summary': 'Exporter CPU throttled',
         'description': 'More than half of the CPU periods of an exporter container are throttled for 10 minutes.'},
        {'alert': 'SlurmExporterFileDescriptorsExhausted', 'for': '10m',
         'expr': 'max(process_open_fds{job="${job}"} / process_max_fds{job="${job}"}) > 0.8',
         'summary': 'Exporter file descriptors nearly exhausted',
         'description': 'The exporter uses more than 80% of its file descriptors for 10 minutes.'},
    ],
    'network_partition': [
        {'alert': 'SlurmExporterSlurmUnreachable', 'for': '5m',
         'expr': 'sum(rate(slurm_exporter_collector_errors_total{job="${job}",error_type="connection"}[5m])) > 0.5 '
                 'and on() max(up{job="${job}"}) == 1',
         'summary': 'The exporter cannot reach slurmrestd',
         'description': 'The exporter is up but its SLURM API connections fail, for 5 minutes.'},
    ],
}

ALERT_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
# The label every detection rule puts on its alerts; the Alertmanager route to the response matches it.
COMPONENT = 'incident-response'
# Runbooks: docs/runbooks/<alert>.md for every alert above, docs/runbooks/custom-response-rule.md for the alerts of
# custom response rules. A catalog override may name its own page (runbook_url); otherwise <base>/<alert>.md.
DEFAULT_RUNBOOK_BASE = 'https://github.com/slurm-exporter/incident_response/blob/main/docs/runbooks'
CUSTOM_RULE_RUNBOOK = 'custom-response-rule'


def runbook_url(base, page):
    """``<base>/<page>.md``."""
    if not isinstance(base, str) or not base.strip():
        raise ValidationError('runbook_base_url: expected a URL or path, got %r' % (base,))
    return '%s/%s.md' % (base.rstrip('/'), page)


DEFAULT_OPTIONS = {'job': 'slurm-exporter', 'namespace': 'slurm-exporter', 'deployment': 'slurm-exporter',
                   'approved_images': 'ghcr.io/jontk/slurm-exporter:.*'}


def _substitute(text, options, where):
    template = string.Template(text)
    try:
        return template.substitute(options)
    except (KeyError, ValueError) as exc:
        raise ValidationError('%s: unknown or malformed placeholder %s (known: %s)' % (where, exc, ', '.join(sorted(options)))) from None


def _rule(alert, expr, duration, labels, summary, description, runbook):
    return {
        'alert': alert,
        'expr': expr,
        'for': duration,
        'labels': labels,
        'annotations': {'summary': summary, 'description': description, 'runbook_url': runbook},
    }


def build_groups(catalog, custom_rules=None, options=None, runbook_base=DEFAULT_RUNBOOK_BASE):
    """Prometheus rule groups: one per incident category, plus one for the custom response rules."""
    values = dict(DEFAULT_OPTIONS, **{k: v for k, v in (options or {}).items() if v is not None})
    for key, value in values.items():
        if not isinstance(value, str) or '"' in value or '\n' in value:
            raise ValidationError('%s: expected a string without quotes or newlines, got %r' % (key, value))
    groups = {}
    seen = set()
    for type_name in sorted(catalog.types):
        info = catalog.types[type_name]
        for index, rule in enumerate(info.get('detection') or []):
            where = 'incident_catalog.types.%s.detection[%d]' % (type_name, index)
            alert = rule.get('alert')
            if not isinstance(alert, str) or not ALERT_NAME.match(alert):
                raise ValidationError('%s.alert: expected an alert name ([A-Za-z_][A-Za-z0-9_]*), got %r' % (where, alert))
            if alert in seen:
                raise ValidationError('%s.alert: %s is defined twice' % (where, alert))
            seen.add(alert)
            duration = rule.get('for', '0m')
            timeutil.parse_duration(duration if duration != '0m' else 0, where + '.for')
            labels = {'incident_type': type_name, 'severity': rule.get('severity') or info['severity'], 'component': COMPONENT}
            catalog.require_severity(labels['severity'], where + '.severity')
            groups.setdefault(info['category'], []).append(_rule(
                alert, _substitute(rule['expr'], values, where + '.expr'), duration, labels, rule.get('summary') or info['description'],
                rule.get('description') or info['description'], rule.get('runbook_url') or runbook_url(runbook_base, alert)))
    for index, rule in enumerate(custom_rules or []):
        where = 'custom_rules[%d]' % index
        name = rule.get('name')
        if not isinstance(name, str) or not re.match(r'^[a-z][a-z0-9_-]*$', name):
            raise ValidationError('%s.name: expected a lower-case name (letters, digits, - and _), got %r' % (where, name))
        if not isinstance(rule.get('trigger'), str) or not rule['trigger'].strip():
            raise ValidationError('%s.trigger: a PromQL expression is required' % where)
        type_name = rule.get('incident_type') or 'performance_degradation'
        catalog.require_type(type_name, where + '.incident_type')
        severity = rule.get('severity') or catalog.types[type_name]['severity']
        catalog.require_severity(severity, where + '.severity')
        duration = rule.get('duration') or '5m'
        timeutil.parse_duration(duration, where + '.duration')
        alert = 'IncidentResponseCustom' + ''.join(part.capitalize() for part in re.split(r'[-_]', name))
        if alert in seen:
            raise ValidationError('%s.name: the alert %s is defined twice' % (where, alert))
        seen.add(alert)
        labels = {'incident_type': type_name, 'severity': severity, 'component': COMPONENT, 'response_rule': name}
        groups.setdefault('custom', []).append(_rule(
            alert, _substitute(rule['trigger'], values, where + '.trigger'), duration, labels,
            rule.get('summary') or 'Custom response rule %s' % name,
            rule.get('description') or 'Custom response rule %s triggered: actions %s' % (name, ', '.join(rule.get('actions') or []) or 'none'),
            rule.get('runbook_url') or runbook_url(runbook_base, CUSTOM_RULE_RUNBOOK)))
    return [{'name': 'incident-response.%s' % category, 'rules': rules} for category, rules in sorted(groups.items())]


# Alertmanager's alert fingerprint (prometheus/common model.LabelSet.Fingerprint): FNV-1a, 64 bits, over the label
# names in order, each name and value followed by the separator byte 0xff; printed as 16 hex digits.
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211


def alert_fingerprint(labels):
    """The fingerprint Alertmanager gives an alert with these labels (the same labels always give the same one)."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in str(part).encode('utf-8') + b'\xff':
                value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return '%016x' % value


def sample_payload(catalog, incident_type, starts_at, runbook_base=DEFAULT_RUNBOOK_BASE):
    """An Alertmanager webhook payload (version 4) with one firing alert of ``incident_type``, as the type's first
    detection rule would send it: its alert name, labels and annotations, ``startsAt`` as given. For trying the
    response (docs, demo): build it at run time, so the alert is as recent as a real one."""
    info = catalog.require_type(incident_type, 'incident_type')
    if not isinstance(starts_at, str) or not starts_at:
        raise ValidationError('starts_at: expected an RFC 3339 time, got %r' % (starts_at,))
    rules = info.get('detection') or []
    rule = rules[0] if rules else {}
    alert_name = rule.get('alert') or 'IncidentResponse' + ''.join(part.capitalize() for part in incident_type.split('_'))
    labels = {'alertname': alert_name, 'component': 'incident-response', 'incident_type': incident_type,
              'severity': rule.get('severity') or info['severity']}
    annotations = {'summary': rule.get('summary') or info['description'],
                   'description': rule.get('description') or info['description'],
                   'runbook_url': rule.get('runbook_url') or runbook_url(runbook_base, alert_name)}
    return {
        'version': '4',
        'groupKey': '{}/{component="incident-response"}:{alertname="%s", incident_type="%s"}' % (alert_name, incident_type),
        'truncatedAlerts': 0,
        'status': 'firing',
        'receiver': 'incident-response',
        'groupLabels': {'alertname': alert_name, 'incident_type': incident_type},
        'commonLabels': dict(labels),
        'commonAnnotations': dict(annotations),
        'externalURL': 'http://127.0.0.1:9093',
        'alerts': [{
            'status': 'firing',
            'labels': labels,
            'annotations': annotations,
            'startsAt': starts_at,
            'endsAt': '0001-01-01T00:00:00Z',
            'generatorURL': 'http://127.0.0.1:9090/graph',
            'fingerprint': alert_fingerprint(labels),
        }],
    }


def prometheus_rule(groups, name='incident-detection-rules', namespace='slurm-exporter', labels=None):
    """The PrometheusRule custom resource (prometheus-operator) holding the groups."""
    return {
        'apiVersion': 'monitoring.coreos.com/v1',
        'kind': 'PrometheusRule',
        'metadata': {'name': name, 'namespace': namespace,
                     'labels': dict({'app': 'slurm-exporter', 'component': 'incident-response'}, **(labels or {}))},
        'spec': {'groups': groups},
    }


SECURITY_TYPES = ('security_breach', 'vulnerability_exploit', 'malware_detection', 'compliance_violation')


def rule_labels(catalog, category=None):
    """``{alert name: the labels the rule sets on its alerts (incident_type, component)}`` for the catalog's detection rules.

    Prometheus gives an alert the labels of its rule over those of the series, so an alert named after one of these
    rules that carries these labels was raised by that rule, not by a scraped series that imitates its labels
    (``alertname`` and the rule's labels cannot come from the series). ``category`` keeps the rules of one category.
    """
    found = {}
    for type_name in sorted(catalog.types):
        info = catalog.types[type_name]
        if category is not None and info['category'] != category:
            continue
        for rule in info.get('detection') or []:
            if isinstance(rule, dict) and isinstance(rule.get('alert'), str):
                found[rule['alert']] = {'incident_type': type_name, 'component': COMPONENT}
    return found


# Alertmanager's duration syntax (model.ParseDuration): units from ms to y, largest first, no sign, no fraction.
AM_DURATION_RE = re.compile(r'^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$')
# The incident-response route: the first alert of a group reaches the webhook at once, a changed group within 30 s,
# and an unchanged firing group is resent hourly (the launcher de-duplicates resends).
RESPONSE_TIMING = {'group_wait': '0s', 'group_interval': '30s', 'repeat_interval': '1h'}


def alertmanager_config(webhook_url, bearer_token=None, basic_auth=None, security_receiver=None, default_receiver=None,  # pylint: disable=too-many-arguments
                        security_types=SECURITY_TYPES, group_wait='10s', group_interval='1m', repeat_interval='4h', response_timing=None):
    """An Alertmanager configuration that delivers incident-response alerts to the launcher (or rulebook).

    - alerts with ``component="incident-response"`` go to the ``incident-response`` webhook receiver with
      ``send_resolved: true`` (resolved alerts update the same incident);
    - before it, security types also go to the security team's receiver, with ``continue: true`` so that
      the response still runs;
    - the webhook's authentication is what the launcher expects: a bearer token or basic auth.
    """
    if not isinstance(webhook_url, str) or not re.match(r'^https?://[^\s"]+$', webhook_url):
        raise ValidationError('webhook_url: expected an http(s) URL, got %r' % (webhook_url,))
    timing = dict(RESPONSE_TIMING, **{key: value for key, value in (response_timing or {}).items() if value is not None})
    for key in sorted(timing):
        if key not in RESPONSE_TIMING:
            raise ValidationError('response_timing.%s: unknown (known: %s)' % (key, ', '.join(sorted(RESPONSE_TIMING))))
        if not isinstance(timing[key], str) or not timing[key] or not AM_DURATION_RE.match(timing[key]):
            raise ValidationError('response_timing.%s: expected an Alertmanager duration such as 30s, 5m or 1h, got %r' % (key, timing[key]))
    if not re.search(r'[1-9]', timing['group_interval']):
        raise ValidationError('response_timing.group_interval: must be greater than zero')
    http_config = {}
    if bearer_token:
        http_config['authorization'] = {'type': 'Bearer', 'credentials': bearer_token}
    elif basic_auth:
        http_config['basic_auth'] = {'username': basic_auth['username'], 'password': basic_auth['password']}
    webhook = {'url': webhook_url, 'send_resolved': True, 'max_alerts': 0}
    if http_config:
        webhook['http_config'] = http_config
    receivers = [{'name': 'incident-response', 'webhook_configs': [webhook]}]
    routes = []
    if security_receiver:
        receivers.append(dict(security_receiver, name='security-team'))
        routes.append({'receiver': 'security-team', 'continue': True,
                       'matchers': ['component="incident-response"', 'incident_type=~"%s"' % '|'.join(security_types)]})
    routes.append({'receiver': 'incident-response', 'matchers': ['component="incident-response"'],
                   'group_by': ['alertname', 'incident_type'], 'group_wait': timing['group_wait'],
                   'group_interval': timing['group_interval'], 'repeat_interval': timing['repeat_interval']})
    receivers.append(dict(default_receiver or {}, name='default'))
    return {
        'route': {'receiver': 'default', 'group_by': ['alertname'], 'group_wait': group_wait, 'group_interval': group_interval,
                  'repeat_interval': repeat_interval, 'routes': routes},
        'receivers': receivers,
    }
