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
import ipaddress
import os
import re

import yaml

from incident_launcher import LauncherError

FQCN_RE = re.compile(r'^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+$')
NAMESPACE_RE = re.compile(r'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
IDENTIFIER_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,63}$')
DEPLOYMENT_RE = re.compile(r'^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')
ALERTNAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,199}$')
SPOOL_GROUP_RE = re.compile(r'^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$')

ENV_SECRETS = {
    'INCIDENT_LAUNCHER_BEARER_TOKEN': ('auth', 'bearer_token'),
    'INCIDENT_LAUNCHER_BASIC_USERNAME': ('auth', 'basic_username'),
    'INCIDENT_LAUNCHER_BASIC_PASSWORD': ('auth', 'basic_password'),
    'INCIDENT_LAUNCHER_AWX_TOKEN': ('awx', 'token'),
}
SECRET_FILES = {('auth', 'bearer_token'): 'bearer_token_file', ('auth', 'basic_password'): 'basic_password_file',
                ('awx', 'token'): 'token_file'}
SECRETS = {('auth', 'bearer_token'), ('auth', 'basic_password'), ('awx', 'token')}
CREDENTIALS = (('auth', 'bearer_token'), ('auth', 'basic_username'), ('auth', 'basic_password'), ('awx', 'token'))

# The incident record's caps (plugins/module_utils/alertmanager.py, Limits()): the launcher may lower them, never raise them.
# Written out here because the configuration is read before the collection is importable (collections_path).
RECORD_LIMITS = {'max_labels': 128, 'max_string': 16384}

STR, OPT_STR, INT, NUM, BOOL, MAP, LIST = 'str', 'optional str', 'int', 'number', 'bool', 'map', 'list'

# key: (kind, default, minimum) -- sections are nested dicts.
SCHEMA = {
    'listen': {'address': (STR, '127.0.0.1', None), 'port': (INT, 10341, 0), 'insecure_plain_http': (BOOL, False, None),
               'insecure_anonymous': (BOOL, False, None)},
    'tls': {'cert_file': (OPT_STR, None, None), 'key_file': (OPT_STR, None, None), 'client_ca_file': (OPT_STR, None, None)},
    'auth': {'bearer_token': (OPT_STR, None, None), 'bearer_token_file': (OPT_STR, None, None),
             'basic_username': (OPT_STR, None, None), 'basic_password': (OPT_STR, None, None),
             'basic_password_file': (OPT_STR, None, None), 'allow_anonymous': (BOOL, False, None)},
    'limits': {'max_body_bytes': (INT, 1048576, 1024), 'max_depth': (INT, 8, 5), 'max_items': (INT, 1000, 1),
               'max_alerts': (INT, 1000, 1), 'max_labels': (INT, 128, 1), 'max_string': (INT, 16384, 64),
               'request_timeout': (NUM, 10.0, 0.1), 'keepalive_timeout': (NUM, 75.0, 1), 'max_connections': (INT, 1024, 16),
               'max_connections_per_peer': (INT, 128, 1), 'max_header_bytes': (INT, 32768, 4096),
               'max_body_memory': (INT, 33554432, 1024)},
    'spool': {'dir': (STR, '/var/lib/incident-launcher/spool', None), 'max_pending': (INT, 10000, 1),
              'done_retention': (NUM, 86400.0, 0), 'rejection_log': (OPT_STR, None, None),
              'rejection_log_max_bytes': (INT, 10485760, 4096), 'rejection_log_backups': (INT, 5, 1),
              # kubernetes: the accepted alerts are ConfigMaps in store.namespace, shared by the replicas of one group
              # (clusterspool.py); dir then keeps only run work directories and the rejection log.
              'backend': (STR, 'file', None), 'group': (STR, 'incident-launcher', None), 'claim_ttl': (NUM, 30.0, 3),
              'scan_interval': (NUM, 5.0, 0.1)},
    # Where the incident records are: file (incident_store) or kubernetes (Incident objects in store.namespace).
    'store': {'backend': (STR, 'file', None), 'namespace': (STR, 'incident-response', None), 'kubeconfig': (OPT_STR, None, None),
              'context': (OPT_STR, None, None), 'request_timeout': (NUM, 30.0, 0.1)},
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
    'incident_deployment': (STR, 'slurm-exporter', None),
    # Must match the inventory's incident_correlation (same keys: enabled, cooldown, related).
    'correlation': (MAP, {}, None),
    'catalog': (MAP, {}, None),
    'first_response': {'enabled': (BOOL, False, None), 'kubeconfig': (OPT_STR, None, None), 'context': (OPT_STR, None, None),
                       'pod_selector': (MAP, {'app': 'slurm-exporter'}, None), 'allow_ingress': (LIST, [], None),
                       'allow_egress': (LIST, [], None), 'request_timeout': (NUM, 30.0, 0.1), 'alertnames': (LIST, [], None)},
    'collections_path': (LIST, [], None),
    'log_level': (STR, 'info', None),
    # People in the loop (inbound.py, docs/people.md): signed requests from Slack and PagerDuty.
    'inbound': {
        'max_body_bytes': (INT, 262144, 1024), 'lock_timeout': (NUM, 2.0, 0.1),
        'slack': {'signing_secrets': (LIST, [], None), 'signing_secrets_file': (OPT_STR, None, None), 'replay_window': (NUM, 300.0, 1),
                  'users': (LIST, [], None), 'approvers': (LIST, [], None), 'bot_token': (OPT_STR, None, None),
                  'bot_token_file': (OPT_STR, None, None), 'api_url': (STR, 'https://slack.com/api', None),
                  'response_url_prefixes': (LIST, ['https://hooks.slack.com/'], None), 'command': (STR, '/incident', None),
                  'request_timeout': (NUM, 2.5, 0.1)},
        'pagerduty': {'webhook_secrets': (LIST, [], None), 'webhook_secrets_file': (OPT_STR, None, None), 'max_age': (NUM, 1800.0, 60),
                      'users': (LIST, [], None), 'approvers': (LIST, [], None)},
    },
}

# Inbound secrets: lists (several during a rotation), from the file (one per line), the environment (comma-separated)
# or the configuration; never echoed.
INBOUND_SECRETS = {
    ('inbound', 'slack', 'signing_secrets'): ('signing_secrets_file', 'INCIDENT_LAUNCHER_SLACK_SIGNING_SECRETS'),
    ('inbound', 'pagerduty', 'webhook_secrets'): ('webhook_secrets_file', 'INCIDENT_LAUNCHER_PAGERDUTY_WEBHOOK_SECRETS'),
}
MIN_SIGNING_SECRET = 16
SLACK_USER_RE = re.compile(r'^[UW][A-Z0-9]{2,20}$')
PAGERDUTY_USER_RE = re.compile(r'^[A-Z0-9]{2,32}$')
SLASH_COMMAND_RE = re.compile(r'^/[a-z0-9_-]{1,31}$')


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
            secret = tuple(path.split('.')) in SECRETS or tuple(path.split('.')) in INBOUND_SECRETS \
                or path == 'inbound.slack.bot_token'
            result[key] = _check(source, path, data[key], spec, secret) if key in data else copy.deepcopy(spec[1])
    return result


def _credential(source, where, value, key):
    """Refuse a credential that can never match what a client sends (blank, padded, control characters)."""
    if not value.strip():
        _fail(source, where, 'is blank: every request would be refused with 401 (and Alertmanager does not retry a 4xx)')
    if value != value.strip():
        _fail(source, where, 'starts or ends with whitespace, which no client can send in an Authorization header; remove it')
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        _fail(source, where, 'contains control characters, which an HTTP header cannot carry')
    if key == 'basic_username' and ':' in value:
        _fail(source, where, 'contains ":", which basic authentication cannot carry in a user name')


def is_loopback(address):
    """True for 127.0.0.0/8, ::1 and localhost; 0.0.0.0, :: and every other address or name is a network address."""
    if address == 'localhost':
        return True
    try:
        return ipaddress.ip_address(address.strip('[]')).is_loopback
    except ValueError:
        return False


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
    inbound = data.get('inbound') if isinstance(data.get('inbound'), dict) else {}
    for (_section, sub, key) in list(INBOUND_SECRETS) + [('inbound', 'slack', 'bot_token')]:
        if isinstance(inbound.get(sub), dict) and inbound[sub].get(key):
            inline.append('inbound.%s.%s' % (sub, key))
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
    config['warnings'] = [text for text in (secrets_exposed(path, data or {}),) if text] + config['warnings']
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
        # An empty variable counts as unset; one that holds only spaces is a mistake, not a credential.
        if environ.get(variable):
            _credential(source, 'environment variable %s' % variable, environ[variable], key)
            config[section][key] = environ[variable]
    for section, key in CREDENTIALS:
        if config[section][key] is not None:
            _credential(source, '%s.%s' % (section, key), config[section][key], key)
    config['warnings'] = []
    _inbound(source, config, environ, resolve)
    _semantics(source, config, resolve)
    return config


def _signing_secret(source, where, value):
    """Refuse a signing secret that cannot be one (blank, padded, control characters, too short); never echo it."""
    if not isinstance(value, str) or not value.strip():
        _fail(source, where, 'is blank: every signed request would be refused')
    if value != value.strip() or any(ord(char) < 33 or ord(char) == 127 or char == ',' for char in value):
        _fail(source, where, 'holds blanks, commas or control characters, which a signing secret does not')
    if len(value) < MIN_SIGNING_SECRET:
        _fail(source, where, 'is %d characters long: too short for a signing secret (at least %d)' % (len(value), MIN_SIGNING_SECRET))
    return value


def _inbound(source, config, environ, resolve):
    """The inbound secrets (file, environment or configuration, one source each) and settings."""
    for (section, sub, key), (file_key, variable) in INBOUND_SECRETS.items():
        settings = config[section][sub]
        path = '%s.%s.%s' % (section, sub, key)
        given = [name for name, present in ((key, bool(settings[key])), (file_key, bool(settings[file_key])),
                                            ('environment variable ' + variable, bool(environ.get(variable)))) if present]
        if len(given) > 1:
            _fail(source, path, 'give the secrets once: %s' % ' or '.join(given))
        if settings[file_key]:
            filename = resolve(settings[file_key])
            try:
                with open(filename, encoding='utf-8') as handle:
                    lines = [line.strip() for line in handle.read().splitlines()]
            except OSError as exc:
                _fail(source, '%s.%s.%s' % (section, sub, file_key), 'cannot read %s: %s' % (filename, exc.strerror or exc))
            values = [line for line in lines if line]
            if not values:
                _fail(source, '%s.%s.%s' % (section, sub, file_key), '%s holds no secret' % filename)
            where = '%s.%s.%s' % (section, sub, file_key)
        elif environ.get(variable):
            values = [item.strip() for item in environ[variable].split(',')]
            where = 'environment variable %s' % variable
        else:
            values = settings[key]
            where = path
        settings[key] = [_signing_secret(source, '%s[%d]' % (where, index), value) for index, value in enumerate(values)]
    slack = config['inbound']['slack']
    if slack['bot_token_file']:
        if slack['bot_token']:
            _fail(source, 'inbound.slack.bot_token_file', 'give bot_token or bot_token_file, not both')
        slack['bot_token'] = _read_secret(source, 'inbound.slack.bot_token_file', resolve(slack['bot_token_file']))
    if environ.get('INCIDENT_LAUNCHER_SLACK_BOT_TOKEN'):
        slack['bot_token'] = environ['INCIDENT_LAUNCHER_SLACK_BOT_TOKEN']
    if slack['bot_token'] is not None:
        _credential(source, 'inbound.slack.bot_token', slack['bot_token'], 'bot_token')
    if slack['replay_window'] > 300:
        _fail(source, 'inbound.slack.replay_window', 'at most 300 s (Slack: five minutes), got %g' % slack['replay_window'])
    if not SLASH_COMMAND_RE.fullmatch(slack['command']):
        _fail(source, 'inbound.slack.command', 'expected a slash command such as /incident')
    if not slack['api_url'].startswith(('https://', 'http://')):
        _fail(source, 'inbound.slack.api_url', 'expected an http(s) URL')
    if not all(isinstance(item, str) and item.startswith(('https://', 'http://')) and item.count('/') >= 3
               for item in slack['response_url_prefixes']):
        _fail(source, 'inbound.slack.response_url_prefixes', 'expected http(s) URL prefixes ending in a path, such as https://hooks.slack.com/')
    for sub, pattern, example in (('slack', SLACK_USER_RE, 'Slack user ids such as U0123ABCD'),
                                  ('pagerduty', PAGERDUTY_USER_RE, 'PagerDuty user ids such as PLH1HKV')):
        for key in ('users', 'approvers'):
            if not all(isinstance(item, str) and pattern.fullmatch(item) for item in config['inbound'][sub][key]):
                _fail(source, 'inbound.%s.%s' % (sub, key), 'expected %s' % example)
    if config['inbound']['max_body_bytes'] > config['limits']['max_body_memory']:
        _fail(source, 'inbound.max_body_bytes', 'must be <= limits.max_body_memory')


def _exposure(source, config):
    """Anonymous intake, or credentials over plain HTTP, on a network address only with an explicit insecure_* opt-in."""
    listen, auth, tls = config['listen'], config['auth'], config['tls']
    warnings = config['warnings']
    if is_loopback(listen['address']):
        return
    credentials = bool(auth['bearer_token'] or auth['basic_username'])
    if not credentials and not listen['insecure_anonymous']:
        _fail(source, 'auth.allow_anonymous', 'anyone who can reach %s could post alerts (and trigger isolation): set credentials, '
                                              'listen on a loopback address, or set listen.insecure_anonymous: true' % listen['address'])
    if not credentials:
        warnings.append('listen.insecure_anonymous: anyone who can reach %s:%s can post alerts without credentials'
                        % (listen['address'], listen['port']))
    if credentials and not tls['cert_file'] and not listen['insecure_plain_http']:
        _fail(source, 'tls', 'the credentials would cross the network in clear text to %s: set tls.cert_file and tls.key_file, listen on a '
                             'loopback address, or set listen.insecure_plain_http: true (e.g. behind a NetworkPolicy in a cluster)'
                             % listen['address'])
    if credentials and not tls['cert_file']:
        warnings.append('listen.insecure_plain_http: credentials reach %s:%s over plain HTTP' % (listen['address'], listen['port']))


def _limits(source, limits):
    for key, maximum in RECORD_LIMITS.items():
        if limits[key] > maximum:
            _fail(source, 'limits.' + key, 'at most %d (what the incident record accepts), got %d' % (maximum, limits[key]))
    if limits['max_body_memory'] < limits['max_body_bytes']:
        _fail(source, 'limits.max_body_memory', 'must be >= limits.max_body_bytes')
    if limits['max_connections_per_peer'] > limits['max_connections']:
        _fail(source, 'limits.max_connections_per_peer', 'must be <= limits.max_connections')


def _store(source, config, resolve):
    store = config['store']
    if store['backend'] not in ('file', 'kubernetes'):
        _fail(source, 'store.backend', 'expected file or kubernetes, got %r' % store['backend'])
    if not NAMESPACE_RE.match(store['namespace']):
        _fail(source, 'store.namespace', '%r is not a Kubernetes namespace name' % store['namespace'])
    if store['kubeconfig']:
        store['kubeconfig'] = resolve(store['kubeconfig'])
    spool = config['spool']
    if spool['backend'] not in ('file', 'kubernetes'):
        _fail(source, 'spool.backend', 'expected file or kubernetes, got %r' % spool['backend'])
    if spool['backend'] == 'kubernetes':
        if store['backend'] != 'kubernetes':
            _fail(source, 'spool.backend', 'kubernetes (several replicas) needs the incident records in the cluster too: '
                  'set store.backend: kubernetes')
        if not SPOOL_GROUP_RE.match(spool['group']):
            _fail(source, 'spool.group', 'expected a lower-case name of at most 40 characters (a-z, 0-9, -), got %r' % spool['group'])
        if spool['scan_interval'] > spool['claim_ttl']:
            _fail(source, 'spool.scan_interval', 'must not be longer than spool.claim_ttl (%g s), got %g'
                  % (spool['claim_ttl'], spool['scan_interval']))


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
    _exposure(source, config)
    _limits(source, config['limits'])
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
    if not DEPLOYMENT_RE.match(config['incident_deployment']):
        _fail(source, 'incident_deployment', '%r is not a Kubernetes object name' % config['incident_deployment'])
    if config['workers']['backoff_max'] < config['workers']['backoff_initial']:
        _fail(source, 'workers.backoff_max', 'must be >= workers.backoff_initial')
    _store(source, config, resolve)
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
    if not all(isinstance(name, str) and ALERTNAME_RE.match(name) for name in first['alertnames']):
        _fail(source, 'first_response.alertnames', 'expected a list of alert names ([A-Za-z_][A-Za-z0-9_]*)')
    selector = first['pod_selector']
    if not selector or not all(isinstance(key, str) and isinstance(value, str) for key, value in selector.items()):
        _fail(source, 'first_response.pod_selector', 'expected a non-empty mapping of label names to values')
    return config
