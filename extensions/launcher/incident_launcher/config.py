# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher's configuration: a YAML file, secrets from files or the environment, validated up front.

Every key, its type and default is in :data:`SCHEMA`; docs/launcher.md documents each one.
Errors name the key (``config FILE: workers.concurrency: expected an integer >= 1, got 0``).
Secret values are never part of an error message.
"""

from __future__ import annotations

import copy
import os
import re

import yaml

from incident_launcher import LauncherError

FQCN_RE = re.compile(r'^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+$')
NAMESPACE_RE = re.compile(r'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
IDENTIFIER_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,63}$')

ENV_SECRETS = {
    'INCIDENT_LAUNCHER_BEARER_TOKEN': ('auth', 'bearer_token'),
    'INCIDENT_LAUNCHER_BASIC_USERNAME': ('auth', 'basic_username'),
    'INCIDENT_LAUNCHER_BASIC_PASSWORD': ('auth', 'basic_password'),
    'INCIDENT_LAUNCHER_AWX_TOKEN': ('awx', 'token'),
}
SECRET_FILES = {('auth', 'bearer_token'): 'bearer_token_file', ('auth', 'basic_password'): 'basic_password_file',
                ('awx', 'token'): 'token_file'}
SECRETS = {('auth', 'bearer_token'), ('auth', 'basic_password'), ('awx', 'token')}

STR, OPT_STR, INT, NUM, BOOL, MAP, LIST = 'str', 'optional str', 'int', 'number', 'bool', 'map', 'list'

# key: (kind, default, minimum) -- sections are nested dicts.
SCHEMA = {
    'listen': {'address': (STR, '127.0.0.1', None), 'port': (INT, 10341, 0)},
    'tls': {'cert_file': (OPT_STR, None, None), 'key_file': (OPT_STR, None, None), 'client_ca_file': (OPT_STR, None, None)},
    'auth': {'bearer_token': (OPT_STR, None, None), 'bearer_token_file': (OPT_STR, None, None),
             'basic_username': (OPT_STR, None, None), 'basic_password': (OPT_STR, None, None),
             'basic_password_file': (OPT_STR, None, None), 'allow_anonymous': (BOOL, False, None)},
    'limits': {'max_body_bytes': (INT, 1048576, 1024), 'max_depth': (INT, 8, 5), 'max_items': (INT, 1000, 1),
               'max_alerts': (INT, 1000, 1), 'max_labels': (INT, 128, 1), 'max_string': (INT, 16384, 64),
               'request_timeout': (NUM, 10.0, 0.1), 'max_connections': (INT, 64, 1)},
    'spool': {'dir': (STR, '/var/lib/incident-launcher/spool', None), 'max_pending': (INT, 10000, 1),
              'done_retention': (NUM, 86400.0, 0), 'rejection_log': (OPT_STR, None, None),
              'rejection_log_max_bytes': (INT, 10485760, 4096)},
    'dedup_window': (NUM, 300.0, 0),
    'workers': {'concurrency': (INT, 4, 1), 'max_attempts': (INT, 5, 1), 'backoff_initial': (NUM, 10.0, 0),
                'backoff_max': (NUM, 600.0, 0), 'shutdown_grace': (NUM, 30.0, 0)},
    'backend': (STR, 'runner', None),
    'runner': {'playbook': (STR, 'slurm_exporter.incident_response.respond', None), 'inventory': (OPT_STR, None, None),
               'timeout': (INT, 3600, 1), 'env': (MAP, {}, None)},
    'awx': {'url': (OPT_STR, None, None), 'token': (OPT_STR, None, None), 'token_file': (OPT_STR, None, None),
            'job_template_id': (INT, 0, 0), 'payload_variable': (STR, 'alert_payload_b64', None), 'extra_vars': (MAP, {}, None),
            'validate_certs': (BOOL, True, None), 'ca_file': (OPT_STR, None, None), 'poll_interval': (NUM, 5.0, 0),
            'job_timeout': (NUM, 3600.0, 1), 'request_timeout': (NUM, 30.0, 0.1), 'max_retries': (INT, 5, 0),
            'max_retry_after': (NUM, 120.0, 0)},
    'incident_store': (STR, '/var/incident-response', None),
    'incident_namespace': (STR, 'slurm-exporter', None),
    'catalog': (MAP, {}, None),
    'first_response': {'enabled': (BOOL, False, None), 'kubeconfig': (OPT_STR, None, None), 'context': (OPT_STR, None, None),
                       'pod_selector': (MAP, {'app': 'slurm-exporter'}, None), 'allow_ingress': (LIST, [], None),
                       'allow_egress': (LIST, [], None), 'request_timeout': (NUM, 30.0, 0.1)},
    'collections_path': (LIST, [], None),
    'log_level': (STR, 'info', None),
}


def _fail(source, path, message):
    raise LauncherError('config %s: %s: %s' % (source, path, message))


def _describe(value, secret):
    if secret:
        return 'a %s' % type(value).__name__
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + '...'


def _check(source, path, value, spec, secret=False):
    kind, _default, minimum = spec
    if kind in (STR, OPT_STR):
        if value is None and kind == OPT_STR:
            return None
        if not isinstance(value, str) or (kind == STR and not value):
            _fail(source, path, 'expected a %sstring, got %s' % ('non-empty ' if kind == STR else '', _describe(value, secret)))
        return value
    if kind == BOOL:
        if not isinstance(value, bool):
            _fail(source, path, 'expected true or false, got %s' % _describe(value, secret))
        return value
    if kind in (INT, NUM):
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind == NUM else int):
            _fail(source, path, 'expected %s, got %s' % ('an integer' if kind == INT else 'a number', _describe(value, secret)))
        if minimum is not None and value < minimum:
            _fail(source, path, 'expected a value >= %s, got %s' % (minimum, value))
        return float(value) if kind == NUM else value
    if kind == MAP:
        if not isinstance(value, dict):
            _fail(source, path, 'expected a mapping, got %s' % _describe(value, secret))
        return copy.deepcopy(value)
    if not isinstance(value, list):
        _fail(source, path, 'expected a list, got %s' % _describe(value, secret))
    return copy.deepcopy(value)


def _section(source, prefix, data, schema):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        _fail(source, prefix or '(top level)', 'expected a mapping, got %s' % type(data).__name__)
    unknown = sorted(set(data) - set(schema))
    if unknown:
        _fail(source, '%s%s' % (prefix + '.' if prefix else '', unknown[0]), 'unknown key (known: %s)' % ', '.join(sorted(schema)))
    result = {}
    for key, spec in schema.items():
        path = '%s.%s' % (prefix, key) if prefix else key
        if isinstance(spec, dict):
            result[key] = _section(source, path, data.get(key), spec)
        else:
            secret = tuple(path.split('.')) in SECRETS
            result[key] = _check(source, path, data[key], spec, secret) if key in data else copy.deepcopy(spec[1])
    return result


def _read_secret(source, path, filename):
    try:
        with open(filename, encoding='utf-8') as handle:
            value = handle.read().strip()
    except OSError as exc:
        _fail(source, path, 'cannot read %s: %s' % (filename, exc.strerror or exc))
    if not value:
        _fail(source, path, '%s is empty' % filename)
    return value


def secrets_exposed(path, data):
    """Warning text when the file holds a secret inline and others than its owner can read it, else None."""
    inline = [key for section, key in SECRETS if isinstance(data.get(section), dict) and data[section].get(key)]
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if inline and mode & 0o077:
        return ('%s holds %s inline and is readable by others than its owner (mode %o): chmod 600, or use the *_file keys '
                'or INCIDENT_LAUNCHER_* environment variables' % (path, ', '.join(sorted(inline)), mode & 0o777))
    return None


def load(path, environ=None):
    """Read, merge the secrets, validate; returns the complete configuration (every key present)."""
    environ = os.environ if environ is None else environ
    try:
        with open(path, encoding='utf-8') as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise LauncherError('config %s: cannot read it: %s' % (path, exc.strerror or exc)) from None
    except yaml.YAMLError as exc:
        raise LauncherError('config %s: not valid YAML: %s' % (path, exc)) from None
    config = build(data or {}, path, environ, os.path.dirname(os.path.abspath(path)))
    config['warnings'] = [text for text in (secrets_exposed(path, data or {}),) if text]
    return config


def build(data, source='(inline)', environ=None, base_dir=None):
    environ = {} if environ is None else environ
    if isinstance(data, dict) and isinstance(data.get('first_response'), bool):
        data = dict(data, first_response={'enabled': data['first_response']})
    config = _section(source, '', data, SCHEMA)
    base_dir = base_dir or os.getcwd()

    def resolve(value):
        return value if value is None else os.path.abspath(os.path.join(base_dir, os.path.expanduser(value)))

    for (section, key), file_key in SECRET_FILES.items():
        filename = config[section][file_key]
        if filename:
            if config[section][key]:
                _fail(source, '%s.%s' % (section, file_key), 'give %s or %s, not both' % (key, file_key))
            config[section][key] = _read_secret(source, '%s.%s' % (section, file_key), resolve(filename))
    for variable, (section, key) in ENV_SECRETS.items():
        if environ.get(variable):
            config[section][key] = environ[variable]
    _semantics(source, config, resolve)
    return config


def _semantics(source, config, resolve):  # pylint: disable=too-many-branches
    if config['log_level'] not in ('debug', 'info', 'warning', 'error'):
        _fail(source, 'log_level', 'expected debug, info, warning or error')
    if config['listen']['port'] > 65535:
        _fail(source, 'listen.port', 'expected a port number (0-65535)')
    auth = config['auth']
    if bool(auth['basic_username']) != bool(auth['basic_password']):
        _fail(source, 'auth', 'basic_username and basic_password (or basic_password_file) go together')
    if not (auth['bearer_token'] or auth['basic_username']) and not auth['allow_anonymous']:
        _fail(source, 'auth', 'no credentials: set bearer_token(_file) and/or basic_username + basic_password(_file) '
                              '(or the INCIDENT_LAUNCHER_* environment variables), or allow_anonymous: true')
    tls = config['tls']
    if bool(tls['cert_file']) != bool(tls['key_file']):
        _fail(source, 'tls', 'cert_file and key_file go together')
    for key in ('cert_file', 'key_file', 'client_ca_file'):
        if tls[key]:
            tls[key] = resolve(tls[key])
            if not os.path.isfile(tls[key]):
                _fail(source, 'tls.' + key, 'no such file: %s' % tls[key])
    if tls['client_ca_file'] and not tls['cert_file']:
        _fail(source, 'tls.client_ca_file', 'needs cert_file and key_file')
    config['spool']['dir'] = resolve(config['spool']['dir'])
    config['spool']['rejection_log'] = resolve(config['spool']['rejection_log'])
    config['incident_store'] = resolve(config['incident_store'])
    config['collections_path'] = [resolve(item) if isinstance(item, str) else _fail(source, 'collections_path', 'expected paths')
                                  for item in config['collections_path']]
    if not NAMESPACE_RE.match(config['incident_namespace']):
        _fail(source, 'incident_namespace', '%r is not a Kubernetes namespace name' % config['incident_namespace'])
    if config['workers']['backoff_max'] < config['workers']['backoff_initial']:
        _fail(source, 'workers.backoff_max', 'must be >= workers.backoff_initial')
    backend = config['backend']
    if backend not in ('runner', 'awx', 'record'):
        _fail(source, 'backend', 'expected runner, awx or record, got %r' % backend)
    runner = config['runner']
    if not FQCN_RE.match(runner['playbook']):
        runner['playbook'] = resolve(runner['playbook'])
        if backend == 'runner' and not os.path.isfile(runner['playbook']):
            _fail(source, 'runner.playbook',
                  'expected a collection playbook (namespace.collection.name) or a playbook file; no such file: %s' % runner['playbook'])
    if runner['inventory']:
        runner['inventory'] = resolve(runner['inventory'])
        if backend == 'runner' and not os.path.exists(runner['inventory']):
            _fail(source, 'runner.inventory', 'no such file or directory: %s' % runner['inventory'])
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in runner['env'].items()):
        _fail(source, 'runner.env', 'expected a mapping of variable names to strings')
    awx = config['awx']
    if backend == 'awx':
        if not awx['url'] or not awx['url'].startswith(('http://', 'https://')):
            _fail(source, 'awx.url', 'expected the http(s) URL of AWX / Automation Controller')
        if not awx['token']:
            _fail(source, 'awx.token', 'required for the awx backend (or token_file, or INCIDENT_LAUNCHER_AWX_TOKEN)')
        if awx['job_template_id'] < 1:
            _fail(source, 'awx.job_template_id', 'required for the awx backend (the numeric id of the job template)')
    if not IDENTIFIER_RE.match(awx['payload_variable']):
        _fail(source, 'awx.payload_variable', 'expected an Ansible variable name')
    if awx['payload_variable'] in awx['extra_vars']:
        _fail(source, 'awx.extra_vars', 'must not set %s (the launcher sets it)' % awx['payload_variable'])
    awx['ca_file'] = resolve(awx['ca_file'])
    first = config['first_response']
    if first['kubeconfig']:
        first['kubeconfig'] = resolve(first['kubeconfig'])
    selector = first['pod_selector']
    if not selector or not all(isinstance(key, str) and isinstance(value, str) for key, value in selector.items()):
        _fail(source, 'first_response.pod_selector', 'expected a non-empty mapping of label names to values')
    return config
