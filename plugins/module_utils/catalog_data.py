# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shipped incident catalog, as data.

Derived from the original framework's incident-types.yaml (11 types, 4 severity
levels) and ../shared/DESIGN.md. It is plain data so that modules can carry it
to any host; every field can be overridden from inventory with the
``incident_catalog`` variable (see docs/catalog.md), which is deep-merged over
this structure and validated by ``catalog.load_catalog``.
"""

from __future__ import annotations

DEFAULT_CATALOG = {
    'version': 1,
    'default_channel': '#incidents',
    'business_hours': {
        # Start of the business day (UTC) used for "next business day" escalation,
        # and the weekday of the weekly review used for low severity.
        'start': '09:00',
        'review_weekday': 'monday',
    },
    'classification': {
        # Type given to an alert that names no catalog type in its incident_type label
        # and matches no rule. None means: refuse the alert with a clear reason.
        'fallback_type': None,
    },
    'categories': {
        'security': {
            'description': 'Threats to confidentiality or integrity of the exporter and its credentials',
            'channel': '#security-incidents',
            # Security incidents never move to monitoring/resolved just because their alerts resolved.
            'auto_resolve': False,
        },
        'operational': {
            'description': 'Availability, performance and data of the exporter service',
            'channel': '#ops-incidents',
            'auto_resolve': True,
        },
        'infrastructure': {
            'description': 'The Kubernetes cluster and resources the exporter runs on',
            'channel': '#ops-incidents',
            'auto_resolve': True,
        },
    },
    'severities': {
        'critical': {
            'priority': 'P1',
            'description': 'Immediate threat to service availability or security',
            'response_time': '15m',
            'escalate_after': '30m',
            'notify': ['on-call engineer', 'security team', 'management'],
            'page': True,
            'mention': '@channel',
            'communication': 'immediate',
        },
        'high': {
            'priority': 'P2',
            'description': 'Significant impact on service or security posture',
            'response_time': '1h',
            'escalate_after': '2h',
            'notify': ['on-call engineer', 'team lead'],
            'page': True,
            'mention': '@oncall',
            'communication': 'within 2 hours',
        },
        'medium': {
            'priority': 'P3',
            'description': 'Moderate impact with workaround available',
            'response_time': '4h',
            'escalate_after': 'next_business_day',
            'notify': ['on-call engineer'],
            'page': False,
            'mention': '',
            'communication': 'within 8 hours',
        },
        'low': {
            'priority': 'P4',
            'description': 'Minor issues with minimal impact',
            'response_time': '24h',
            'escalate_after': 'weekly_review',
            'notify': ['team'],
            'page': False,
            'mention': '',
            'communication': 'next business day',
        },
    },
    'types': {
        'security_breach': {
            'category': 'security',
            'severity': 'critical',
            'response_time': '15m',
            'escalation': 'immediate',
            'description': 'Unauthorized access or data breach detected',
            'indicators': [
                'Unauthorized API access attempts',
                'Anomalous data access patterns',
                'Suspicious container behavior',
                'Privilege escalation attempts',
            ],
            'playbook': 'security_breach',
            'match': [
                {'alertname': ['SecurityIncidentDetected', 'SlurmExporterAuthenticationFailure',
                               'SlurmExporterUnusualAccessPattern', 'SlurmExporterSecurityViolation']},
            ],
        },
        'vulnerability_exploit': {
            'category': 'security',
            'severity': 'critical',
            'response_time': '30m',
            'escalation': 'immediate',
            'description': 'Active exploitation of known vulnerabilities',
            'indicators': ['Exploit signatures in logs', 'Abnormal process execution', 'Unexpected network connections'],
            'playbook': 'vulnerability_exploit',
            'match': [{'alertname': ['VulnerabilityExploitDetected']}],
        },
        'malware_detection': {
            'category': 'security',
            'severity': 'critical',
            'response_time': '15m',
            'escalation': 'immediate',
            'description': 'Malicious software detected in container',
            'indicators': ['Known malware signatures', 'Crypto-mining activity', 'Command and control communication'],
            'playbook': 'malware_detection',
            'match': [{'alertname': ['MalwareDetected']}],
        },
        'compliance_violation': {
            'category': 'security',
            'severity': 'high',
            'response_time': '2h',
            'escalation': 'standard',
            'description': 'Security compliance policy violations',
            'indicators': ['Failed compliance scans', 'Policy violations detected', 'Configuration drift'],
            'playbook': 'compliance_violation',
            'match': [{'alertname': ['ComplianceViolation', 'SlurmExporterConfigurationDrift',
                                     'SlurmExporterCertificateExpiry']}],
        },
        'service_outage': {
            'category': 'operational',
            'severity': 'critical',
            'response_time': '15m',
            'escalation': 'immediate',
            'description': 'Complete service unavailability',
            'indicators': ['All health checks failing', 'No metrics being collected', 'All pods in CrashLoopBackOff'],
            'playbook': 'service_outage',
            'match': [{'alertname': ['ServiceOutageDetected', 'SlurmExporterDown', 'SLURMExporterUnhealthy']}],
        },
        'performance_degradation': {
            'category': 'operational',
            'severity': 'high',
            'response_time': '1h',
            'escalation': 'standard',
            'description': 'Significant performance issues',
            'indicators': ['Response time > 10s', 'Error rate > 5%', 'Memory usage > 90%'],
            'playbook': 'performance_degradation',
            'match': [{'alertname': ['PerformanceDegradation', 'SlurmExporterSLABreach', 'SlurmExporterResponseTimeSLO',
                                     'SlurmExporterErrorRateSLO', 'SLURMExporterSlowCollection',
                                     'SLURMExporterCriticalSlowCollection', 'SLURMExporterHighErrorRate',
                                     'SLURMExporterFrequentSLAViolations', 'SLURMExporterHighTimeoutRate',
                                     'SlurmExporterQueueBuildup']}],
        },
        'data_loss': {
            'category': 'operational',
            'severity': 'high',
            'response_time': '30m',
            'escalation': 'immediate',
            'description': 'Loss of metrics or configuration data',
            'indicators': ['Missing metric data', 'Corrupted storage', 'Failed backups'],
            'playbook': 'data_loss',
            'match': [{'alertname': ['BackupFailure', 'SlurmExporterStaleData', 'SlurmExporterMetricDrop',
                                     'SLURMExporterStaleCollection']}],
        },
        'api_failure': {
            'category': 'operational',
            'severity': 'medium',
            'response_time': '2h',
            'escalation': 'standard',
            'description': 'SLURM API connectivity issues',
            'indicators': ['API timeout errors', 'Authentication failures', 'Network connectivity issues'],
            'playbook': 'api_failure',
            'match': [{'alertname': ['SlurmAPIConnectionFailed', 'SLURMExporterPersistentErrors',
                                     'SlurmExporterServiceDiscoveryFailure']}],
        },
        'cluster_failure': {
            'category': 'infrastructure',
            'severity': 'critical',
            'response_time': '30m',
            'escalation': 'immediate',
            'description': 'Kubernetes cluster issues affecting service',
            'indicators': ['Node failures', 'Control plane issues', 'Storage unavailability'],
            'playbook': 'cluster_failure',
            'match': [{'alertname': ['SlurmClusterUnhealthy', 'SlurmNodesDown', 'SlurmExporterPodPendingTooLong']}],
        },
        'resource_exhaustion': {
            'category': 'infrastructure',
            'severity': 'high',
            'response_time': '1h',
            'escalation': 'standard',
            'description': 'System resources exhausted',
            'indicators': ['OOMKilled pods', 'CPU throttling', 'Disk space exhaustion'],
            'playbook': 'resource_exhaustion',
            'match': [{'alertname': ['ResourceExhaustion', 'SlurmExporterHighMemoryUsage', 'SlurmExporterHighCPUUsage',
                                     'SLURMExporterHighMemoryUsage', 'SLURMExporterGoroutineLeak',
                                     'SLURMExporterProcessMemoryHigh', 'SLURMExporterHighCPU',
                                     'SLURMExporterFileDescriptorLeak', 'SlurmExporterHPAMaxReplicasReached',
                                     'SlurmExporterResourceTrendWarning', 'SlurmExporterCardinalityExplosion']}],
        },
        'network_partition': {
            'category': 'infrastructure',
            'severity': 'high',
            'response_time': '1h',
            'escalation': 'standard',
            'description': 'Network segmentation or isolation',
            'indicators': ['Split-brain scenarios', 'Network policy conflicts', 'DNS resolution failures'],
            'playbook': 'network_partition',
            'match': [{'alertname': ['NetworkPartitionDetected']}],
        },
    },
}
