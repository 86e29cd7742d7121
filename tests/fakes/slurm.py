# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A SLURM cluster's JWT contract on this machine: slurmctld, slurmdbd, ``scontrol`` and slurmrestd.

As SLURM's auth/jwt plugin does (https://slurm.schedmd.com/jwt.html, src/plugins/auth/jwt/auth_jwt.c):

- slurmctld loads its HS256 key, the file ``jwt_key=`` of AuthAltParameters names, when it starts and on
  ``scontrol reconfigure`` (Slurm 23.11 and later re-execute slurmctld; ``legacy_reconfigure()`` behaves as
  earlier versions, which keep the key loaded at start). A key file that other users can access, or that is owned
  by neither SlurmUser nor root, is refused: the reconfigure fails and the key loaded before stays.
- slurmdbd loads its own key (``jwt_key=`` of slurmdbd.conf) only when it starts (``restart_command``).
- ``scontrol token username=U lifespan=N`` prints ``SLURM_JWT=<token>``: an HS256 JWT (claims ``iat``, ``exp``,
  ``sun``) signed with the key slurmctld has loaded. ``scontrol show config`` prints ``Name = value`` lines.
- slurmrestd (HTTP on a free loopback port) takes the token from ``X-SLURM-USER-TOKEN`` and hands it to
  slurmctld (``/slurm/...``) or slurmdbd (``/slurmdb/...``): 200 when its signature verifies with the key that
  daemon has loaded and it has not expired, else 401. ``/openapi/v3`` needs no token.

The executables are small Python scripts (``scontrol``, ``slurmdbd-restart``) sharing a state file (the keys the
daemons loaded, and a log of the calls: the subcommand only, never a value).
"""

from __future__ import annotations

import base64
import grp
import hashlib
import hmac
import http.server
import json
import os
import pwd
import secrets
import subprocess
import sys
import threading
import time

SCRIPT = r'''#!__PYTHON__
"""Fake __NAME__: see tests/fakes/slurm.py."""
import base64, hashlib, hmac, json, os, stat, sys, time

STATE = __STATE__


def load():
    with open(STATE, encoding='utf-8') as handle:
        return json.load(handle)


def save(state):
    with open(STATE + '.tmp', 'w', encoding='utf-8') as handle:
        json.dump(state, handle)
    os.replace(STATE + '.tmp', STATE)


def read_key(path, slurm_uid):
    """The key as the auth/jwt plugin loads it, with SLURM's ownership and mode rules."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise SystemExit('fatal: auth/jwt: Could not load key file (%s): %s' % (path, exc.strerror))
    if info.st_mode & stat.S_IRWXO:
        raise SystemExit('fatal: auth/jwt: key file %s is accessible by other users' % path)
    if info.st_uid not in (0, slurm_uid):
        raise SystemExit('fatal: auth/jwt: key file %s must be owned by SlurmUser or root' % path)
    with open(path, 'rb') as handle:
        return base64.b64encode(handle.read()).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def token(state, args):
    options = dict(arg.split('=', 1) for arg in args if '=' in arg)
    if set(options) - {'username', 'lifespan'} or len(options) != len(args):
        raise SystemExit('scontrol: error: invalid token option')
    if not state['slurmctld_key']:
        raise SystemExit('slurm_token_generate: Unexpected message received (auth/jwt has no key loaded)')
    now = int(time.time())
    claims = {'iat': now, 'exp': now + int(options.get('lifespan', 1800)), 'sun': options.get('username', 'root')}
    signing_input = b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode()) + '.' + b64url(json.dumps(claims).encode())
    signature = hmac.new(base64.b64decode(state['slurmctld_key']), signing_input.encode(), hashlib.sha256).digest()
    print('SLURM_JWT=%s.%s' % (signing_input, b64url(signature)))


def scontrol(state, argv):
    command = argv[0] if argv else ''
    if command == 'show' and argv[1:] == ['config']:
        print('Configuration data as of 2026-01-01T00:00:00')
        for name, value in (('AuthAltParameters', 'jwt_key=' + state['key_path']), ('AuthAltTypes', 'auth/jwt'),
                            ('AuthType', 'auth/munge'), ('ClusterName', 'cluster'), ('SlurmUser', 'slurm(%d)' % state['slurm_uid']),
                            ('StateSaveLocation', os.path.dirname(state['key_path']))):
            print('%-23s = %s' % (name, value))
    elif command == 'reconfigure' and len(argv) == 1:
        if state['reconfigure_loads_key']:
            try:
                state['slurmctld_key'] = read_key(state['key_path'], state['slurm_uid'])
            except SystemExit as exc:
                raise SystemExit('slurm_reconfigure error: %s' % exc) from None
        state['reconfigures'] += 1
    elif command == 'token':
        token(state, argv[1:])
    else:
        raise SystemExit('scontrol: error: Invalid command line')


def restart_slurmdbd(state, argv):
    if argv:
        raise SystemExit('usage: slurmdbd-restart')
    state['slurmdbd_key'] = read_key(state['slurmdbd_key_path'], state['slurm_uid'])
    state['slurmdbd_restarts'] += 1


def main():
    state = load()
    argv = sys.argv[1:]
    state['calls'].append(' '.join(['__NAME__'] + [arg.split('=', 1)[0] for arg in argv]))
    try:
        (scontrol if '__NAME__' == 'scontrol' else restart_slurmdbd)(state, argv)
    finally:
        save(state)


main()
'''


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def _b64url_decode(segment):
    return base64.urlsafe_b64decode(segment + '=' * (-len(segment) % 4))


class FakeSlurm:
    """One SLURM cluster under ``root``: a shared StateSaveLocation for the controllers, slurmdbd's own key."""

    def __init__(self, root):
        self.root = str(root)
        self.key_path = os.path.join(self.root, 'statesave', 'jwt_hs256.key')
        self.slurmdbd_key_path = os.path.join(self.root, 'slurmdbd', 'jwt_hs256.key')
        self.state_path = os.path.join(self.root, 'state.json')
        bindir = os.path.join(self.root, 'bin')
        for directory in (os.path.dirname(self.key_path), os.path.dirname(self.slurmdbd_key_path), bindir):
            os.makedirs(directory, mode=0o755, exist_ok=True)
        self.scontrol = self._script(bindir, 'scontrol')
        self.restart_command = [self._script(bindir, 'slurmdbd-restart')]
        self.initial_key = secrets.token_bytes(32)  # as `dd if=/dev/random bs=32 count=1` in SLURM's setup
        for path in (self.key_path, self.slurmdbd_key_path):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'wb') as handle:
                handle.write(self.initial_key)
        self._save({'key_path': self.key_path, 'slurmdbd_key_path': self.slurmdbd_key_path, 'slurm_uid': os.getuid(),
                    'slurmctld_key': '', 'slurmdbd_key': '', 'reconfigures': 0, 'slurmdbd_restarts': 0, 'calls': [],
                    'reconfigure_loads_key': True})
        # The daemons start: both load the key in place.
        self.run('reconfigure')
        subprocess.run(self.restart_command, check=True, capture_output=True)
        self.reset_calls()
        self.server = None
        self.url = None

    def _script(self, bindir, name):
        path = os.path.join(bindir, name)
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(SCRIPT.replace('__PYTHON__', sys.executable).replace('__STATE__', repr(self.state_path))
                         .replace('__NAME__', name))
        os.chmod(path, 0o755)
        return path

    def _save(self, state):
        with open(self.state_path, 'w', encoding='utf-8') as handle:
            json.dump(state, handle)

    def state(self):
        with open(self.state_path, encoding='utf-8') as handle:
            return json.load(handle)

    def legacy_reconfigure(self):
        """Behave as slurmctld before 23.11: ``scontrol reconfigure`` re-reads slurm.conf but keeps the loaded key."""
        state = self.state()
        state['reconfigure_loads_key'] = False
        self._save(state)

    def reset_calls(self):
        state = self.state()
        state['calls'] = []
        self._save(state)

    def calls(self):
        """The executables run since the last reset: name and subcommand (``scontrol token username lifespan``)."""
        return self.state()['calls']

    def run(self, *argv):
        """``scontrol <argv>`` as a person on the controller runs it; its stdout."""
        return subprocess.run([self.scontrol] + list(argv), check=True, capture_output=True, text=True).stdout

    def issue(self, username='slurm-exporter', lifespan=86400):
        """A token from ``scontrol token`` (the one that will leak); the call is not kept in ``calls()``."""
        calls = self.calls()
        output = self.run('token', 'username=%s' % username, 'lifespan=%d' % lifespan)
        state = self.state()
        state['calls'] = calls
        self._save(state)
        return output.strip().split('=', 1)[1]

    def loaded_key(self, daemon='slurmctld'):
        return base64.b64decode(self.state()['%s_key' % daemon])

    def verify(self, token, daemon='slurmctld'):
        """``(accepted, reason)`` for a token handed to slurmctld or slurmdbd, with the key that daemon has loaded."""
        try:
            header, payload, signature = str(token).split('.')
            if json.loads(_b64url_decode(header)).get('alg') != 'HS256':
                return False, 'no support for alg'
            expected = hmac.new(self.loaded_key(daemon), ('%s.%s' % (header, payload)).encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _b64url_decode(signature)):
                return False, 'jwt_decode failure: signature'
            claims = json.loads(_b64url_decode(payload))
        except (ValueError, TypeError):
            return False, 'initial jwt_decode failure'
        if int(claims.get('exp', 0)) < time.time():
            return False, 'token expired'
        if not (claims.get('sun') or claims.get('username')):
            return False, 'jwt_get_grant failure'
        return True, claims.get('sun') or claims.get('username')

    def inventory(self, path, controllers=('slurmctld-1',), slurmdbd=(), variables=None):
        """Write an inventory whose slurm_controllers (and slurmdbd) groups are local hosts running this cluster's
        executables, with the role settings that point at them; returns its path."""
        def local(**host_vars):
            return dict({'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}'}, **host_vars)
        settings = {'incident_scontrol': self.scontrol, 'incident_slurmdbd_jwt_key_path': self.slurmdbd_key_path,
                    'incident_slurmdbd_restart_command': self.restart_command, 'incident_slurm_become': False,
                    'incident_slurm_jwt_key_owner': pwd.getpwuid(os.getuid()).pw_name,
                    'incident_slurm_jwt_key_group': grp.getgrgid(os.getgid()).gr_name}
        settings.update(variables or {})
        with open(str(path), 'w', encoding='utf-8') as handle:
            json.dump({'all': {'hosts': {'localhost': local()},
                               'children': {'slurm_controllers': {'hosts': {name: local() for name in controllers}},
                                            'slurmdbd': {'hosts': {name: local() for name in slurmdbd}}},
                               'vars': settings}}, handle)
        return str(path)

    # -- slurmrestd ---------------------------------------------------------------------------------------
    def start_slurmrestd(self):
        handler = type('Handler', (_RestHandler,), {'slurm': self})
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True).start()
        return self.url

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _RestHandler(http.server.BaseHTTPRequestHandler):
    slurm = None
    protocol_version = 'HTTP/1.1'
    # TCP_NODELAY: headers and body are two writes; with Nagle's algorithm the second waits for the client's
    # delayed ACK, 40 ms on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet."""

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # pylint: disable=invalid-name
        path = self.path.split('?', 1)[0]
        if path == '/openapi/v3':
            self._answer(200, {'openapi': '3.0.2', 'info': {'title': 'Slurm REST API'}})
            return
        daemon = 'slurmdbd' if path.startswith('/slurmdb/') else 'slurmctld' if path.startswith('/slurm/') else None
        if daemon is None:
            self._answer(404, {'errors': [{'error': 'Unable to find requested URL'}]})
            return
        accepted, reason = self.slurm.verify(self.headers.get('X-SLURM-USER-TOKEN', ''), daemon)
        if not accepted:
            self._answer(401, {'errors': [{'error': 'Authentication failure', 'description': reason}]})
            return
        self._answer(200, {'meta': {'client': {'user': reason}}, 'errors': [], 'pings': [{'responding': True}]})
