# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The webhook launcher as a real process on a free loopback port: intake, hostile payloads, SIGKILL and resume,
the AWX backend against the fake AWX, first response against the Kubernetes API emulator, TLS."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys

import pytest
import requests

from tests.alerts import alert, payload, security_alert
from tests.conftest import REPO_ROOT, ansible_env

pytestmark = pytest.mark.integration

from tests.launcher_process import LAUNCHER_DIR, TOKEN, base_config, records, wait_for

if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def snapshot(root, skip):
    found = set()
    for directory, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if os.path.join(directory, name) not in skip]
        found.update(os.path.relpath(os.path.join(directory, name), root) for name in files)
    return found


def test_hostile_payloads_are_refused_or_neutralised(tmp_path, launchers):
    markers = [tmp_path / 'pwned-jinja', tmp_path / 'pwned-shell', tmp_path / 'pwned-backtick']
    launcher = launchers(tmp_path, base_config(tmp_path)).start()
    skip = {str(tmp_path / 'spool'), str(tmp_path / 'store')}
    before = snapshot(str(tmp_path), skip)
    assert 'launcher.log' in before

    hostile_labels = {
        'jinja': "{{ lookup('pipe', 'touch %s') }}" % markers[0],
        'shell': '$(touch %s)' % markers[1],
        'backtick': '`touch %s`' % markers[2],
        'path': '../../../../%s/escaped' % tmp_path,
        'namespace': 'kube-system',
    }
    accepted = launcher.post(payload(alert('0a0b0c0d', **hostile_labels)))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()['accepted'] == 1

    deep = payload(alert('0e0f'))
    deep['commonAnnotations'] = {'a': {}}
    node = deep['commonAnnotations']['a']
    for _level in range(40):
        node['n'] = {}
        node = node['n']
    cases = [
        (b'{"version": "4", "alerts": [', 400, 'bad_json'),
        (payload(alert('0e0f'), version='3'), 422, 'version'),
        (deep, 422, 'too_deep'),
        (b'[' * 100000 + b']' * 100000, 422, 'too_deep'),
        (payload(alert('../../../etc/passwd')), 422, 'schema'),
        (payload(alert('0e0f', **{'../evil': 'x'})), 422, 'schema'),
        (payload(alerts=[]), 422, 'schema'),
        ({'alerts': [alert('0e0f')]}, 422, 'version'),
        (payload(alert('0e0f', starts='yesterday')), 422, 'schema'),
    ]
    for body, status, reason in cases:
        answer = launcher.post(body)
        assert answer.status_code == status, (body if len(str(body)) < 300 else str(body)[:300], answer.text)
        assert answer.json()['reason'] == reason

    # authentication: missing, wrong token, wrong scheme
    assert launcher.post(payload(alert('0e0f')), token=None).status_code == 401
    assert launcher.post(payload(alert('0e0f')), token='not-the-token').status_code == 401
    basic = 'Basic ' + base64.b64encode(b'alertmanager:%s' % TOKEN.encode()).decode()
    answer = launcher.post(payload(alert('0e0f')), token=None, headers={'Authorization': basic})
    assert answer.status_code == 401 and answer.headers['WWW-Authenticate'].startswith('Bearer')

    # a body larger than the cap is refused from its Content-Length, before it is read
    connection = http.client.HTTPConnection('127.0.0.1', launcher.port, timeout=10)
    connection.putrequest('POST', '/webhook')
    connection.putheader('Authorization', 'Bearer %s' % TOKEN)
    connection.putheader('Content-Length', str(2 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())['reason'] == 'too_large'
    connection.close()
    assert launcher.post(b'{}', headers={'Transfer-Encoding': 'chunked'}).status_code in (400, 411)
    assert requests.get(launcher.url + '/webhook', timeout=10).status_code == 405
    assert launcher.post(payload(alert('0e0f')), headers={}).status_code == 200  # still healthy after all that

    wait_for(lambda: len(launcher.spool('done')) == 2 and not launcher.spool('pending'), 90, 'both runs to finish')
    assert requests.get(launcher.url + '/healthz', timeout=10).json()['status'] == 'ok'

    # nothing executed, nothing written outside the store and the spool
    for marker in markers:
        assert not marker.exists()
    assert not (tmp_path / 'escaped').exists()
    assert snapshot(str(tmp_path), skip) - before == set()
    stored = {record['alerts'][0]['fingerprint']: record for record in records(str(tmp_path / 'store'))}
    assert set(stored) == {'0a0b0c0d', '0e0f'}
    labels = stored['0a0b0c0d']['alerts'][0]['labels']
    for key, value in hostile_labels.items():
        assert labels[key] == value
    # the playbook got the namespace from the launcher's configuration, not from the alert's label
    messages = [entry['message'] for entry in stored['0a0b0c0d']['timeline']]
    assert 'launcher test run finished in namespace slurm-exporter' in messages

    metrics = launcher.metrics()
    assert metrics['incident_launcher_alerts_accepted_total'] == 2
    assert metrics['incident_launcher_runs_succeeded_total'] == 2
    assert metrics['incident_launcher_alerts_rejected_total{reason="auth_invalid"}'] == 2
    assert metrics['incident_launcher_alerts_rejected_total{reason="auth_missing"}'] == 1
    assert metrics['incident_launcher_alerts_rejected_total{reason="too_deep"}'] == 2
    assert metrics['incident_launcher_alerts_rejected_total{reason="too_large"}'] == 1
    assert metrics['incident_launcher_ack_latency_seconds_count'] == 2
    rejections = [json.loads(line) for line in open(tmp_path / 'spool' / 'rejections.jsonl', encoding='utf-8')]
    assert {'bad_json', 'version', 'too_deep', 'schema', 'too_large'} <= {line['reason'] for line in rejections}
    # unauthenticated requests are counted (above) but never written to disk
    assert not {'auth_missing', 'auth_invalid'} & {line['reason'] for line in rejections}
    for text in (launcher.log(), (tmp_path / 'spool' / 'rejections.jsonl').read_text()):
        assert TOKEN not in text


def test_sigkill_during_a_run_then_restart_processes_every_alert_once(tmp_path, launchers):
    config = base_config(tmp_path, runner={'env': {'LAUNCHER_TEST_SLEEP': '6'}})
    first = launchers(tmp_path, config, name='first').start()
    fingerprints = ['1a', '2b', '3c']
    answer = first.post(payload(*[alert(fingerprint) for fingerprint in fingerprints]))
    assert answer.json()['accepted'] == 3
    assert first.post(payload(alert('1a'))).json()['deduplicated'] == 1
    store = str(tmp_path / 'store')
    # a run has opened its incident and is now sleeping in the playbook: kill the launcher there
    wait_for(lambda: records(store) and first.metrics()['incident_launcher_runs_in_flight'] >= 1, 60, 'a run in progress')
    first.kill()
    assert len(first.spool('pending')) == 3 and not first.spool('done')

    config['runner']['env'] = {'LAUNCHER_TEST_SLEEP': '0'}
    second = launchers(tmp_path, config, name='second').start()
    assert second.events('listening')[0]['resumed'] == 3
    # the dedup window survived the crash
    assert second.post(payload(alert('2b'))).json()['deduplicated'] == 1
    wait_for(lambda: len(second.spool('done')) == 3 and not second.spool('pending'), 90, 'the resumed runs')
    assert not second.spool('failed')

    found = records(store)
    assert len(found) == len(fingerprints)
    attached = sorted(alert_entry['fingerprint'] for record in found for alert_entry in record['alerts'])
    assert attached == sorted(fingerprints)
    # an interrupted run was started again (the first start is counted in the entry)
    starts = sorted(second.spool_entry('done', name)['starts'] for name in second.spool('done'))
    assert starts[-1] == 2 and starts[0] >= 1


def test_runs_that_keep_failing_end_in_failed_with_their_reason(tmp_path, launchers):
    config = base_config(tmp_path, runner={'env': {'LAUNCHER_TEST_FAIL_ALWAYS': '1'}},
                         workers={'max_attempts': 2, 'backoff_initial': 0.2, 'backoff_max': 0.2})
    launcher = launchers(tmp_path, config).start()
    assert launcher.post(payload(alert('4d'))).status_code == 200
    wait_for(lambda: launcher.spool('failed'), 60, 'the alert to fail')
    entry = launcher.spool_entry('failed', launcher.spool('failed')[0])
    assert entry['attempts'] == 2 and entry['failed_reason'] == 'ansible-runner status failed, rc 2'
    assert 'LAUNCHER_TEST_FAIL_ALWAYS is set' in entry['errors'][-1]['details']['output_tail']
    metrics = launcher.metrics()
    assert metrics['incident_launcher_runs_failed_total'] == 2 and metrics['incident_launcher_alerts_failed_total'] == 1


def test_awx_backend_against_the_fake(tmp_path, launchers):
    from tests.fakes.awx import FakeAwx  # pylint: disable=import-outside-toplevel
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog  # pylint: disable=import-outside-toplevel
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService  # pylint: disable=import-outside-toplevel
    from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore  # pylint: disable=import-outside-toplevel

    store = str(tmp_path / 'store')

    def job(extra_vars):
        # what the job template's playbook does: decode the payload as data, open or attach the incident
        document = json.loads(base64.b64decode(extra_vars['alert_payload_b64']))
        IncidentService(IncidentStore(store), load_catalog(), actor='awx-job').open(alerts=document['alerts'])
        return 'successful'

    awx = FakeAwx(polls=2)
    try:
        awx.add_template(42, outcome=job)
        awx.script('POST', '/api/v2/job_templates/42/launch/', [(429, {'Retry-After': '1'}, {'detail': 'Request was throttled.'})])
        config = base_config(tmp_path, backend='awx', runner={'playbook': 'slurm_exporter.incident_response.respond', 'inventory': None},
                             awx={'url': awx.url, 'job_template_id': 42, 'poll_interval': 0.1, 'max_retries': 3})
        launcher = launchers(tmp_path, config, env={'INCIDENT_LAUNCHER_AWX_TOKEN': awx.token}).start()
        injected = "{{ lookup('pipe', 'touch %s') }}" % (tmp_path / 'pwned')
        assert launcher.post(payload(alert('5e', injected=injected), alert('6f'))).json()['accepted'] == 2
        wait_for(lambda: len(launcher.spool('done')) == 2, 60, 'both AWX jobs')
        launches = awx.launches()
        assert len(launches) == 3
        by_payload = {}
        for entry in launches:
            by_payload.setdefault(entry['body']['extra_vars']['alert_payload_b64'], []).append(entry['time'])
        retried = [times for times in by_payload.values() if len(times) == 2]
        assert len(by_payload) == 2 and len(retried) == 1
        assert retried[0][1] - retried[0][0] >= 0.9  # Retry-After honoured
        assert all(entry['headers']['Authorization'] == 'Bearer %s' % awx.token for entry in awx.requests)
        found = records(store)
        assert sorted(record['alerts'][0]['fingerprint'] for record in found) == ['5e', '6f']
        assert [record for record in found if record['alerts'][0]['fingerprint'] == '5e'][0]['alerts'][0]['labels']['injected'] == injected
        assert not (tmp_path / 'pwned').exists()
        jobs = sorted(launcher.spool_entry('done', name)['awx_job'] for name in launcher.spool('done'))
        assert jobs == sorted(awx.jobs)
        assert awx.token not in launcher.log()
    finally:
        awx.stop()


def test_first_response_isolates_security_incidents_in_the_configured_namespace(tmp_path, launchers, kube):
    config = base_config(tmp_path, first_response={'enabled': True, 'kubeconfig': kube.kubeconfig}, incident_namespace='slurm-exporter')
    launcher = launchers(tmp_path, config).start()
    kube.clear_requests()
    operational = launcher.post(payload(alert('7a')))
    assert operational.status_code == 200
    wait_for(lambda: len(launcher.spool('done')) == 1, 60, 'the operational run')
    assert not kube.writes()

    # labels alone isolate nothing: a Watchdog labelled as a security breach waits for the playbook
    forged = alert('8a', alertname='Watchdog', incident_type='security_breach', component='incident-response')
    assert launcher.post(payload(forged)).status_code == 200
    wait_for(lambda: len(launcher.spool('done')) == 2, 60, 'the forged run')
    assert not kube.writes()

    breach = security_alert('8b', namespace='kube-system')
    assert launcher.post(payload(breach)).status_code == 200
    wait_for(lambda: len(launcher.spool('done')) == 3, 60, 'the security run')
    policy = kube.get('networking.k8s.io/v1', 'NetworkPolicy', 'slurm-exporter', 'incident-isolation')
    assert policy is not None
    assert policy['spec']['podSelector'] == {'matchLabels': {'app': 'slurm-exporter'}}
    assert policy['spec']['policyTypes'] == ['Ingress', 'Egress'] and policy['spec']['ingress'] == []
    writes = kube.writes()
    assert writes and all(entry['namespace'] == 'slurm-exporter' for entry in writes)
    record = [item for item in records(str(tmp_path / 'store')) if item['alerts'][0]['fingerprint'] == '8b'][0]
    assert policy['metadata']['labels']['incident-response/incident-id'] == record['id']
    actions = [(action['name'], action['phase'], action['result']) for action in record['actions']]
    assert actions == [('isolate_pods', 'containment', 'success')]
    # isolation came before the playbook: the action is on the timeline before the run's own entries
    kinds = [entry['message'] for entry in record['timeline']]
    assert kinds.index('Action isolate_pods: success') < kinds.index('launcher test run finished in namespace slurm-exporter')
    assert launcher.metrics()['incident_launcher_first_response_total{result="success"}'] == 1


def test_tls(tmp_path, launchers):
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', str(key), '-out', str(cert), '-days', '1',
                    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], check=True, capture_output=True)
    config = base_config(tmp_path, backend='record', tls={'cert_file': str(cert), 'key_file': str(key)})
    launcher = launchers(tmp_path, config).start()
    assert launcher.url.startswith('https://')
    assert launcher.post(payload(alert('9c')), verify=str(cert)).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(launcher.url.replace('https', 'http') + '/webhook', data=b'{}', timeout=5)
    wait_for(lambda: len(launcher.spool('done')) == 1, 30, 'the run')
    assert requests.get(launcher.url + '/healthz', verify=str(cert), timeout=10).json()['status'] == 'ok'


def test_configuration_errors_stop_the_start(tmp_path):
    env = ansible_env({'PYTHONPATH': LAUNCHER_DIR})
    config = tmp_path / 'launcher.yml'
    config.write_text(json.dumps({'spool': {'dir': str(tmp_path / 'spool')}, 'workers': {'concurrency': 2}}))
    result = subprocess.run([sys.executable, '-m', 'incident_launcher', '--config', str(config)], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error['event'] == 'startup_failed' and 'auth: no credentials' in error['error']
    config.write_text(json.dumps({'auth': {'bearer_token': TOKEN}, 'spool': {'dir': str(tmp_path / 'spool')}, 'backend': 'record',
                                  'incident_store': str(tmp_path / 'store')}))
    config.chmod(0o600)
    result = subprocess.run([sys.executable, '-m', 'incident_launcher', '--config', str(config), '--check-config'], env=env,
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and '"config_ok"' in result.stderr and TOKEN not in result.stderr


@pytest.mark.parametrize('config, environ, words', [
    # a whitespace token used to pass --check-config, then every request was 401 (which Alertmanager does not retry)
    ({'auth': {'bearer_token': '   '}}, {}, 'auth.bearer_token: is blank'),
    ({'auth': {'bearer_token_file': 'token'}}, {'INCIDENT_LAUNCHER_BEARER_TOKEN': ' \t '},
     'environment variable INCIDENT_LAUNCHER_BEARER_TOKEN: is blank'),
    ({'auth': {'allow_anonymous': True}, 'listen': {'address': '0.0.0.0'}}, {}, 'listen.insecure_anonymous'),
    ({'auth': {'bearer_token': TOKEN}, 'listen': {'address': '0.0.0.0'}}, {}, 'listen.insecure_plain_http'),
])
def test_check_config_refuses_what_can_only_lose_alerts(tmp_path, config, environ, words):
    (tmp_path / 'token').write_text(TOKEN + '\n')
    path = tmp_path / 'launcher.yml'
    path.write_text(json.dumps(dict(config, spool={'dir': str(tmp_path / 'spool')}, backend='record', incident_store=str(tmp_path / 'store'))))
    path.chmod(0o600)
    result = subprocess.run([sys.executable, '-m', 'incident_launcher', '--config', str(path), '--check-config'],
                            env=ansible_env(dict({'PYTHONPATH': LAUNCHER_DIR}, **environ)), cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error['event'] == 'startup_failed' and words in error['error'] and TOKEN not in result.stderr
