# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SLURM JWT signing-key rotation: where slurmctld reads its key, the rotation plan, the signature check.

SLURM's auth/jwt plugin (src/plugins/auth/jwt/auth_jwt.c) loads the HS256 key when slurmctld or slurmdbd
starts: the file named by ``jwt_key=`` in ``AuthAltParameters``, else (slurmctld only)
``<StateSaveLocation>/jwt_hs256.key``. ``scontrol reconfigure`` re-executes slurmctld (Slurm 23.11 and later),
which loads the key again; slurmdbd reads it only when it starts. ``scontrol token`` asks slurmctld for a token,
which slurmctld signs with the key it has loaded: a token that verifies with the new key proves slurmctld
loaded it, and every token signed with the old key (the leaked one) is rejected from then on.

Pure functions, used by the response role through the collection's filters (plugins/filter/slurm_jwt.py).
Nothing here returns or logs a key or a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import posixpath
import re
import shlex

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import ValidationError

# The key file of SLURM's JWT documentation (https://slurm.schedmd.com/jwt.html), used in the steps for a
# person when no controller can be asked where the key is.
DOCUMENTED_KEY_PATH = '/var/spool/slurm/statesave/jwt_hs256.key'
DEFAULT_KEY_NAME = 'jwt_hs256.key'
INCIDENT_ID_RE = re.compile(r'^INC-\d{8}-\d{4,}$')
MODE_RE = re.compile(r'^0?[0-7]{3}$')
NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_.-]{0,63}$')
KUBE_NAME_RE = re.compile(r'^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')
_UNSET = ('', '(null)', 'none', 'n/a')


def parse_show_config(text):
    """``{name: value}`` from the output of ``scontrol show config`` (``Name = value`` lines)."""
    settings = {}
    for line in str(text or '').splitlines():
        name, sep, value = line.partition('=')
        name = name.strip()
        if sep and name and ' ' not in name:
            settings[name] = value.strip()
    return settings


def _param(parameters, field):
    """The value of ``field=`` in a comma-separated AuthAltParameters string, or None."""
    for item in str(parameters or '').split(','):
        key, sep, value = item.strip().partition('=')
        if sep and key.strip().lower() == field:
            return value.strip()
    return None


def _absolute(path, what):
    text = str(path or '')
    if not text.startswith('/') or '\x00' in text or '\n' in text:
        raise ValidationError('%s must be an absolute path, got %r' % (what, text[:200]))
    if any(part == '..' for part in text.split('/')):
        raise ValidationError('%s must not contain "..", got %r' % (what, text[:200]))
    return posixpath.normpath(text)


def jwt_key_location(show_config, key_path=''):
    """Where slurmctld reads its HS256 key: ``{path, source, jwt_enabled}``.

    ``key_path`` (the role's setting) wins when set; else slurmctld's own rule on the output of
    ``scontrol show config``: ``jwt_key=`` of AuthAltParameters, else ``<StateSaveLocation>/jwt_hs256.key``.
    Raises ValidationError when auth/jwt is not enabled or no key file can be named.
    """
    settings = parse_show_config(show_config)
    types = [item.strip().lower() for item in settings.get('AuthAltTypes', '').split(',')]
    enabled = 'auth/jwt' in types
    if key_path:
        return {'path': _absolute(key_path, 'incident_slurm_jwt_key_path'), 'source': 'setting', 'jwt_enabled': enabled}
    if not settings:
        raise ValidationError('scontrol show config printed no settings: cannot tell where slurmctld reads its JWT key '
                              '(set incident_slurm_jwt_key_path)')
    if not enabled:
        raise ValidationError('slurmctld does not use JWT authentication (AuthAltTypes = %s): there is no JWT key to rotate'
                              % (settings.get('AuthAltTypes') or '(null)'))
    parameters = settings.get('AuthAltParameters', '')
    jwt_key = _param(parameters, 'jwt_key')
    if jwt_key:
        return {'path': _absolute(jwt_key, 'jwt_key of AuthAltParameters'), 'source': 'AuthAltParameters jwt_key',
                'jwt_enabled': True}
    if _param(parameters, 'jwks'):
        raise ValidationError('slurmctld verifies tokens with a JWKS (RS256) file and no HS256 jwt_key: the keys of the '
                              'identity provider must be rotated there')
    state_save = settings.get('StateSaveLocation', '')
    if state_save.lower() in _UNSET:
        raise ValidationError('neither jwt_key= in AuthAltParameters nor StateSaveLocation in scontrol show config '
                              '(set incident_slurm_jwt_key_path)')
    return {'path': _absolute(posixpath.join(state_save, DEFAULT_KEY_NAME), 'StateSaveLocation'),
            'source': 'StateSaveLocation', 'jwt_enabled': True}


def backup_path(key_path, incident_id):
    """Where the key before the incident is kept on each host: ``<key>.<incident id>.previous``."""
    if not INCIDENT_ID_RE.match(str(incident_id or '')):
        raise ValidationError('incident id expected as INC-YYYYMMDD-NNNN, got %r' % str(incident_id)[:80])
    return '%s.%s.previous' % (_absolute(key_path, 'key path'), incident_id)


def _b64url_decode(segment):
    return base64.urlsafe_b64decode((segment + '=' * (-len(segment) % 4)).encode('ascii'))


def jwt_signed_with(token, key):
    """True when ``token`` is an HS256 JWT whose signature verifies with ``key`` (the key file's bytes)."""
    parts = str(token or '').strip().split('.')
    if len(parts) != 3 or not key:
        return False
    try:
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return False
    secret = key if isinstance(key, bytes) else str(key).encode('utf-8')
    expected = hmac.new(secret, ('%s.%s' % (parts[0], parts[1])).encode('ascii', 'replace'), hashlib.sha256).digest()
    return hmac.compare_digest(signature, expected)


def key_fingerprint(key, length=12):
    """The first ``length`` hex digits of the key's SHA-256: enough to tell keys apart, nothing to rebuild one from."""
    secret = key if isinstance(key, bytes) else str(key or '').encode('utf-8')
    if not secret:
        raise ValidationError('no key to fingerprint')
    return hashlib.sha256(secret).hexdigest()[:max(4, min(int(length), 16))]


def _check(value, pattern, what):
    text = str(value if value is not None else '')
    if not pattern.match(text):
        raise ValidationError('%s: unexpected value %r' % (what, text[:80]))
    return text


def rotation_plan(incident_id, key_path='', owner='slurm', group='slurm', mode='0400', user='slurm-exporter',
                  lifespan=86400, namespace='slurm-exporter', secret='slurm-credentials', deployment='slurm-exporter',
                  scontrol='scontrol', slurmdbd_key_path='', slurmdbd_restart=None, controllers=None, slurmdbd_hosts=None):
    """The rotation for one incident: where the key goes on which host, where the old one is kept, and the steps.

    Returns ``{key_path, key_path_known, backup_path, slurmdbd_key_path, slurmdbd_backup_path, targets, steps}``:
    ``targets`` lists each (host, key file) once, controllers first, with the daemons that read it; ``steps``
    is the rotation as a person runs it, each step an exact command. ``key_path`` empty: SLURM's documented
    path, with a first step that finds the real one. The token never appears on a command line (it goes
    through a shell variable and printf, a shell builtin).
    """
    incident_id = str(incident_id or '')
    known = bool(key_path)
    path = _absolute(key_path, 'incident_slurm_jwt_key_path') if known else DOCUMENTED_KEY_PATH
    dbd_path = _absolute(slurmdbd_key_path, 'incident_slurmdbd_jwt_key_path') if slurmdbd_key_path else path
    owner = _check(owner, NAME_RE, 'key owner')
    group = _check(group, NAME_RE, 'key group')
    mode = _check(mode, MODE_RE, 'key mode')
    if int(mode, 8) & 0o007 or not int(mode, 8) & 0o400:
        raise ValidationError('key mode %s: SLURM needs the owner to read the key and refuses a key file that other users '
                              'can access (0400 or 0600)' % mode)
    user = _check(user, NAME_RE, 'JWT user')
    namespace = _check(namespace, KUBE_NAME_RE, 'namespace')
    secret = _check(secret, KUBE_NAME_RE, 'Secret name')
    deployment = _check(deployment, KUBE_NAME_RE, 'Deployment name')
    try:
        lifespan = int(lifespan)
    except (TypeError, ValueError):
        raise ValidationError('JWT lifespan: expected seconds, got %r' % str(lifespan)[:40]) from None
    if lifespan <= 0:
        raise ValidationError('JWT lifespan: expected a positive number of seconds, got %d' % lifespan)
    backup = backup_path(path, incident_id)
    dbd_backup = backup_path(dbd_path, incident_id)
    restart = ' '.join(shlex.quote(str(part)) for part in (slurmdbd_restart or ['systemctl', 'restart', 'slurmdbd']))
    q = shlex.quote
    scontrol = q(str(scontrol or 'scontrol'))
    new = path + '.new'
    steps = []
    if not known:
        steps.append('On a SLURM controller, find the key slurmctld loads: %s show config | grep -E '
                     "'^(AuthAltTypes|AuthAltParameters|StateSaveLocation) ' (the jwt_key= of AuthAltParameters, else "
                     '<StateSaveLocation>/%s). The commands below use %s: replace it if yours differs.'
                     % (scontrol, DEFAULT_KEY_NAME, path))
    steps += [
        'On every SLURM controller host, keep the current key for a roll-back: install -m 0400 -o %s -g %s %s %s'
        % (owner, group, q(path), q(backup)),
        'On one controller, generate the new key (32 random bytes, never printed): (umask 077; dd if=/dev/random of=%s bs=32 count=1)'
        % q(new),
        'Install it on every controller host (copy %s to the others over SSH first): install -m %s -o %s -g %s %s %s && shred -u %s'
        % (q(new), mode, owner, group, q(new), q(path), q(new)),
        'On every slurmdbd host whose slurmdbd.conf sets AuthAltTypes=auth/jwt: install -m 0400 -o %s -g %s %s %s, install the '
        'same new key as %s (-m %s -o %s -g %s), then restart slurmdbd, which reads its key only at start: %s'
        % (owner, group, q(dbd_path), q(dbd_backup), q(dbd_path), mode, owner, group, restart),
        'On a controller, load the new key: %s reconfigure (Slurm 23.11 and later re-execute slurmctld; before 23.11 run '
        'systemctl restart slurmctld on every controller). Every token signed with the old key, the leaked one included, '
        'is rejected from now on.' % scontrol,
        "Issue the exporter's token, kept in a shell variable only: TOKEN=$(%s token username=%s lifespan=%d | sed -n 's/^SLURM_JWT=//p')"
        % (scontrol, user, lifespan),
        'Where kubectl reaches the cluster (with TOKEN set there), write it into the Secret without putting it on a command line: '
        "printf '{\"data\":{\"jwt-token\":\"%%s\"}}' \"$(printf %%s \"$TOKEN\" | base64 -w0)\" | kubectl -n %s patch secret %s "
        '--type merge --patch-file /dev/stdin && unset TOKEN' % (namespace, secret),
        'Mark the Secret: kubectl -n %s annotate secret %s incident-response/rotated-by=%s --overwrite' % (namespace, secret, incident_id),
        'Restart the exporter so it reads the new token now: kubectl -n %s rollout restart deployment/%s' % (namespace, deployment),
        'Roll back, only if SLURM breaks: install -m %s -o %s -g %s %s %s on every host, then %s reconfigure (this trusts the '
        'leaked token again)' % (mode, owner, group, q(backup), q(path), scontrol),
    ]
    return {'key_path': path, 'key_path_known': known, 'backup_path': backup, 'slurmdbd_key_path': dbd_path,
            'slurmdbd_backup_path': dbd_backup, 'steps': steps,
            'targets': key_targets(controllers or [], slurmdbd_hosts or [], path, backup, dbd_path, dbd_backup)}


def key_targets(controllers, slurmdbd_hosts, path, backup, dbd_path, dbd_backup):
    """Each (host, key file) once: ``[{host, path, backup, daemons}]``, controllers first, in inventory order."""
    targets = []
    index = {}
    for hosts, daemon, key, kept in ((controllers, 'slurmctld', path, backup), (slurmdbd_hosts, 'slurmdbd', dbd_path, dbd_backup)):
        if isinstance(hosts, (str, bytes)) or not isinstance(hosts, (list, tuple)):
            raise ValidationError('%s hosts: expected a list of inventory host names' % daemon)
        for host in hosts:
            host = str(host)
            if not host:
                raise ValidationError('%s hosts: an empty host name' % daemon)
            if (host, key) in index:
                daemons = index[(host, key)]['daemons']
                if daemon not in daemons:
                    daemons.append(daemon)
                continue
            entry = {'host': host, 'path': key, 'backup': kept, 'daemons': [daemon]}
            index[(host, key)] = entry
            targets.append(entry)
    return targets
