# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/controller_config.yml (awx.awx modules) against the fake AWX API, and execution-environment.yml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT, run_playbook
from tests.fakes.awx_controller import FakeController

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'controller_config.yml')
TOKEN = 'awx-test-token-5e2a'
K8S_TOKEN = 'k8s-bearer-0b7d61e2'
VAULT_PASSWORD = 'vault-pass-93c4aa'
TYPES = ['security_breach', 'vulnerability_exploit', 'malware_detection', 'compliance_violation', 'service_outage',
         'performance_degradation', 'data_loss', 'api_failure', 'cluster_failure', 'resource_exhaustion', 'network_partition',
         'disaster_recovery', 'respond']


@pytest.fixture
def controller():
    fake = FakeController(TOKEN).start()
    try:
        yield fake
    finally:
        fake.stop()


def variables(controller, **extra):
    return dict({'controller_host': controller.url, 'controller_oauthtoken': TOKEN, 'controller_kubernetes_bearer_token': K8S_TOKEN,
                 'controller_vault_password': VAULT_PASSWORD, 'controller_kubernetes_host': 'https://10.0.0.1:6443'}, **extra)


def changed_tasks(run):
    names = []
    for play in run.json['plays']:
        for task in play['tasks']:
            if any(host.get('changed') for host in task['hosts'].values()):
                names.append(task['task']['name'])
    return names


def test_configures_the_controller_then_changes_nothing(controller):
    first = run_playbook(PLAYBOOK, extra_vars=variables(controller))
    assert first.rc == 0, first
    for secret in (K8S_TOKEN, VAULT_PASSWORD, TOKEN):
        assert secret not in first.stdout + first.stderr

    organization = controller.one('organizations', 'slurm-exporter')
    project = controller.one('projects', 'slurm-exporter incident response')
    assert project['organization'] == organization['id'] and project['scm_type'] == 'git'
    assert project['scm_url'] == 'https://github.com/slurm-exporter/incident_response.git' and project['scm_branch'] == 'main'
    inventory = controller.one('inventories', 'slurm-exporter incident response')
    assert yaml.safe_load(inventory['variables']) == {'incident_store': '/var/incident-response', 'incident_namespace': 'slurm-exporter'}

    kubernetes = controller.one('credentials', 'slurm-exporter kubernetes')
    vault = controller.one('credentials', 'slurm-exporter vault')
    types = {t['id']: t['kind'] for t in controller.find('credential_types')}
    assert (types[kubernetes['credential_type']], types[vault['credential_type']]) == ('kubernetes', 'vault')
    secrets = controller.secret_values()
    assert secrets[('credentials', kubernetes['id'])]['bearer_token'] == K8S_TOKEN
    assert secrets[('credentials', kubernetes['id'])]['host'] == 'https://10.0.0.1:6443'
    assert secrets[('credentials', vault['id'])]['vault_password'] == VAULT_PASSWORD

    notification = controller.one('notification_templates', 'slurm-exporter response failed')
    assert notification['notification_type'] == 'webhook'

    templates = {t['name']: t for t in controller.find('job_templates')}
    expected = {'slurm-exporter %s' % t.replace('_', ' '): 'playbooks/%s.yml' % t for t in TYPES}
    expected['slurm-exporter escalate'] = 'playbooks/escalate.yml'
    assert {name: t['playbook'] for name, t in templates.items()} == expected
    for name, template in templates.items():
        assert template['project'] == project['id'] and template['inventory'] == inventory['id']
        assert template['ask_variables_on_launch'] is (name != 'slurm-exporter escalate')
        assert controller.associated('job_templates', template['id'], 'credentials') == sorted([kubernetes['id'], vault['id']])
        assert controller.associated('job_templates', template['id'], 'notification_templates_error') == [notification['id']]

    assert controller.find('credential_types', name='slurm-exporter incident store') == []
    assert controller.find('credentials', name='slurm-exporter incident store') == []

    schedule = controller.one('schedules', 'slurm-exporter escalation')
    assert schedule['unified_job_template'] == templates['slurm-exporter escalate']['id']
    assert schedule['rrule'] == 'DTSTART;TZID=UTC:20260101T000000 RRULE:FREQ=MINUTELY;INTERVAL=5' and schedule['enabled'] is True
    assert all(r['authorization'] == 'Bearer ' + TOKEN for r in controller.requests)

    writes = len(controller.writes())
    second = run_playbook(PLAYBOOK, extra_vars=variables(controller))
    assert second.rc == 0, second
    assert second.json['stats']['localhost']['changed'] == 0, changed_tasks(second)
    assert len(controller.writes()) == writes


def test_check_mode_sends_no_write(controller):
    assert run_playbook(PLAYBOOK, extra_vars=variables(controller)).rc == 0
    writes = len(controller.writes())
    changed = variables(controller, controller_escalation_rrule='DTSTART;TZID=UTC:20260101T000000 RRULE:FREQ=MINUTELY;INTERVAL=10',
                        controller_project_scm_branch='stable')
    check = run_playbook(PLAYBOOK, extra_vars=changed, check=True)
    assert check.rc == 0, check
    assert changed_tasks(check) == ['Project (this collection)', 'Escalation schedule']
    assert len(controller.writes()) == writes
    assert controller.one('schedules', 'slurm-exporter escalation')['rrule'].endswith('INTERVAL=5')

    applied = run_playbook(PLAYBOOK, extra_vars=changed)
    assert applied.rc == 0, applied
    assert changed_tasks(applied) == ['Project (this collection)', 'Escalation schedule']
    assert controller.one('schedules', 'slurm-exporter escalation')['rrule'].endswith('INTERVAL=10')
    assert controller.one('projects', 'slurm-exporter incident response')['scm_branch'] == 'stable'
    assert [r['method'] for r in controller.writes()[writes:]] == ['PATCH', 'PATCH']


STORE_INJECTORS = {'env': {'INCIDENT_RESPONSE_STORE_BACKEND': 'kubernetes', 'INCIDENT_RESPONSE_STORE_NAMESPACE': '{{ namespace }}'}}


def test_kubernetes_store_credential_on_every_job_template(controller):
    """controller_store_backend=kubernetes: a credential type whose injectors select the cluster store, a credential of it
    next to the Kubernetes one on every job template (the escalation schedule's included); idempotent; check mode
    plans a new namespace and writes nothing."""
    store = variables(controller, controller_store_backend='kubernetes', controller_store_namespace='ir-store')
    first = run_playbook(PLAYBOOK, extra_vars=store)
    assert first.rc == 0, first

    store_type = controller.one('credential_types', 'slurm-exporter incident store')
    assert store_type['kind'] == 'cloud' and store_type['managed'] is False
    assert store_type['injectors'] == STORE_INJECTORS
    assert store_type['inputs'] == {'fields': [{'id': 'namespace', 'label': 'Namespace of the Incident objects', 'type': 'string'}],
                                    'required': ['namespace']}
    credential = controller.one('credentials', 'slurm-exporter incident store')
    assert credential['credential_type'] == store_type['id'] and credential['inputs'] == {'namespace': 'ir-store'}
    assert credential['organization'] == controller.one('organizations', 'slurm-exporter')['id']
    kubernetes = controller.one('credentials', 'slurm-exporter kubernetes')
    vault = controller.one('credentials', 'slurm-exporter vault')
    templates = controller.find('job_templates')
    assert len(templates) == len(TYPES) + 1
    for template in templates:
        assert controller.associated('job_templates', template['id'], 'credentials') == sorted([kubernetes['id'], vault['id'], credential['id']])
    schedule = controller.one('schedules', 'slurm-exporter escalation')
    assert schedule['unified_job_template'] == controller.one('job_templates', 'slurm-exporter escalate')['id']

    writes = len(controller.writes())
    second = run_playbook(PLAYBOOK, extra_vars=store)
    assert second.rc == 0, second
    assert second.json['stats']['localhost']['changed'] == 0, changed_tasks(second)
    assert len(controller.writes()) == writes

    check = run_playbook(PLAYBOOK, extra_vars=dict(store, controller_store_namespace='ir-other'), check=True)
    assert check.rc == 0, check
    assert changed_tasks(check) == ['Incident store credential']
    assert len(controller.writes()) == writes
    assert controller.one('credentials', 'slurm-exporter incident store')['inputs'] == {'namespace': 'ir-store'}


def test_bad_store_settings_fail_before_any_request(controller):
    run = run_playbook(PLAYBOOK, extra_vars=variables(controller, controller_store_backend='etcd'))
    assert run.rc != 0
    assert 'controller_store_backend' in run.result('Check the incident store settings')['msg']
    assert controller.requests == []
    run = run_playbook(PLAYBOOK, extra_vars=variables(controller, controller_store_backend='kubernetes', controller_store_namespace='Not_A_NS'))
    assert run.rc != 0 and controller.requests == []


def test_wrong_token_writes_nothing(controller):
    run = run_playbook(PLAYBOOK, extra_vars=variables(controller, controller_oauthtoken='not-the-token'))
    assert run.rc != 0
    assert 'HTTP 401' in run.result('Organization')['msg']
    assert controller.writes() == [] and controller.find('organizations') == []


def test_missing_secrets_fail_before_any_request(controller):
    values = variables(controller)
    del values['controller_vault_password']
    run = run_playbook(PLAYBOOK, extra_vars=values)
    assert run.rc != 0
    assert 'controller_vault_password' in run.result('Check the variables that have no default')['msg']
    assert controller.requests == []


def test_unknown_objects_are_404(controller):
    from tests.integration.test_eda import call  # pylint: disable=import-outside-toplevel

    assert call(controller.url + '/api/v2/job_templates/999/', token=TOKEN)[0] == 404
    assert call(controller.url + '/api/v2/no_such_things/', token=TOKEN)[0] == 404
    assert call(controller.url + '/api/v2/organizations/', token='other')[0] == 401
    status, body = call(controller.url + '/api/v2/organizations/?name=none', token=TOKEN)
    assert (status, json.loads(body)['count']) == (200, 0)


def test_job_template_playbooks_exist():
    with open(PLAYBOOK, encoding='utf-8') as handle:
        play = yaml.safe_load(handle)[0]
    names = play['vars']['_controller_incident_playbooks_default'] + ['escalate']
    assert names[:-1] == TYPES
    missing = [name for name in names if not os.path.exists(os.path.join(REPO_ROOT, 'playbooks', name + '.yml'))]
    assert missing == []


# -- execution environment

def test_execution_environment_definition():
    with open(os.path.join(REPO_ROOT, 'execution-environment.yml'), encoding='utf-8') as handle:
        definition = yaml.safe_load(handle)
    assert definition['version'] == 3
    top_level = {'version', 'build_arg_defaults', 'dependencies', 'images', 'additional_build_files', 'additional_build_steps', 'options'}
    assert set(definition) <= top_level
    assert definition['images']['base_image']['name']
    dependencies = definition['dependencies']
    assert set(dependencies) <= {'python', 'system', 'galaxy', 'ansible_core', 'ansible_runner', 'python_interpreter', 'exclude'}
    for key in ('python', 'system'):
        path = dependencies[key]
        assert isinstance(path, str) and os.path.isfile(os.path.join(REPO_ROOT, path)), path
    assert dependencies['python'] == 'requirements.txt' and dependencies['system'] == 'bindep.txt'
    assert dependencies['galaxy'] == 'requirements.yml'
    with open(os.path.join(REPO_ROOT, 'requirements.yml'), encoding='utf-8') as handle:
        collections = {c['name'] for c in yaml.safe_load(handle)['collections']}
    assert collections >= {'kubernetes.core', 'community.general', 'community.crypto', 'awx.awx'}
    assert 'ansible-core' in dependencies['ansible_core']['package_pip']
    assert 'ansible-runner' in dependencies['ansible_runner']['package_pip']


def test_ansible_builder_create(tmp_path):
    """The build context holds the dependencies' files and this collection's tarball, and the galaxy stage's install
    of that tarball works (run here, offline, into an empty path)."""
    builder = shutil.which('ansible-builder')
    if not builder:
        pytest.skip('ansible-builder is not installed (requirements-test.txt)')
    # the EE definition and its files, with the tarball where the docs build it (.cache/ee), outside the checkout
    project = tmp_path / 'project'
    project.mkdir()
    for name in ('execution-environment.yml', 'requirements.txt', 'bindep.txt', 'requirements.yml'):
        shutil.copy(os.path.join(REPO_ROOT, name), str(project / name))
    built = subprocess.run(['ansible-galaxy', 'collection', 'build', '--force', '--output-path', str(project / '.cache' / 'ee'), REPO_ROOT],
                           capture_output=True, text=True, cwd=str(tmp_path), check=False, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    context = tmp_path / 'context'
    process = subprocess.run([builder, 'create', '-f', str(project / 'execution-environment.yml'), '-c', str(context),
                              '--output-filename', 'Containerfile'], capture_output=True, text=True, cwd=str(project), check=False,
                             timeout=120)
    assert process.returncode == 0, process.stdout + process.stderr
    assert 'No matches' not in process.stdout + process.stderr
    containerfile = (context / 'Containerfile').read_text()
    assert 'FROM ' in containerfile
    build = context / '_build'
    assert (build / 'requirements.txt').read_text() == open(os.path.join(REPO_ROOT, 'requirements.txt'), encoding='utf-8').read()
    assert (build / 'bindep.txt').read_text() == open(os.path.join(REPO_ROOT, 'bindep.txt'), encoding='utf-8').read()
    galaxy = yaml.safe_load((build / 'requirements.yml').read_text())
    assert {c['name'] for c in galaxy['collections']} == {'kubernetes.core', 'community.general', 'community.crypto', 'awx.awx'}
    assert 'git' not in containerfile.lower().split('ansible-galaxy collection install')[-1].split('\n')[0]
    [tarball] = [path.name for path in (build / 'collections').iterdir()]
    install_step = next(line for line in containerfile.splitlines() if '--no-deps' in line)
    assert install_step.startswith('RUN ansible-galaxy collection install --offline') and install_step.endswith('collections/' + tarball)
    # the galaxy stage runs in /build (the context's _build): the same command, here
    argv = install_step[len('RUN '):].replace('/usr/share/ansible/collections', str(tmp_path / 'installed')).split()
    installed = subprocess.run(argv, capture_output=True, text=True, cwd=str(build), check=False, timeout=300,
                               env=dict(os.environ, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
                                        ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'installed')))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (tmp_path / 'installed' / 'ansible_collections' / 'slurm_exporter' / 'incident_response' / 'MANIFEST.json').is_file()
