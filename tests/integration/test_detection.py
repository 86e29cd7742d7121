# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The generated detection rules, checked and unit-tested with promtool (Debian's prometheus package)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import run_playbook, write_playbook

pytestmark = pytest.mark.integration

J = 'job="slurm-exporter", instance="10.244.0.5:10341"'
NS = 'namespace="slurm-exporter"'
BASE = {'component': 'incident-response'}
CUSTOM = [{'name': 'heap-growth', 'trigger': 'go_memstats_heap_inuse_bytes{job="${job}"} > 5e8', 'duration': '10m',
           'incident_type': 'resource_exhaustion', 'actions': ['capture_heap_dump']}]

# alert, incident type, severity, input series, eval time when it must fire, eval time when it must be silent, labels it keeps
CASES = [
    ('SlurmExporterDown', 'service_outage', 'critical', [('up{%s}' % J, '1 1 0x10')], '4m', '3m',
     {'job': 'slurm-exporter', 'instance': '10.244.0.5:10341'}),
    ('SlurmExporterTargetMissing', 'service_outage', 'critical', [('up{job="node"}', '1x10')], '5m', '4m', {'job': 'slurm-exporter'}),
    ('SlurmExporterAuthenticationFailures', 'security_breach', 'critical',
     [('slurm_exporter_collector_errors_total{%s, collector="jobs", error_type="authentication"}' % J, '0 0 0 0 0 0 5 10 15 20 25 30 35')],
     '12m', '5m', {}),
    ('SlurmExporterUnauthorizedRequests', 'security_breach', 'critical',
     [('slurm_exporter_http_requests_total{%s, method="GET", path="/metrics", status="401"}' % J, '0+120x15')], '5m', '2m', {}),
    ('SlurmExporterFalcoCriticalEvent', 'security_breach', 'critical',
     [('falco_events{%s, k8s_ns_name="slurm-exporter", priority="Critical", rule="Write below etc"}' % NS, '0 0 1 1 1')], '3m', '1m', {}),
    ('SlurmExporterExploitSignature', 'vulnerability_exploit', 'critical',
     [('falco_events{k8s_ns_name="slurm-exporter", priority="Critical", rule="Privilege Escalation via setuid"}', '0 0 1 1 1')], '3m', '1m', {}),
    ('SlurmExporterMalwareSignature', 'malware_detection', 'critical',
     [('falco_events{k8s_ns_name="slurm-exporter", priority="Critical", rule="Detect crypto miners using the Stratum protocol"}', '0 0 2 2 2')],
     '3m', '1m', {}),
    ('SlurmExporterUnapprovedImage', 'compliance_violation', 'high',
     [('kube_pod_container_info{%s, pod="p1", container="slurm-exporter", image="evil/miner:latest"}' % NS, '1x20'),
      ('kube_pod_container_info{%s, pod="p2", container="slurm-exporter", image="ghcr.io/jontk/slurm-exporter:v1.0.0"}' % NS, '1x20')],
     '15m', '14m', {}),
    ('SlurmExporterSlowCollection', 'performance_degradation', 'high',
     [('slurm_exporter_collector_duration_seconds_bucket{%s, collector="jobs", status="success", le="1"}' % J, '0x20'),
      ('slurm_exporter_collector_duration_seconds_bucket{%s, collector="jobs", status="success", le="10"}' % J, '0x20'),
      ('slurm_exporter_collector_duration_seconds_bucket{%s, collector="jobs", status="success", le="30"}' % J, '0+10x20'),
      ('slurm_exporter_collector_duration_seconds_bucket{%s, collector="jobs", status="success", le="+Inf"}' % J, '0+10x20')],
     '11m', '10m', {'collector': 'jobs'}),
    ('SlurmExporterSLAViolations', 'performance_degradation', 'high',
     [('slurm_exporter_sla_violations_total{%s, collector="nodes", violation_type="duration"}' % J, '0+1x30')], '20m', '3m',
     {'collector': 'nodes'}),
    ('SlurmExporterStaleCollection', 'data_loss', 'high',
     [('slurm_exporter_last_collection_timestamp_seconds{%s}' % J, '60x30')], '17m', '16m', {}),
    ('SlurmExporterCollectorDown', 'data_loss', 'high',
     [('slurm_exporter_collector_up{%s, collector="qos"}' % J, '1 1 0x20')], '12m', '11m', {'collector': 'qos'}),
    ('SlurmExporterMetricsAbsent', 'data_loss', 'high', [('up{%s}' % J, '1x20')], '10m', '9m', {'job': 'slurm-exporter'}),
    ('SlurmExporterAPIErrors', 'api_failure', 'medium',
     [('slurm_exporter_collector_errors_total{%s, collector="jobs", error_type="timeout"}' % J, '0+12x30')], '15m', '8m',
     {'collector': 'jobs', 'error_type': 'timeout'}),
    ('SlurmExporterNoAvailableReplicas', 'cluster_failure', 'critical',
     [('kube_deployment_status_replicas_available{%s, deployment="slurm-exporter"}' % NS, '3 3 0x20')], '7m', '6m',
     {'namespace': 'slurm-exporter', 'deployment': 'slurm-exporter'}),
    ('SlurmExporterNodeNotReady', 'cluster_failure', 'critical',
     [('kube_pod_info{%s, pod="slurm-exporter-7d9f-abcde", node="node-a"}' % NS, '1x20'),
      ('kube_node_status_condition{node="node-a", condition="Ready", status="true"}', '1 1 0x20'),
      ('kube_node_status_condition{node="node-b", condition="Ready", status="true"}', '0x20')], '7m', '6m', {'node': 'node-a'}),
    ('SlurmExporterMemoryNearLimit', 'resource_exhaustion', 'high',
     [('container_memory_working_set_bytes{%s, pod="p1", container="slurm-exporter"}' % NS, '950x20'),
      ('container_spec_memory_limit_bytes{%s, pod="p1", container="slurm-exporter"}' % NS, '1000x20'),
      ('container_memory_working_set_bytes{%s, pod="p2", container="slurm-exporter"}' % NS, '500x20'),
      ('container_spec_memory_limit_bytes{%s, pod="p2", container="slurm-exporter"}' % NS, '1000x20')], '5m', '4m', {'pod': 'p1'}),
    ('SlurmExporterCPUThrottled', 'resource_exhaustion', 'high',
     [('container_cpu_cfs_throttled_periods_total{%s, pod="p1", container="slurm-exporter"}' % NS, '0+60x30'),
      ('container_cpu_cfs_periods_total{%s, pod="p1", container="slurm-exporter"}' % NS, '0+100x30')], '12m', '10m', {'pod': 'p1'}),
    ('SlurmExporterFileDescriptorsExhausted', 'resource_exhaustion', 'high',
     [('process_open_fds{%s}' % J, '900x20'), ('process_max_fds{%s}' % J, '1000x20')], '10m', '9m', {}),
    ('SlurmExporterSlurmUnreachable', 'network_partition', 'high',
     [('slurm_exporter_collector_errors_total{%s, collector="jobs", error_type="connection"}' % J, '0+60x20'), ('up{%s}' % J, '1x20')],
     '9m', '5m', {}),
    ('IncidentResponseCustomHeapGrowth', 'resource_exhaustion', 'high',
     [('go_memstats_heap_inuse_bytes{%s}' % J, '600000000x20')], '10m', '9m',
     {'job': 'slurm-exporter', 'instance': '10.244.0.5:10341', 'response_rule': 'heap-growth'}),
]

# The same alerts must stay silent on a healthy exporter.
HEALTHY = [
    ('up{%s}' % J, '1x40'),
    ('slurm_exporter_collector_errors_total{%s, collector="jobs", error_type="timeout"}' % J, '0+1x40'),
    ('slurm_exporter_collector_errors_total{%s, collector="jobs", error_type="authentication"}' % J, '0x40'),
    ('slurm_exporter_collector_errors_total{%s, collector="jobs", error_type="connection"}' % J, '0+2x40'),
    ('slurm_exporter_http_requests_total{%s, method="GET", path="/metrics", status="200"}' % J, '0+120x40'),
    ('slurm_exporter_collector_duration_seconds_bucket{%s, collector="jobs", status="success", le="1"}' % J, '0+10x40'),
    ('slurm_exporter_collector_duration_seconds_bucket{%s, collector="jobs", status="success", le="+Inf"}' % J, '0+10x40'),
    ('slurm_exporter_sla_violations_total{%s, collector="nodes", violation_type="duration"}' % J, '0x40'),
    ('slurm_exporter_last_collection_timestamp_seconds{%s}' % J, '0+60x40'),
    ('slurm_exporter_collector_up{%s, collector="qos"}' % J, '1x40'),
    ('kube_deployment_status_replicas_available{%s, deployment="slurm-exporter"}' % NS, '3x40'),
    ('process_open_fds{%s}' % J, '50x40'), ('process_max_fds{%s}' % J, '1000x40'),
    ('go_memstats_heap_inuse_bytes{%s}' % J, '50000000x40'),
]


def generate(tmp_path, catalog=None):
    """Run the module through ansible-playbook and return the path of the rules file it wrote."""
    dest = tmp_path / 'rules.yml'
    tasks = [{'name': 'rules', 'slurm_exporter.incident_response.detection_rules': {
        'format': 'rules', 'dest': str(dest), 'custom_rules': CUSTOM, 'catalog': catalog or {}}},
        {'name': 'again', 'slurm_exporter.incident_response.detection_rules': {
            'format': 'rules', 'dest': str(dest), 'custom_rules': CUSTOM, 'catalog': catalog or {}}},
        {'name': 'resource', 'slurm_exporter.incident_response.detection_rules': {'custom_rules': CUSTOM}}]
    run = run_playbook(write_playbook(tmp_path, tasks, name='rules-playbook.yml'))
    assert run.rc == 0, run
    assert run.result('rules')['changed'] and not run.result('again')['changed']
    resource = run.result('resource')['document']
    assert resource['kind'] == 'PrometheusRule' and resource['metadata']['name'] == 'incident-detection-rules'
    return dest, run


def promtool():
    path = shutil.which('promtool')
    if not path:
        pytest.skip('promtool is not installed (make setup installs the prometheus package)')
    return path


def test_rules_check_and_unit_tests(tmp_path):
    tool = promtool()
    rules, run = generate(tmp_path)
    checked = subprocess.run([tool, 'check', 'rules', str(rules)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    document = yaml.safe_load(rules.read_text())
    annotations = {rule['alert']: rule['annotations'] for group in document['groups'] for rule in group['rules']}
    for group in document['groups']:
        for rule in group['rules']:
            assert set(rule['labels']) >= {'incident_type', 'severity', 'component'}
            assert set(rule['annotations']) == {'summary', 'description', 'runbook_url'}
    text = rules.read_text()
    for missing in ('slurm_exporter_errors_total', 'slurm_exporter_auth_failures_total', 'slurm_exporter_scrape_duration_seconds',
                    'slurm_exporter_up', 'slurm_exporter_last_successful_backup_timestamp'):
        assert missing not in text.replace('slurm_exporter_collector_errors_total', '')
    assert {case[0] for case in CASES} == set(annotations), 'every generated alert has a case'
    assert {case[1] for case in CASES} >= set(run.result('rules')['alerts'][i]['incident_type'] for i in range(len(CASES)))
    tests = []
    for alert, incident_type, severity, series, fire_at, silent_at, kept in CASES:
        labels = dict(BASE, incident_type=incident_type, severity=severity, **kept)
        tests.append({'interval': '1m', 'input_series': [{'series': name, 'values': values} for name, values in series],
                      'alert_rule_test': [
                          {'eval_time': silent_at, 'alertname': alert, 'exp_alerts': []},
                          {'eval_time': fire_at, 'alertname': alert,
                           'exp_alerts': [{'exp_labels': labels, 'exp_annotations': annotations[alert]}]}]})
    tests.append({'interval': '1m', 'input_series': [{'series': name, 'values': values} for name, values in HEALTHY],
                  'alert_rule_test': [{'eval_time': '30m', 'alertname': case[0], 'exp_alerts': []} for case in CASES]})
    test_file = tmp_path / 'rules.test.yml'
    test_file.write_text(yaml.safe_dump({'rule_files': [rules.name], 'evaluation_interval': '1m', 'tests': tests}, sort_keys=False))
    result = subprocess.run([tool, 'test', 'rules', str(test_file)], capture_output=True, text=True, check=False, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert 'SUCCESS' in result.stdout + result.stderr


def test_a_broken_rule_is_caught(tmp_path):
    tool = promtool()
    rules, _run = generate(tmp_path, catalog={'types': {'api_failure': {'detection': [
        {'alert': 'Broken', 'expr': 'sum(rate(slurm_exporter_collector_errors_total[5m]) > 0', 'for': '5m'}]}}})
    checked = subprocess.run([tool, 'check', 'rules', str(rules)], capture_output=True, text=True, check=False)
    assert checked.returncode != 0 and 'Broken' in rules.read_text()


def test_bad_definitions_fail_clearly(tmp_path):
    module = 'slurm_exporter.incident_response.detection_rules'
    tasks = [
        {'name': 'unknown type', 'ignore_errors': True,
         module: {'custom_rules': [{'name': 'x', 'trigger': 'up == 0', 'incident_type': 'sabotage'}]}},
        {'name': 'placeholder', 'ignore_errors': True, module: {'custom_rules': [{'name': 'x', 'trigger': 'up{job="${jobb}"} == 0'}]}},
        {'name': 'quote', 'ignore_errors': True, module: {'job': 'a"b'}},
    ]
    run = run_playbook(write_playbook(tmp_path, tasks))
    assert "unknown incident type 'sabotage'" in run.result('unknown type')['msg']
    assert 'custom_rules[0].trigger: unknown or malformed placeholder' in run.result('placeholder')['msg']
    assert 'job: expected a string without quotes' in run.result('quote')['msg']


def test_alertmanager_config_passes_amtool(tmp_path):
    amtool = shutil.which('amtool')
    if not amtool:
        pytest.skip('amtool is not installed (make setup installs prometheus-alertmanager)')
    module = 'slurm_exporter.incident_response.alertmanager_config'
    token = 'am-webhook-token-1234567890'
    tasks = [
        {'name': 'bearer', module: {'bearer_token': token, 'dest': str(tmp_path / 'bearer.yml'),
                                    'security_receiver': {'pagerduty_configs': [{'routing_key': 'security-routing-key-0000000000'}]}}},
        {'name': 'again', module: {'bearer_token': token, 'dest': str(tmp_path / 'bearer.yml'),
                                   'security_receiver': {'pagerduty_configs': [{'routing_key': 'security-routing-key-0000000000'}]}}},
        {'name': 'basic', module: {'basic_auth': {'username': 'alertmanager', 'password': 'pw-0987654321'},
                                   'webhook_url': 'http://127.0.0.1:10341/webhook', 'dest': str(tmp_path / 'basic.yml')}},
        {'name': 'timing', module: {'bearer_token': token, 'dest': str(tmp_path / 'timing.yml'),
                                    'response_timing': {'group_wait': '10s', 'repeat_interval': '4h'}}},
        {'name': 'bad url', 'ignore_errors': True, module: {'webhook_url': 'file:///etc/passwd'}},
        {'name': 'bad timing', 'ignore_errors': True, module: {'response_timing': {'group_interval': '0s'}}},
    ]
    run = run_playbook(write_playbook(tmp_path, tasks, name='am.yml'))
    assert run.rc == 0, run
    assert run.result('bearer')['changed'] and not run.result('again')['changed']
    assert "webhook_url: expected an http(s) URL" in run.result('bad url')['msg']
    assert run.result('bad timing')['msg'] == 'response_timing.group_interval: must be greater than zero'
    timed = yaml.safe_load((tmp_path / 'timing.yml').read_text())['route']['routes'][-1]
    assert (timed['group_wait'], timed['group_interval'], timed['repeat_interval']) == ('10s', '30s', '4h')
    assert run.result('timing')['config']['receivers'][0]['webhook_configs'][0]['url'] == 'http://incident-webhook.incident-response.svc:10341/webhook'
    for name in ('bearer.yml', 'basic.yml', 'timing.yml'):
        checked = subprocess.run([amtool, 'check-config', str(tmp_path / name)], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((tmp_path / 'bearer.yml').read_text())
    security, launcher = config['route']['routes']
    assert security['receiver'] == 'security-team' and security['continue'] is True
    assert 'incident_type=~"security_breach|vulnerability_exploit|malware_detection|compliance_violation"' in security['matchers']
    webhook = [r for r in config['receivers'] if r['name'] == 'incident-response'][0]['webhook_configs'][0]
    assert webhook['send_resolved'] is True and webhook['http_config']['authorization'] == {'type': 'Bearer', 'credentials': token}
    assert launcher['receiver'] == 'incident-response'
    assert oct((tmp_path / 'bearer.yml').stat().st_mode & 0o777) == '0o600'
    for secret in (token, 'security-routing-key-0000000000', 'pw-0987654321'):
        assert secret not in run.stdout and secret not in run.stderr
    routed = subprocess.run([amtool, 'config', 'routes', 'test', '--config.file', str(tmp_path / 'bearer.yml'), '--verify.receivers',
                             'security-team,incident-response', 'component=incident-response', 'incident_type=security_breach'],
                            capture_output=True, text=True, check=False)
    assert routed.returncode == 0, routed.stdout + routed.stderr
