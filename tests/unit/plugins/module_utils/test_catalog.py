# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import CatalogError, ValidationError

UTC = datetime.timezone.utc

# The catalog table of ../shared/DESIGN.md: type -> (category, severity, response time in minutes)
DESIGN_TABLE = {
    'security_breach': ('security', 'critical', 15),
    'vulnerability_exploit': ('security', 'critical', 30),
    'malware_detection': ('security', 'critical', 15),
    'compliance_violation': ('security', 'high', 120),
    'service_outage': ('operational', 'critical', 15),
    'performance_degradation': ('operational', 'high', 60),
    'data_loss': ('operational', 'high', 30),
    'api_failure': ('operational', 'medium', 120),
    'cluster_failure': ('infrastructure', 'critical', 30),
    'resource_exhaustion': ('infrastructure', 'high', 60),
    'network_partition': ('infrastructure', 'high', 60),
}


def test_shipped_catalog_matches_design():
    catalog = load_catalog()
    assert set(catalog.types) == set(DESIGN_TABLE)
    for name, (category, severity, minutes) in DESIGN_TABLE.items():
        profile = catalog.profile(name)
        assert (profile['category'], profile['severity'], profile['response_time_s']) == (category, severity, minutes * 60)
    assert {name: level['priority'] for name, level in catalog.severities.items()} == {
        'critical': 'P1', 'high': 'P2', 'medium': 'P3', 'low': 'P4'}


def test_overrides_are_deep_merged():
    catalog = load_catalog({'types': {'api_failure': {'severity': 'high'}}, 'categories': {'security': {'channel': '#sec'}}})
    assert catalog.profile('api_failure')['severity'] == 'high'
    assert catalog.profile('api_failure')['response_time_s'] == 7200  # untouched field kept
    assert catalog.profile('security_breach')['channel'] == '#sec'


def test_custom_type_can_be_added():
    custom = {'category': 'operational', 'severity': 'low', 'response_time': '1d', 'escalation': 'standard',
              'description': 'Dashboard is stale', 'indicators': [], 'playbook': 'service_outage',
              'match': [{'alertname': 'DashboardStale'}]}
    catalog = load_catalog({'types': {'dashboard_stale': custom}})
    assert catalog.classify({'labels': {'alertname': 'DashboardStale'}})[0] == 'dashboard_stale'


@pytest.mark.parametrize('override, message', [
    ({'types': {'service_outage': {'severity': 'urgent'}}}, 'incident_catalog.types.service_outage.severity: unknown severity'),
    ({'types': {'service_outage': {'response_time': 'soon'}}}, 'incident_catalog.types.service_outage.response_time'),
    ({'types': {'service_outage': {'colour': 'red'}}}, 'incident_catalog.types.service_outage.colour: unknown field'),
    ({'types': {'new_type': {'category': 'security'}}}, 'incident_catalog.types.new_type.severity: required field is missing'),
    ({'types': {'../evil': {}}}, 'type names are lower-case identifiers'),
    ({'severities': {'high': {'escalate_after': 'eventually'}}}, 'incident_catalog.severities.high.escalate_after'),
    ({'severities': {'high': {'priority': 'urgent'}}}, 'incident_catalog.severities.high.priority'),
    ({'classification': {'fallback_type': 'nope'}}, 'incident_catalog.classification.fallback_type: unknown type'),
    ({'business_hours': {'start': '9am'}}, 'incident_catalog.business_hours.start'),
    ({'types': {'api_failure': {'match': [{'alertname': 5}]}}}, 'incident_catalog.types.api_failure.match[0].alertname'),
    ({'types': {'api_failure': {'indicators': 'x'}}}, 'incident_catalog.types.api_failure.indicators: expected list'),
])
def test_bad_overrides_name_the_field(override, message):
    with pytest.raises(CatalogError) as info:
        load_catalog(override)
    assert message in str(info.value)


def test_overrides_must_be_a_mapping():
    with pytest.raises(CatalogError, match='expected a mapping'):
        load_catalog(['x'])


def test_classification_order():
    catalog = load_catalog()
    # 1. incident_type label naming a catalog type wins over the alert name
    assert catalog.classify({'labels': {'alertname': 'SlurmExporterDown', 'incident_type': 'data_loss'}})[0] == 'data_loss'
    # 2. an incident_type label that is not a catalog type falls through to the rules
    assert catalog.classify({'labels': {'alertname': 'SlurmExporterDown', 'incident_type': '../../etc'}})[0] == 'service_outage'
    # 3. label rules take precedence over plain alert-name lists
    catalog = load_catalog({'types': {'malware_detection': {'match': [{'alertname': 'SlurmExporterDown', 'labels': {'source': 'falco'}}]}}})
    assert catalog.classify({'labels': {'alertname': 'SlurmExporterDown', 'source': 'falco'}})[0] == 'malware_detection'
    assert catalog.classify({'labels': {'alertname': 'SlurmExporterDown'}})[0] == 'service_outage'


def test_unclassifiable_alert_without_fallback_is_refused_clearly():
    with pytest.raises(ValidationError, match='cannot classify'):
        load_catalog().classify({'labels': {'alertname': 'Watchdog'}})
    assert load_catalog({'classification': {'fallback_type': 'api_failure'}}).classify({'labels': {'alertname': 'Watchdog'}})[0] == 'api_failure'


def test_escalation_due_policies():
    catalog = load_catalog()
    friday = datetime.datetime(2026, 1, 30, 17, 0, tzinfo=UTC)  # a Friday
    assert catalog.escalation_due('critical', friday) == friday + datetime.timedelta(minutes=30)
    assert catalog.escalation_due('high', friday) == friday + datetime.timedelta(hours=2)
    assert catalog.escalation_due('medium', friday) == datetime.datetime(2026, 2, 2, 9, 0, tzinfo=UTC)  # Monday 09:00
    tuesday = datetime.datetime(2026, 2, 3, 8, 0, tzinfo=UTC)
    assert catalog.escalation_due('medium', tuesday) == datetime.datetime(2026, 2, 4, 9, 0, tzinfo=UTC)
    assert catalog.escalation_due('low', tuesday) == datetime.datetime(2026, 2, 9, 9, 0, tzinfo=UTC)  # next Monday
    monday_early = datetime.datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
    assert catalog.escalation_due('low', monday_early) == datetime.datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
