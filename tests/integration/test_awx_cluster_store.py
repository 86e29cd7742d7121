# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An incident opened by the launcher is continued by an AWX job, through the kubernetes incident store (issue #18).

playbooks/controller_config.yml configures the fake controller (tests/fakes/awx_controller.py) with
``controller_store_backend: kubernetes``. The launcher, a real process with ``backend: awx``, first response and the
cluster store of the emulated API server, opens a security incident in-process and isolates the pods, then launches the
``respond`` job template on the fake AWX (tests/fakes/awx.py). That job is a real ansible-playbook run whose environment
is exactly what the template's credentials inject, as AWX computes it: the incident store type's injectors rendered
with its credential's inputs, and the Kubernetes credential's K8S_AUTH_* (nothing else: no kubeconfig, no store
setting from the test's environment). A wrong injector leaves the job on another store, and the test fails.
"""

from __future__ import annotations

import json
import os

import jinja2
import jinja2.sandbox
import pytest
import yaml

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import kubestore
from tests.alerts import payload, security_alert
from tests.conftest import REPO_ROOT, run_playbook, write_playbook
from tests.fakes.awx import FakeAwx
from tests.fakes.awx_controller import FakeController
from tests.launcher_process import base_config, records, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONTROLLER_CONFIG = os.path.join(REPO_ROOT, 'playbooks', 'controller_config.yml')
NS = 'ir-awx'  # not the default namespace: a job that did not get it from the credential would miss the incident
CONTROLLER_TOKEN = 'awx-controller-token-61c0'
INCIDENT = 'slurm_exporter.incident_response.incident'
JOB_ACTOR = 'awx-job'


def job_environment(controller, template_id):
    """The environment AWX gives a job of ``template_id``: each associated credential's injection.

    The managed Kubernetes bearer token type as AWX's ``kubernetes_bearer_token`` injector does it; a custom type by
    rendering its ``env`` injectors (sandboxed Jinja2, undefined names are errors) with the credential's inputs."""
    environment = {}
    secrets = controller.secret_values()
    types = {item['id']: item for item in controller.find('credential_types')}
    for credential_id in controller.associated('job_templates', template_id, 'credentials'):
        credential = controller.find('credentials', id=credential_id)[0]
        credential_type = types[credential['credential_type']]
        inputs = secrets[('credentials', credential_id)]
        if credential_type['kind'] == 'kubernetes':
            assert not (inputs.get('verify_ssl') and inputs.get('ssl_ca_cert')), 'the emulator serves plain HTTP'
            environment.update({'K8S_AUTH_HOST': inputs['host'], 'K8S_AUTH_API_KEY': inputs['bearer_token'], 'K8S_AUTH_VERIFY_SSL': 'False'})
        elif credential_type['kind'] == 'vault':
            continue  # a vault password file for ansible-playbook, no environment
        else:
            assert credential_type['managed'] is False and set(credential_type['injectors']) == {'env'}, credential_type
            sandbox = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
            for name, template in credential_type['injectors']['env'].items():
                environment[name] = sandbox.from_string(template).render(**inputs)
    return environment


@pytest.fixture
def controller():
    fake = FakeController(CONTROLLER_TOKEN).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def cluster_store(kube):
    """The emulated cluster with the Incident CRD and the store's namespace (what the deploy role installs)."""
    with open(os.path.join(REPO_ROOT, 'roles', 'deploy', 'files', 'incidents.crd.yaml'), encoding='utf-8') as handle:
        kube.create(yaml.safe_load(handle))
    kube.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
    return kube


def test_an_incident_opened_by_the_launcher_is_continued_by_an_awx_job(tmp_path, monkeypatch, cluster_store, controller, launchers):
    kube = cluster_store
    for name in list(os.environ):
        if name.startswith(('K8S_AUTH_', 'INCIDENT_RESPONSE_STORE')):
            monkeypatch.delenv(name)

    # AWX as code, with the kubernetes store; the Kubernetes credential is the emulator's API server and token
    configured = run_playbook(CONTROLLER_CONFIG, extra_vars={
        'controller_host': controller.url, 'controller_oauthtoken': CONTROLLER_TOKEN, 'controller_vault_password': 'vault-pass-1f',
        'controller_kubernetes_host': kube.url, 'controller_kubernetes_bearer_token': kube.token,
        'controller_kubernetes_verify_ssl': False, 'controller_store_backend': 'kubernetes', 'controller_store_namespace': NS})
    assert configured.rc == 0, configured
    respond = controller.one('job_templates', 'slurm-exporter respond')
    job_env = job_environment(controller, respond['id'])
    assert job_env == {'INCIDENT_RESPONSE_STORE_BACKEND': 'kubernetes', 'INCIDENT_RESPONSE_STORE_NAMESPACE': NS,
                       'K8S_AUTH_HOST': kube.url, 'K8S_AUTH_API_KEY': kube.token, 'K8S_AUTH_VERIFY_SSL': 'False'}

    # The job template's playbook, as far as this test needs it: the alert decoded as data (roles/response/tasks/open.yml),
    # the incident found by the alert's fingerprint, acknowledged. No store option: the job's environment decides.
    job_playbook = write_playbook(tmp_path, [
        {'name': 'Continue the incident of the alert', INCIDENT: {'alerts': '{{ alertmanager_payload.alerts }}', 'actor': JOB_ACTOR},
         'register': 'continued'},
        {'name': 'Acknowledge it', INCIDENT: {'state': 'acknowledge', 'id': '{{ continued.id }}', 'actor': JOB_ACTOR}},
    ], play_vars={'alertmanager_payload': '{{ alert_payload_b64 | ansible.builtin.b64decode | ansible.builtin.from_json }}'},
        name='respond-job.yml')
    jobs = []

    def job(extra_vars):
        run = run_playbook(job_playbook, extra_vars=extra_vars, env=job_env)
        jobs.append(run)
        return 'successful' if run.rc == 0 else 'failed'

    awx = FakeAwx(polls=2)
    try:
        awx.add_template(respond['id'], ask_variables_on_launch=respond['ask_variables_on_launch'], outcome=job)
        config = base_config(tmp_path, backend='awx', incident_namespace='slurm-exporter',
                             runner={'playbook': 'slurm_exporter.incident_response.respond', 'inventory': None},
                             store={'backend': 'kubernetes', 'namespace': NS, 'kubeconfig': kube.kubeconfig},
                             first_response={'enabled': True, 'kubeconfig': kube.kubeconfig},
                             awx={'url': awx.url, 'job_template_id': respond['id'], 'poll_interval': 0.2, 'request_timeout': 300,
                                  'max_retries': 0})
        launcher = launchers(tmp_path, config, env={'INCIDENT_LAUNCHER_AWX_TOKEN': awx.token}).start()
        assert launcher.post(payload(security_alert('5ec0a1b2c3d4e5f6'))).status_code == 200
        wait_for(lambda: launcher.spool('done') or launcher.spool('failed'), 300, 'the AWX job')
        assert launcher.spool('done'), launcher.log()
        [launch] = awx.launches()
        assert set(launch['body']['extra_vars']) == {'alert_payload_b64'}
    finally:
        awx.stop()

    [run] = jobs
    assert run.rc == 0, run
    (obj,) = kube.list(kubestore.API_VERSION, 'Incident', NS)
    record = obj['spec']
    continued = run.result('Continue the incident of the alert')
    assert continued['id'] == record['id'] and continued['attached'] and not continued['created']
    # the launcher's open and first response, then the job's acknowledgement, in one incident
    assert record['type'] == 'security_breach' and [alert['fingerprint'] for alert in record['alerts']] == ['5ec0a1b2c3d4e5f6']
    assert [(action['name'], action['result']) for action in record['actions']] == [('isolate_pods', 'success')]
    assert record['acknowledged_by'] == JOB_ACTOR and record['acknowledged_at']
    actors = [entry['actor'] for entry in obj['audit']['entries']]
    assert actors[0] == 'incident-launcher' and actors[-1] == JOB_ACTOR and set(actors) == {'incident-launcher', JOB_ACTOR}, actors
    assert [entry['operation'] for entry in obj['audit']['entries'] if entry['actor'] == JOB_ACTOR][-1] == 'acknowledge'
    policy = kube.get('networking.k8s.io/v1', 'NetworkPolicy', 'slurm-exporter', 'incident-isolation')
    assert policy['metadata']['labels']['incident-response/incident-id'] == record['id']
    assert records(config['incident_store']) == [], 'a record was written to the file store'
    assert json.dumps(record).count(kube.token) == 0
