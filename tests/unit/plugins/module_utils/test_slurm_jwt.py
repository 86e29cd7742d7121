# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""JWT key rotation decisions (module_utils/slurm_jwt.py, used through the collection's filters)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import slurm_jwt
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError
from ansible_collections.slurm_exporter.incident_response.plugins.filter.response import FilterModule

SHOW_CONFIG = """Configuration data as of 2026-01-31T12:00:00
AccountingStorageType   = accounting_storage/slurmdbd
AuthAltParameters       = {params}
AuthAltTypes            = {types}
AuthType                = auth/munge
StateSaveLocation       = {statesave}
"""


def show_config(params='(null)', types='auth/jwt', statesave='/var/spool/slurmctld'):
    return SHOW_CONFIG.format(params=params, types=types, statesave=statesave)


def hs256(key, claims=None, header=None):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b'=').decode()
    signing_input = '%s.%s' % (b64(json.dumps(header or {'alg': 'HS256', 'typ': 'JWT'}).encode()),
                               b64(json.dumps(claims or {'exp': 4102444800, 'sun': 'slurm-exporter'}).encode()))
    secret = key if isinstance(key, bytes) else key.encode()
    return '%s.%s' % (signing_input, b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()))


@pytest.mark.parametrize('params, statesave, expected, source', [
    ('jwt_key=/etc/slurm/jwt_hs256.key', '/var/spool/slurmctld', '/etc/slurm/jwt_hs256.key', 'AuthAltParameters jwt_key'),
    ('disable_token_creation,jwt_key=/srv/keys/jwt.key', '/x', '/srv/keys/jwt.key', 'AuthAltParameters jwt_key'),
    ('(null)', '/var/spool/slurm/statesave', '/var/spool/slurm/statesave/jwt_hs256.key', 'StateSaveLocation'),
    ('', '/var/spool/slurmctld/', '/var/spool/slurmctld/jwt_hs256.key', 'StateSaveLocation'),
])
def test_key_location_follows_slurmctlds_rule(params, statesave, expected, source):
    location = slurm_jwt.jwt_key_location(show_config(params, statesave=statesave))
    assert location == {'path': expected, 'source': source, 'jwt_enabled': True}


def test_key_location_setting_wins_and_is_checked():
    assert slurm_jwt.jwt_key_location('', '/srv/jwt.key')['path'] == '/srv/jwt.key'
    assert slurm_jwt.jwt_key_location(show_config(), '/srv//x/./jwt.key') == {
        'path': '/srv/x/jwt.key', 'source': 'setting', 'jwt_enabled': True}
    for bad in ('relative/jwt.key', '/srv/../etc/shadow', '/srv/jwt\n.key'):
        with pytest.raises(ValidationError, match='incident_slurm_jwt_key_path'):
            slurm_jwt.jwt_key_location(show_config(), bad)


@pytest.mark.parametrize('text, message', [
    ('', 'printed no settings'),
    (show_config(types='(null)'), 'does not use JWT'),
    (show_config(types='auth/slurm'), 'does not use JWT'),
    (show_config(params='jwks=/etc/slurm/jwks.json'), 'JWKS'),
    (show_config(statesave='(null)'), 'neither jwt_key'),
    (show_config(params='jwt_key=keys/relative.key'), 'jwt_key of AuthAltParameters must be an absolute path'),
])
def test_key_location_refuses_what_it_cannot_name(text, message):
    with pytest.raises(ValidationError, match=message):
        slurm_jwt.jwt_key_location(text)


def test_signature_check_tells_the_new_key_from_the_old():
    new, old = 'n' * 64, b'\x00\xff' * 16
    assert slurm_jwt.jwt_signed_with(hs256(new), new)
    assert slurm_jwt.jwt_signed_with(hs256(old), old)
    assert not slurm_jwt.jwt_signed_with(hs256(old), new)
    token = hs256(new)
    tampered = token.rsplit('.', 1)[0].replace('e', 'f', 1) + '.' + token.rsplit('.', 1)[1]
    assert not slurm_jwt.jwt_signed_with(tampered, new)
    for bad in ('', 'a.b', 'a.b.!!!', None, 'x.y.z'):
        assert not slurm_jwt.jwt_signed_with(bad, new)
    assert not slurm_jwt.jwt_signed_with(token, '')


def test_fingerprint_is_a_short_sha256_prefix():
    assert slurm_jwt.key_fingerprint('k' * 64) == hashlib.sha256(b'k' * 64).hexdigest()[:12]
    assert len(slurm_jwt.key_fingerprint(b'abc', 64)) == 16
    with pytest.raises(ValidationError):
        slurm_jwt.key_fingerprint('')


def test_backup_path_is_per_incident_and_refuses_other_names():
    assert slurm_jwt.backup_path('/k/jwt_hs256.key', 'INC-20260131-0007') == '/k/jwt_hs256.key.INC-20260131-0007.previous'
    for bad in ('../../etc', 'INC-1', '', None):
        with pytest.raises(ValidationError, match='incident id'):
            slurm_jwt.backup_path('/k/jwt_hs256.key', bad)


def test_plan_for_a_person_names_every_command():
    plan = slurm_jwt.rotation_plan('INC-20260131-0001', namespace='hpc', secret='creds', deployment='exporter', lifespan=3600)
    assert plan['key_path'] == slurm_jwt.DOCUMENTED_KEY_PATH and not plan['key_path_known']
    assert plan['backup_path'] == slurm_jwt.DOCUMENTED_KEY_PATH + '.INC-20260131-0001.previous'
    assert plan['targets'] == []
    text = '\n'.join(plan['steps'])
    assert plan['steps'][0].startswith('On a SLURM controller, find the key slurmctld loads')
    for command in ('install -m 0400 -o slurm -g slurm %s %s' % (plan['key_path'], plan['backup_path']),
                    'dd if=/dev/random of=%s.new bs=32 count=1' % plan['key_path'],
                    'systemctl restart slurmdbd', 'scontrol reconfigure',
                    'TOKEN=$(scontrol token username=slurm-exporter lifespan=3600',
                    'kubectl -n hpc patch secret creds --type merge --patch-file /dev/stdin',
                    'kubectl -n hpc annotate secret creds incident-response/rotated-by=INC-20260131-0001 --overwrite',
                    'kubectl -n hpc rollout restart deployment/exporter'):
        assert command in text, command
    # The order a person follows: back up, generate, install, slurmdbd, reconfigure, token, Secret.
    positions = [text.index(word) for word in ('install -m 0400', 'dd if=', 'shred -u', 'systemctl restart slurmdbd',
                                               'scontrol reconfigure', 'scontrol token', 'patch secret')]
    assert positions == sorted(positions)
    # The token is never on a command line of its own: only through the TOKEN variable.
    assert 'SLURM_JWT=' not in text.replace("s/^SLURM_JWT=//p", '')


def test_plan_with_known_paths_quotes_them_and_lists_each_host_once():
    plan = slurm_jwt.rotation_plan('INC-20260131-0002', key_path='/srv/slurm state/jwt.key', slurmdbd_key_path='/etc/slurm/jwt.key',
                                   scontrol='/opt/slurm/bin/scontrol', slurmdbd_restart=['/usr/local/bin/dbd restart'],
                                   controllers=['ctl-1', 'ctl-2'], slurmdbd_hosts=['ctl-1', 'dbd-1'], mode='600')
    assert plan['key_path_known'] and 'find the key' not in plan['steps'][0]
    assert "'/srv/slurm state/jwt.key'" in plan['steps'][0]
    assert "'/usr/local/bin/dbd restart'" in '\n'.join(plan['steps'])
    assert '/opt/slurm/bin/scontrol reconfigure' in '\n'.join(plan['steps'])
    assert plan['targets'] == [
        {'host': 'ctl-1', 'path': '/srv/slurm state/jwt.key', 'backup': '/srv/slurm state/jwt.key.INC-20260131-0002.previous',
         'daemons': ['slurmctld']},
        {'host': 'ctl-2', 'path': '/srv/slurm state/jwt.key', 'backup': '/srv/slurm state/jwt.key.INC-20260131-0002.previous',
         'daemons': ['slurmctld']},
        {'host': 'ctl-1', 'path': '/etc/slurm/jwt.key', 'backup': '/etc/slurm/jwt.key.INC-20260131-0002.previous', 'daemons': ['slurmdbd']},
        {'host': 'dbd-1', 'path': '/etc/slurm/jwt.key', 'backup': '/etc/slurm/jwt.key.INC-20260131-0002.previous', 'daemons': ['slurmdbd']},
    ]
    shared = slurm_jwt.rotation_plan('INC-20260131-0002', key_path='/k', controllers=['ctl-1'], slurmdbd_hosts=['ctl-1'])
    assert shared['targets'] == [{'host': 'ctl-1', 'path': '/k', 'backup': '/k.INC-20260131-0002.previous',
                                  'daemons': ['slurmctld', 'slurmdbd']}]


@pytest.mark.parametrize('options, message', [
    ({'mode': '0644'}, 'other users'), ({'mode': '0200'}, 'owner to read'), ({'mode': 'rw'}, 'key mode'),
    ({'owner': 'root; rm -rf /'}, 'key owner'), ({'user': '$(id)'}, 'JWT user'), ({'namespace': 'Bad NS'}, 'namespace'),
    ({'lifespan': 'forever'}, 'lifespan'), ({'lifespan': 0}, 'positive'), ({'key_path': 'jwt.key'}, 'absolute'),
    ({'controllers': 'ctl-1'}, 'list of inventory host names'), ({'slurmdbd_hosts': ['']}, 'empty host name'),
])
def test_plan_refuses_bad_settings(options, message):
    with pytest.raises(ValidationError, match=message):
        slurm_jwt.rotation_plan('INC-20260131-0003', **options)


def test_filters_are_exposed():
    filters = FilterModule().filters()
    for name in ('jwt_key_location', 'jwt_signed_with', 'jwt_key_fingerprint', 'jwt_rotation_plan'):
        assert name in filters
    assert filters['jwt_signed_with'](hs256('k' * 40), 'k' * 40)
