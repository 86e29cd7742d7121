# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration: defaults, clear errors naming the key, secrets from files and the environment (never echoed)."""

from __future__ import annotations

import pytest

from incident_launcher import LauncherError
from incident_launcher.config import RECORD_LIMITS, build, is_loopback, load
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.alertmanager import Limits


def test_defaults(tmp_path):
    config = build({'auth': {'bearer_token': 'x'}}, base_dir=str(tmp_path))
    assert config['listen'] == {'address': '127.0.0.1', 'port': 10341, 'insecure_plain_http': False, 'insecure_anonymous': False}
    assert config['limits']['request_timeout'] == 10.0 and config['limits']['max_connections_per_peer'] == 128
    assert config['limits']['max_body_bytes'] == 1048576 and config['dedup_window'] == 300.0
    assert config['runner']['playbook'] == 'slurm_exporter.incident_response.respond'
    assert config['backend'] == 'runner' and config['first_response']['enabled'] is False
    assert config['awx']['payload_variable'] == 'alert_payload_b64'


@pytest.mark.parametrize('data, words', [
    ({'auth': {'bearer_token': 'x'}, 'lisen': {}}, 'lisen: unknown key'),
    ({'auth': {'bearer_token': 'x'}, 'workers': {'concurrency': 0}}, 'workers.concurrency: expected a value >= 1'),
    ({'auth': {'bearer_token': 'x'}, 'workers': {'concurrency': True}}, 'workers.concurrency: expected an integer'),
    ({'auth': {'bearer_token': 'x'}, 'backend': 'shell'}, 'backend: expected runner, awx or record'),
    ({'auth': {'bearer_token': 'x'}, 'incident_namespace': '../kube-system'}, 'incident_namespace'),
    ({'auth': {'bearer_token': 'x'}, 'runner': {'playbook': 'missing.yml'}}, 'runner.playbook'),
    ({'auth': {'bearer_token': 'x'}, 'backend': 'awx'}, 'awx.url'),
    ({'auth': {'bearer_token': 'x'}, 'backend': 'awx', 'awx': {'url': 'http://awx', 'token': 't'}}, 'awx.job_template_id'),
    ({'auth': {'bearer_token': 'x'}, 'awx': {'extra_vars': {'alert_payload_b64': 'x'}}}, 'awx.extra_vars'),
    ({'auth': {'bearer_token': 'x'}, 'tls': {'cert_file': 'c.pem'}}, 'tls: cert_file and key_file go together'),
    ({'auth': {'basic_username': 'am'}}, 'basic_username and basic_password'),
    ({}, 'auth: no credentials'),
    ({'auth': {'bearer_token': 'x'}, 'first_response': {'pod_selector': {}}}, 'first_response.pod_selector'),
])
def test_errors_name_the_key(tmp_path, data, words):
    with pytest.raises(LauncherError) as info:
        build(data, 'launcher.yml', base_dir=str(tmp_path))
    assert words in str(info.value)
    assert str(info.value).startswith('config launcher.yml: ')


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path):
    with pytest.raises(LauncherError) as info:
        build({'auth': {'bearer_token': 123456789}}, base_dir=str(tmp_path))
    assert '123456789' not in str(info.value) and 'auth.bearer_token' in str(info.value)


def test_secrets_from_files_and_environment(tmp_path):
    (tmp_path / 'token').write_text('from-file\n')
    (tmp_path / 'launcher.yml').write_text('auth:\n  bearer_token_file: token\n  basic_username: am\n  basic_password: p\n'
                                           'first_response: true\n')
    config = load(str(tmp_path / 'launcher.yml'), environ={})
    assert config['auth']['bearer_token'] == 'from-file'
    assert config['first_response']['enabled'] is True
    config = load(str(tmp_path / 'launcher.yml'), environ={'INCIDENT_LAUNCHER_BEARER_TOKEN': 'from-env',
                                                           'INCIDENT_LAUNCHER_BASIC_PASSWORD': 'env-pass'})
    assert config['auth']['bearer_token'] == 'from-env' and config['auth']['basic_password'] == 'env-pass'
    with pytest.raises(LauncherError, match='bearer_token_file: cannot read'):
        build({'auth': {'bearer_token_file': 'nope'}}, base_dir=str(tmp_path))
    with pytest.raises(LauncherError, match='not both'):
        build({'auth': {'bearer_token_file': 'token', 'bearer_token': 'x'}}, base_dir=str(tmp_path))


def test_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / 'launcher.yml').write_text('auth: {allow_anonymous: true}\nspool: {dir: spool}\nincident_store: store\n')
    config = load(str(tmp_path / 'launcher.yml'), environ={})
    assert config['spool']['dir'] == str(tmp_path / 'spool') and config['incident_store'] == str(tmp_path / 'store')


def test_unreadable_or_invalid_yaml(tmp_path):
    with pytest.raises(LauncherError, match='cannot read'):
        load(str(tmp_path / 'missing.yml'))
    (tmp_path / 'bad.yml').write_text('auth: [unclosed\n')
    with pytest.raises(LauncherError, match='not valid YAML'):
        load(str(tmp_path / 'bad.yml'))


def test_a_world_readable_file_with_an_inline_secret_is_warned_about(tmp_path):
    path = tmp_path / 'launcher.yml'
    path.write_text('auth: {bearer_token: inline-secret-value}\n')
    os_mode = 0o644
    path.chmod(os_mode)
    warnings = load(str(path), environ={})['warnings']
    assert len(warnings) == 1 and 'auth.bearer_token' not in warnings[0] and 'bearer_token' in warnings[0]
    assert 'inline-secret-value' not in warnings[0]
    path.chmod(0o600)
    assert load(str(path), environ={})['warnings'] == []


@pytest.mark.parametrize('auth, environ, where', [
    ({'bearer_token': '   '}, {}, 'auth.bearer_token: is blank'),
    ({'bearer_token': '\t\n'}, {}, 'auth.bearer_token: is blank'),
    ({'bearer_token': ' padded-token '}, {}, 'auth.bearer_token: starts or ends with whitespace'),
    ({'bearer_token': 'tok\x00en'}, {}, 'auth.bearer_token: contains control characters'),
    ({'basic_username': 'a:m', 'basic_password': 'p'}, {}, 'auth.basic_username: contains ":"'),
    ({'basic_username': 'am', 'basic_password': '  '}, {}, 'auth.basic_password: is blank'),
    ({'bearer_token': 'good-token'}, {'INCIDENT_LAUNCHER_BEARER_TOKEN': '   '},
     'environment variable INCIDENT_LAUNCHER_BEARER_TOKEN: is blank'),
    ({'allow_anonymous': True}, {'INCIDENT_LAUNCHER_BEARER_TOKEN': ' \n'}, 'INCIDENT_LAUNCHER_BEARER_TOKEN: is blank'),
])
def test_credentials_that_can_never_match_are_refused(tmp_path, auth, environ, where):
    with pytest.raises(LauncherError) as info:
        build({'auth': auth}, 'launcher.yml', environ, base_dir=str(tmp_path))
    assert where in str(info.value) and 'padded-token' not in str(info.value)


def test_an_empty_environment_variable_counts_as_unset(tmp_path):
    config = build({'auth': {'bearer_token': 'from-config'}}, environ={'INCIDENT_LAUNCHER_BEARER_TOKEN': ''}, base_dir=str(tmp_path))
    assert config['auth']['bearer_token'] == 'from-config'


@pytest.mark.parametrize('address, loopback', [('127.0.0.1', True), ('127.3.2.1', True), ('::1', True), ('localhost', True),
                                               ('0.0.0.0', False), ('::', False), ('10.0.0.5', False), ('launcher.example.org', False)])
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


@pytest.mark.parametrize('data, words', [
    ({'listen': {'address': '0.0.0.0'}, 'auth': {'allow_anonymous': True}}, 'auth.allow_anonymous: anyone who can reach 0.0.0.0'),
    ({'listen': {'address': '::'}, 'auth': {'allow_anonymous': True}}, 'listen.insecure_anonymous: true'),
    ({'listen': {'address': '0.0.0.0'}, 'auth': {'bearer_token': 'x' * 32}}, 'tls: the credentials would cross the network in clear text'),
    ({'listen': {'address': '10.1.2.3'}, 'auth': {'basic_username': 'am', 'basic_password': 'pw'}}, 'listen.insecure_plain_http: true'),
])
def test_exposure_on_the_network_needs_an_explicit_opt_in(tmp_path, data, words):
    with pytest.raises(LauncherError) as info:
        build(data, 'launcher.yml', base_dir=str(tmp_path))
    assert words in str(info.value)


def test_the_opt_ins_start_with_a_warning(tmp_path):
    config = build({'listen': {'address': '0.0.0.0', 'insecure_anonymous': True}, 'auth': {'allow_anonymous': True}}, base_dir=str(tmp_path))
    assert any('insecure_anonymous' in warning for warning in config['warnings'])
    config = build({'listen': {'address': '0.0.0.0', 'insecure_plain_http': True}, 'auth': {'bearer_token': 'x' * 32}},
                   base_dir=str(tmp_path))
    assert [warning for warning in config['warnings'] if 'insecure_plain_http' in warning] and 'x' * 32 not in str(config['warnings'])
    # loopback, or TLS on the network, needs no opt-in and gets no warning
    assert build({'auth': {'allow_anonymous': True}}, base_dir=str(tmp_path))['warnings'] == []


def test_limits_stay_within_what_the_record_accepts(tmp_path):
    assert RECORD_LIMITS == {'max_labels': Limits().max_labels, 'max_string': Limits().max_string}
    with pytest.raises(LauncherError, match='limits.max_labels: at most 128'):
        build({'auth': {'bearer_token': 'x'}, 'limits': {'max_labels': 129}}, base_dir=str(tmp_path))
    with pytest.raises(LauncherError, match='first_response.alertnames'):
        build({'auth': {'bearer_token': 'x'}, 'first_response': {'alertnames': ['../x']}}, base_dir=str(tmp_path))
