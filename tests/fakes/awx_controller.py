# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small AWX / Automation Controller API (the /api/v2/ resources that awx.awx modules call), for tests.

On a free loopback port, in a thread. What it enforces, as AWX does:

- ``Authorization: Bearer <token>`` on every request (401 otherwise);
- list views answer ``{count, next, previous, results}`` and filter on query parameters
  (``name=``, ``organization=``, ``or__id=``/``or__name=``, ``<field>__name=``);
- unknown objects are 404, unknown fields of a write are 400, a duplicate name in the same
  organization (or globally for organizations) is 400;
- writes are PATCH on the object URL and POST ``{id}`` / ``{id, disassociate: true}`` on the
  association sub-lists (credentials, notification_templates_*); answers 204;
- secret fields (credential inputs of the type's ``secret`` fields, notification tokens and
  passwords, webhook headers) read back as ``$encrypted$``, as AWX returns them;
- read-only fields sent in a write (``managed`` of a credential type) are ignored, as Django REST framework does;
- custom credential types: ``kind`` is ``cloud`` or ``net``, every input field has an ``id`` and a ``label``, injectors
  are ``env`` / ``extra_vars`` / ``file`` and their templates render with the type's inputs (an undefined name is
  400); managed types cannot be changed (403); a job template holds one credential per type (vault excepted);
- a project gets a project update that is already successful (``summary_fields.current_update``);
- ``POST /job_templates/<id>/launch/`` makes a successful job; launch-time values the template does not
  ask for (``ask_variables_on_launch``, ...) are ignored and listed in ``ignored_fields``; jobs are listed
  with ``id__in`` (ansible-rulebook's job monitor); ``unified_job_templates`` lists job templates and
  projects.

Every request is recorded (method, path, query, body) for the tests; the stored secrets stay
available to tests through ``secret_values()``.
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import threading
import urllib.parse

import jinja2
import jinja2.sandbox

ENCRYPTED = '$encrypted$'

# resource -> (type name, writable fields, association sub-lists)
RESOURCES = {
    'organizations': ('organization', {'name', 'description', 'max_hosts', 'custom_virtualenv', 'default_environment'}, set()),
    'projects': ('project', {'name', 'description', 'organization', 'scm_type', 'scm_url', 'scm_branch', 'scm_refspec', 'credential',
                             'scm_clean', 'scm_delete_on_update', 'scm_track_submodules', 'scm_update_on_launch', 'scm_update_cache_timeout',
                             'allow_override', 'timeout', 'default_environment', 'local_path', 'signature_validation_credential',
                             'custom_virtualenv'}, {'notification_templates_error', 'notification_templates_success', 'notification_templates_started'}),
    'inventories': ('inventory', {'name', 'description', 'organization', 'variables', 'kind', 'host_filter', 'prevent_instance_group_fallback'},
                    {'instance_groups', 'labels', 'input_inventories'}),
    'credential_types': ('credential_type', {'name', 'description', 'kind', 'inputs', 'injectors'}, set()),
    'credentials': ('credential', {'name', 'description', 'organization', 'credential_type', 'inputs', 'user', 'team'}, set()),
    'execution_environments': ('execution_environment', {'name', 'description', 'image', 'organization', 'credential', 'pull'}, set()),
    'job_templates': ('job_template', {
        'name', 'description', 'organization', 'job_type', 'inventory', 'project', 'playbook', 'scm_branch', 'forks', 'limit', 'verbosity', 'extra_vars',
        'job_tags', 'force_handlers', 'skip_tags', 'start_at_task', 'timeout', 'use_fact_cache', 'execution_environment', 'host_config_key',
        'ask_scm_branch_on_launch', 'ask_diff_mode_on_launch', 'ask_variables_on_launch', 'ask_limit_on_launch', 'ask_tags_on_launch',
        'ask_skip_tags_on_launch', 'ask_job_type_on_launch', 'ask_verbosity_on_launch', 'ask_inventory_on_launch',
        'ask_credential_on_launch', 'ask_execution_environment_on_launch', 'ask_labels_on_launch', 'ask_forks_on_launch',
        'ask_job_slice_count_on_launch', 'ask_timeout_on_launch', 'ask_instance_groups_on_launch', 'survey_enabled',
        'become_enabled', 'diff_mode', 'allow_simultaneous', 'custom_virtualenv', 'job_slice_count', 'webhook_service',
        'webhook_credential', 'prevent_instance_group_fallback'},
        {'credentials', 'labels', 'instance_groups', 'notification_templates_error', 'notification_templates_success',
         'notification_templates_started'}),
    'schedules': ('schedule', {'name', 'description', 'rrule', 'enabled', 'unified_job_template', 'extra_data', 'inventory', 'scm_branch',
                               'job_type', 'job_tags', 'skip_tags', 'limit', 'diff_mode', 'verbosity', 'execution_environment', 'forks',
                               'job_slice_count', 'timeout'}, {'credentials', 'labels', 'instance_groups'}),
    'notification_templates': ('notification_template',
                               {'name', 'description', 'organization', 'notification_type', 'notification_configuration', 'messages'}, set()),
    'labels': ('label', {'name', 'organization'}, set()),
    'instance_groups': ('instance_group', {'name'}, set()),
    'project_updates': ('project_update', set(), set()),
    'jobs': ('job', set(), set()),
}
ASK_FIELDS = ('ask_limit_on_launch', 'ask_labels_on_launch', 'ask_inventory_on_launch', 'ask_variables_on_launch')
# fields that hold the id of another object, for <field>__name filters and summary_fields
REFERENCES = {'organization': 'organizations', 'project': 'projects', 'inventory': 'inventories', 'credential_type': 'credential_types',
              'execution_environment': 'execution_environments', 'unified_job_template': 'job_templates', 'credential': 'credentials'}
# fields AWX returns but ignores in a write (read-only in its serializers)
READ_ONLY = {'credential_types': {'managed'}}
ENV_NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
# fields whose values AWX never returns
NOTIFICATION_SECRETS = {'token', 'password', 'service_key', 'account_token', 'headers'}
BUILTIN_CREDENTIAL_TYPES = [
    {'name': 'OpenShift or Kubernetes API Bearer Token', 'kind': 'kubernetes', 'managed': True, 'namespace': 'kubernetes_bearer_token',
     'inputs': {'fields': [{'id': 'host', 'type': 'string'}, {'id': 'bearer_token', 'type': 'string', 'secret': True},
                           {'id': 'verify_ssl', 'type': 'boolean'}, {'id': 'ssl_ca_cert', 'type': 'string', 'secret': True}],
                'required': ['host', 'bearer_token']}},
    {'name': 'Vault', 'kind': 'vault', 'managed': True, 'namespace': 'vault',
     'inputs': {'fields': [{'id': 'vault_password', 'type': 'string', 'secret': True}, {'id': 'vault_id', 'type': 'string'}],
                'required': ['vault_password']}},
    {'name': 'Source Control', 'kind': 'scm', 'managed': True, 'namespace': 'scm',
     'inputs': {'fields': [{'id': 'username', 'type': 'string'}, {'id': 'password', 'type': 'string', 'secret': True},
                           {'id': 'ssh_key_data', 'type': 'string', 'secret': True}]}},
]


class FakeController:
    """The fake API server. ``start()`` returns it listening; ``url`` is its base URL."""

    def __init__(self, token):
        self.token = token
        self.lock = threading.Lock()
        self.objects = {name: {} for name in RESOURCES}
        self.associations = {}
        self.secrets = {}
        self.requests = []
        self.next_id = 1
        for credential_type in BUILTIN_CREDENTIAL_TYPES:
            self._store('credential_types', dict(credential_type, description='', injectors={}))
        self.server = None
        self.thread = None

    # -- lifecycle
    def start(self):
        controller = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
                controller.handle(self, 'GET')

            def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
                controller.handle(self, 'POST')

            def do_PATCH(self):  # noqa: N802  pylint: disable=invalid-name
                controller.handle(self, 'PATCH')

            def do_PUT(self):  # noqa: N802  pylint: disable=invalid-name
                controller.handle(self, 'PUT')

            def do_DELETE(self):  # noqa: N802  pylint: disable=invalid-name
                controller.handle(self, 'DELETE')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- test helpers
    def writes(self):
        return [r for r in self.requests if r['method'] in ('POST', 'PATCH', 'PUT', 'DELETE')]

    def find(self, resource, **fields):
        return [copy.deepcopy(o) for o in self.objects[resource].values() if all(o.get(k) == v for k, v in fields.items())]

    def one(self, resource, name):
        found = self.find(resource, name=name)
        assert len(found) == 1, '%s %r: found %d' % (resource, name, len(found))
        return found[0]

    def associated(self, resource, object_id, relation):
        return sorted(self.associations.get((resource, object_id, relation), set()))

    def secret_values(self):
        return copy.deepcopy(self.secrets)

    # -- storage
    def _store(self, resource, data):
        object_id = self.next_id
        self.next_id += 1
        kind = RESOURCES[resource][0]
        item = dict(data, id=object_id, type=kind, url='/api/v2/%s/%d/' % (resource, object_id),
                    created='2026-11-24T00:00:00Z', modified='2026-11-24T00:00:00Z')
        item['related'] = {relation: '/api/v2/%s/%d/%s/' % (resource, object_id, relation) for relation in RESOURCES[resource][2]}
        if resource == 'projects':
            item['related']['update'] = '/api/v2/projects/%d/update/' % object_id
        if resource == 'job_templates':
            item['related']['launch'] = '/api/v2/job_templates/%d/launch/' % object_id
            for field in ASK_FIELDS:
                item.setdefault(field, False)
        self.objects[resource][object_id] = item
        return item

    def _view(self, resource, item):
        view = copy.deepcopy(item)
        if resource == 'credentials':
            credential_type = self.objects['credential_types'].get(view.get('credential_type'), {})
            secret_fields = {f['id'] for f in credential_type.get('inputs', {}).get('fields', []) if f.get('secret')}
            view['inputs'] = {k: (ENCRYPTED if k in secret_fields and v else v) for k, v in (view.get('inputs') or {}).items()}
        if resource == 'notification_templates':
            view['notification_configuration'] = {k: (ENCRYPTED if k in NOTIFICATION_SECRETS and v else v)
                                                  for k, v in (view.get('notification_configuration') or {}).items()}
        summary = {}
        for field, target in REFERENCES.items():
            if isinstance(view.get(field), int) and view[field] in self.objects[target]:
                summary[field] = {'id': view[field], 'name': self.objects[target][view[field]].get('name')}
        if resource == 'projects' and item.get('_update'):
            summary['current_update'] = {'id': item['_update'], 'status': 'successful'}
        view['summary_fields'] = summary
        return {k: v for k, v in view.items() if not k.startswith('_')}

    def _matches(self, item, key, value):
        field, lookup = (key.split('__', 1) + [''])[:2]
        if lookup == 'name' and field in REFERENCES:
            target = self.objects[REFERENCES[field]].get(item.get(field))
            return target is not None and target.get('name') == value
        if lookup in ('', 'exact'):
            current = item.get(field)
            if isinstance(current, bool):
                return str(current).lower() == value.lower()
            return current is not None and str(current) == value
        if lookup == 'in':
            return str(item.get(field)) in value.split(',')
        if lookup == 'isnull':
            return (item.get(field) is None) == (value.lower() == 'true')
        raise ValueError('unsupported filter %s' % key)

    def _list(self, resource, query):
        items = list(self.objects[resource].values())
        either = {k[4:]: v for k, v in query.items() if k.startswith('or__')}
        plain = {k: v for k, v in query.items() if not k.startswith('or__') and k not in ('page', 'page_size', 'order_by')}
        items = [i for i in items if all(self._matches(i, k, v) for k, v in plain.items())]
        if either:
            items = [i for i in items if any(self._matches(i, k, v) for k, v in either.items())]
        return items

    # -- HTTP
    def handle(self, handler, method):
        parsed = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        length = int(handler.headers.get('Content-Length') or 0)
        raw = handler.rfile.read(length) if length else b''
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        with self.lock:
            self.requests.append({'method': method, 'path': parsed.path, 'query': query, 'body': body,
                                  'authorization': handler.headers.get('Authorization', '')})
            if handler.headers.get('Authorization', '') != 'Bearer ' + self.token:
                status, answer = 401, {'detail': 'Authentication credentials were not provided.'}
            elif body is None:
                status, answer = 400, {'detail': 'JSON parse error'}
            else:
                try:
                    status, answer = self.route(method, parsed.path, query, body)
                except ValueError as exc:
                    status, answer = 400, {'detail': str(exc)}
        payload = b'' if answer is None else json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header('X-API-Product-Name', 'AWX')
        handler.send_header('X-API-Product-Version', '24.6.1')
        if answer is not None:
            handler.send_header('Content-Type', 'application/json')
        handler.send_header('Content-Length', str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def route(self, method, path, query, body):
        parts = [p for p in path.split('/') if p]
        if parts[:2] != ['api', 'v2']:
            return 404, {'detail': 'Not found.'}
        parts = parts[2:]
        if parts == ['ping'] or parts == ['config']:
            return 200, {'version': '24.6.1', 'active_node': 'fake'}
        if parts == ['me']:
            return 200, {'count': 1, 'next': None, 'previous': None, 'results': [{'id': 1, 'username': 'admin', 'is_superuser': True}]}
        if parts == ['unified_job_templates'] and method == 'GET':
            results = [self._view(resource, i) for resource in ('job_templates', 'projects') for i in self._list(resource, query)]
            return 200, {'count': len(results), 'next': None, 'previous': None, 'results': results}
        if not parts or parts[0] not in RESOURCES:
            return 404, {'detail': 'Not found.'}
        resource = parts[0]
        if len(parts) == 1:
            if method == 'GET':
                results = [self._view(resource, i) for i in self._list(resource, query)]
                return 200, {'count': len(results), 'next': None, 'previous': None, 'results': results}
            if method == 'POST':
                return self._create(resource, body)
            return 405, {'detail': 'Method "%s" not allowed.' % method}
        if not parts[1].isdigit() or int(parts[1]) not in self.objects[resource]:
            return 404, {'detail': 'Not found.'}
        object_id = int(parts[1])
        item = self.objects[resource][object_id]
        if len(parts) == 2:
            if method == 'GET':
                return 200, self._view(resource, item)
            if method == 'PATCH':
                return self._update(resource, item, body)
            if method == 'DELETE':
                del self.objects[resource][object_id]
                return 204, None
            return 405, {'detail': 'Method "%s" not allowed.' % method}
        relation = parts[2]
        if resource == 'job_templates' and relation == 'launch' and len(parts) == 3 and method == 'POST':
            return self._launch(item, body)
        if resource == 'job_templates' and relation == 'schedules' and len(parts) == 3:
            if method == 'POST':
                return self._create('schedules', dict(body, unified_job_template=object_id))
            results = [self._view('schedules', s) for s in self.objects['schedules'].values() if s.get('unified_job_template') == object_id]
            return 200, {'count': len(results), 'next': None, 'previous': None, 'results': results}
        if relation not in RESOURCES[resource][2] or len(parts) != 3:
            return 404, {'detail': 'Not found.'}
        key = (resource, object_id, relation)
        if method == 'GET':
            target = relation if relation in ('credentials', 'labels', 'instance_groups') else 'notification_templates'
            results = [self._view(target, self.objects[target][i]) for i in sorted(self.associations.get(key, set()))
                       if i in self.objects[target]]
            return 200, {'count': len(results), 'next': None, 'previous': None, 'results': results}
        if method == 'POST':
            other = body.get('id')
            if not isinstance(other, int):
                raise ValueError('id: an integer is required')
            if body.get('disassociate'):
                self.associations.get(key, set()).discard(other)
            else:
                self._check_association(key, other)
                self.associations.setdefault(key, set()).add(other)
            return 204, None
        return 405, {'detail': 'Method "%s" not allowed.' % method}

    def _check_association(self, key, other):
        """A job template (or schedule) holds one credential of each type, vault credentials excepted."""
        if key[2] != 'credentials':
            return
        credential = self.objects['credentials'].get(other)
        if credential is None:
            raise ValueError('id: invalid pk "%s" - object does not exist.' % other)
        kind = self.objects['credential_types'][credential['credential_type']].get('kind')
        for existing in self.associations.get(key, set()) - {other}:
            held = self.objects['credentials'].get(existing)
            if held and held['credential_type'] == credential['credential_type'] and kind != 'vault':
                raise ValueError('Cannot assign multiple %s credentials.' % self.objects['credential_types'][credential['credential_type']]['name'])

    def _launch(self, template, body):
        """A job of the template; launch-time values the template does not ask for are ignored, as AWX does."""
        asked = {'extra_vars': 'ask_variables_on_launch', 'limit': 'ask_limit_on_launch', 'inventory': 'ask_inventory_on_launch',
                 'labels': 'ask_labels_on_launch'}
        ignored = {key: value for key, value in body.items() if key not in asked or not template.get(asked[key])}
        extra_vars = body.get('extra_vars', {}) if 'extra_vars' not in ignored else {}
        if isinstance(extra_vars, str):
            extra_vars = json.loads(extra_vars or '{}')
        job = self._store('jobs', {'name': template['name'], 'job_template': template['id'], 'status': 'successful', 'failed': False,
                                   'finished': '2026-11-24T00:00:03Z', 'extra_vars': json.dumps(extra_vars), 'launch_type': 'manual',
                                   'limit': body.get('limit', '') if 'limit' not in ignored else ''})
        return 201, dict(self._view('jobs', job), job=job['id'], ignored_fields=ignored)

    def launches(self):
        """The jobs launched, oldest first, with their extra vars decoded."""
        return [dict(copy.deepcopy(job), extra_vars=json.loads(job['extra_vars'])) for job in self.objects['jobs'].values()]

    def _check_credential_type(self, data):
        """What AWX's CredentialType validation refuses (kind, the inputs schema, injectors that do not render)."""
        if data.get('kind') not in ('cloud', 'net'):
            raise ValueError("kind: Must be 'cloud' or 'net', not %s" % data.get('kind'))
        inputs = data.get('inputs') or {}
        fields = inputs.get('fields', []) if isinstance(inputs, dict) else None
        if not isinstance(fields, list) or not all(isinstance(f, dict) and f.get('id') and f.get('label') for f in fields):
            raise ValueError('inputs: every field needs an id and a label')
        injectors = data.get('injectors') or {}
        if not isinstance(injectors, dict) or set(injectors) - {'env', 'extra_vars', 'file'}:
            raise ValueError('injectors: only env, extra_vars and file are allowed')
        context = {f['id']: ('false' if f.get('type') == 'boolean' else 'x') for f in fields}
        environment = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
        for section in ('env', 'extra_vars'):
            for name, template in (injectors.get(section) or {}).items():
                if section == 'env' and not ENV_NAME_RE.match(name):
                    raise ValueError('injectors: %s is not a valid environment variable name' % name)
                try:
                    environment.from_string(str(template)).render(**context)
                except jinja2.TemplateError as exc:
                    raise ValueError('injectors: %s: %s' % (name, exc)) from None

    def _check(self, resource, data, item=None):
        allowed = RESOURCES[resource][1]
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError('unknown field(s) for %s: %s' % (resource, ', '.join(unknown)))
        for field, target in REFERENCES.items():
            if data.get(field) is not None and field in allowed:
                if not isinstance(data[field], int) or data[field] not in self.objects[target]:
                    raise ValueError('%s: invalid pk "%s" - object does not exist.' % (field, data[field]))
        name = data.get('name', item.get('name') if item else None)
        if not name and resource != 'project_updates':
            raise ValueError('name: this field may not be blank.')
        organization = data.get('organization', item.get('organization') if item else None)
        for other in self.objects[resource].values():
            same_scope = resource == 'organizations' or other.get('organization') == organization
            if other is not item and other.get('name') == name and same_scope and resource not in ('schedules', 'credential_types', 'jobs'):
                raise ValueError('%s with this name and organization already exists.' % RESOURCES[resource][0])
        if resource == 'credentials' and 'inputs' in data:
            credential_type = self.objects['credential_types'][data.get('credential_type', item.get('credential_type') if item else None)]
            fields = {f['id'] for f in credential_type['inputs']['fields']}
            bad = sorted(set(data['inputs']) - fields)
            if bad:
                raise ValueError('inputs: unknown field(s) %s' % ', '.join(bad))
            missing = [f for f in credential_type['inputs'].get('required', []) if not data['inputs'].get(f)]
            if missing:
                raise ValueError('inputs: required field(s) missing: %s' % ', '.join(missing))
        if resource == 'credential_types':
            self._check_credential_type(dict(item or {}, **data))
        if resource == 'schedules':
            rrule = data.get('rrule', item.get('rrule') if item else '')
            if 'DTSTART' not in rrule or 'RRULE:' not in rrule:
                raise ValueError('rrule: a DTSTART and an RRULE are required')

    def _keep_secrets(self, resource, object_id, data):
        if resource == 'credentials' and 'inputs' in data:
            self.secrets.setdefault(('credentials', object_id), {}).update(data['inputs'])
        if resource == 'notification_templates' and 'notification_configuration' in data:
            self.secrets.setdefault(('notification_templates', object_id), {}).update(data['notification_configuration'])

    def _create(self, resource, data):
        if resource in ('project_updates',):
            return 405, {'detail': 'Method "POST" not allowed.'}
        data = {k: v for k, v in data.items() if k not in READ_ONLY.get(resource, ())}
        self._check(resource, data)
        if resource == 'credential_types':
            data = dict(data, managed=False)
        item = self._store(resource, data)
        self._keep_secrets(resource, item['id'], data)
        if resource == 'projects':
            update = self._store('project_updates', {'name': data['name'], 'status': 'successful', 'failed': False, 'finished': '2026-11-24T00:00:01Z',
                                                     'project': item['id']})
            item['_update'] = update['id']
            item['scm_revision'] = '0' * 40
        return 201, self._view(resource, item)

    def _update(self, resource, item, data):
        if resource == 'credential_types' and item.get('managed'):
            return 403, {'detail': 'Modifications not allowed for managed credential types'}
        data = {k: v for k, v in data.items() if k not in READ_ONLY.get(resource, ())}
        self._check(resource, data, item)
        for key, value in data.items():
            if key == 'inputs' and resource == 'credentials':
                # $encrypted$ sent back keeps the stored secret
                value = {k: (item.get('inputs', {}).get(k) if v == ENCRYPTED else v) for k, v in value.items()}
            item[key] = value
        self._keep_secrets(resource, item['id'], data)
        item['modified'] = '2026-11-24T00:00:02Z'
        return 200, self._view(resource, item)
