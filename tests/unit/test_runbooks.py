# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every alert the detection rules emit links to a runbook that exists and describes that alert."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import detection
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError
from tests.conftest import REPO_ROOT

RUNBOOKS = os.path.join(REPO_ROOT, 'docs', 'runbooks')
SECTIONS = ('## What fired', '## What the automation does', '## What to check next')


def production_rules():
    with open(os.path.join(REPO_ROOT, 'inventories', 'production', 'group_vars', 'all', 'response.yml'), encoding='utf-8') as handle:
        settings = yaml.safe_load(handle)
    return settings['incident_catalog'], settings['incident_response_rules']


def alerts(groups):
    return [rule for group in groups for rule in group['rules']]


def page(url, base=detection.DEFAULT_RUNBOOK_BASE):
    assert url.startswith(base.rstrip('/') + '/'), url
    return os.path.join(RUNBOOKS, url[len(base.rstrip('/')) + 1:])


def test_every_runbook_url_resolves_to_a_page():
    catalog, custom = production_rules()
    rules = alerts(detection.build_groups(load_catalog(catalog), custom))
    assert len(rules) == 22  # 20 shipped alerts and the production inventory's 2 custom response rules
    missing = [rule['annotations']['runbook_url'] for rule in rules if not os.path.isfile(page(rule['annotations']['runbook_url']))]
    assert missing == []
    # the default base is where the collection's repository keeps docs/runbooks
    with open(os.path.join(REPO_ROOT, 'galaxy.yml'), encoding='utf-8') as handle:
        repository = yaml.safe_load(handle)['repository']
    assert detection.DEFAULT_RUNBOOK_BASE == repository + '/blob/main/docs/runbooks'


def test_each_alert_has_its_own_page_with_its_expression():
    catalog = load_catalog()
    for type_name, info in catalog.types.items():
        for rule in info['detection']:
            path = os.path.join(RUNBOOKS, rule['alert'] + '.md')
            with open(path, encoding='utf-8') as handle:
                text = handle.read()
            assert text.startswith('# %s\n' % rule['alert'])
            assert all(section in text for section in SECTIONS), path
            assert '`%s`' % type_name in text
            # the page shows the expression the alert really has (with the default job, namespace and deployment)
            assert detection._substitute(rule['expr'], detection.DEFAULT_OPTIONS, rule['alert']) in text, path  # pylint: disable=protected-access


def test_every_page_is_an_alert_or_the_custom_rule_page():
    shipped = {rule['alert'] for info in load_catalog().types.values() for rule in info['detection']}
    pages = {name[:-3] for name in os.listdir(RUNBOOKS) if name.endswith('.md')}
    assert pages == shipped | {detection.CUSTOM_RULE_RUNBOOK, 'README'}
    with open(os.path.join(RUNBOOKS, 'README.md'), encoding='utf-8') as handle:
        index = handle.read()
    assert all('(%s.md)' % alert in index for alert in shipped)
    with open(os.path.join(RUNBOOKS, detection.CUSTOM_RULE_RUNBOOK + '.md'), encoding='utf-8') as handle:
        text = handle.read()
    assert all(section in text for section in SECTIONS)


def test_the_base_url_is_configurable_and_rules_may_name_their_page():
    catalog = {'types': {'api_failure': {'detection': [
        {'alert': 'SlurmExporterAPIErrors', 'expr': 'vector(1)', 'runbook_url': 'https://wiki.example.org/runbooks/api-errors'}]}}}
    custom = [{'name': 'exporter-memory-high', 'trigger': 'vector(1)'},
              {'name': 'exporter-auth', 'trigger': 'vector(1)', 'runbook_url': 'https://wiki.example.org/auth'}]
    rules = {rule['alert']: rule['annotations']['runbook_url']
             for rule in alerts(detection.build_groups(load_catalog(catalog), custom, runbook_base='https://wiki.example.org/sre/'))}
    assert rules['SlurmExporterDown'] == 'https://wiki.example.org/sre/SlurmExporterDown.md'
    assert rules['SlurmExporterAPIErrors'] == 'https://wiki.example.org/runbooks/api-errors'
    assert rules['IncidentResponseCustomExporterMemoryHigh'] == 'https://wiki.example.org/sre/custom-response-rule.md'
    assert rules['IncidentResponseCustomExporterAuth'] == 'https://wiki.example.org/auth'
    assert all(re.match(r'^https://wiki\.example\.org/', url) for url in rules.values())
    with pytest.raises(IncidentResponseError, match='runbook_base_url'):
        detection.build_groups(load_catalog(), runbook_base='')
    with pytest.raises(IncidentResponseError, match='runbook_url'):
        load_catalog({'types': {'api_failure': {'detection': [{'alert': 'X', 'expr': 'vector(1)', 'runbook_url': ''}]}}})


def test_the_module_documents_the_base_url():
    with open(os.path.join(REPO_ROOT, 'plugins', 'modules', 'detection_rules.py'), encoding='utf-8') as handle:
        source = handle.read()
    doc = yaml.safe_load(re.search(r"DOCUMENTATION = r'''(.*?)'''", source, re.S).group(1))
    option = doc['options']['runbook_base_url']
    assert option['default'] == detection.DEFAULT_RUNBOOK_BASE
    assert '<runbook_base_url>/<alert>.md' in ' '.join(option['description'])
    assert 'runbook_url' in doc['options']['custom_rules']['suboptions']


def test_sample_payload_is_the_alert_of_the_detection_rule():
    payload = detection.sample_payload(load_catalog(), 'security_breach', '2030-01-02T03:04:05.000Z')
    [alert] = payload['alerts']
    assert alert['labels'] == {'alertname': 'SlurmExporterAuthenticationFailures', 'component': 'incident-response',
                               'incident_type': 'security_breach', 'severity': 'critical'}
    assert alert['startsAt'] == '2030-01-02T03:04:05.000Z' and alert['status'] == 'firing' and payload['version'] == '4'
    assert os.path.isfile(page(alert['annotations']['runbook_url']))
    # Alertmanager's fingerprint: FNV-1a over the sorted labels; the empty set is the FNV offset basis
    assert detection.alert_fingerprint({}) == 'cbf29ce484222325'
    assert alert['fingerprint'] == detection.alert_fingerprint(alert['labels'])
    assert detection.alert_fingerprint({'a': 'b'}) != detection.alert_fingerprint({'a': 'c'})
    with pytest.raises(IncidentResponseError, match='unknown incident type'):
        detection.sample_payload(load_catalog(), 'nonsense', '2030-01-02T03:04:05Z')
