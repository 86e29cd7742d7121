# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Event source: Alertmanager webhooks (payload version 4), one event per alert.

ansible-rulebook ships ``eda.builtin.webhook``, but it listens on 0.0.0.0 by default, compares the
bearer token with ``!=``, has no health route and no payload validation. This source:

- listens on 127.0.0.1 unless told otherwise;
- requires a bearer token, compared in constant time (``hmac.compare_digest``) in a middleware,
  on every route but ``GET /healthz``;
- caps the body size (413 above ``max_body_bytes``) and the alerts per payload (``max_alerts``);
- validates its arguments before it binds, and every payload before it queues anything, with the
  collection's Alertmanager contract (plugins/module_utils/alertmanager.py, the rules of the webhook
  launcher and the incident record): a payload with one bad alert (a bad ``startsAt`` included) or
  nested too deeply is rejected whole with 400 and the reason is logged: nothing half-accepted;
- puts one event per alert on the queue::

    alert:     the alert, validated and normalised (status, labels, annotations, startsAt, endsAt,
               generatorURL, fingerprint in lower case)
    response:  what the response playbook gets (use ``var_root: response`` in the action):
               alert_payload_b64  a one-alert Alertmanager payload, JSON then base64
               fingerprint, status, incident_type (validated; safe to print)
    meta:      receiver, externalURL, groupKey of the payload; endpoint

The alert's labels and annotations can carry text such as ``{{ lookup('pipe', 'id') }}``. ansible-core
treats extra vars as trusted templates, so they must never reach a playbook as plain strings: the
base64 form contains no template markers, and ``var_root: response`` keeps the raw event out of the
``ansible_eda`` variable that ansible-rulebook adds to the extra vars (see docs/eda.md).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import os
import re
import sys

from aiohttp import web

COLLECTION_DIRS = ('ansible_collections', 'slurm_exporter', 'incident_response')
if not any(os.path.isdir(os.path.join(entry or '.', *COLLECTION_DIRS)) for entry in sys.path):
    # ansible-rulebook runs a source as a file (runpy), from the collection where ansible-galaxy put it, which is not
    # on sys.path: add the collections root this very file sits in (<root>/ansible_collections/slurm_exporter/
    # incident_response/extensions/eda/plugins/event_source/), so that the collection's own code imports normally.
    # (ansible-core's collection loader would do it too, but its path hook breaks ansible-rulebook's runpy loading
    # of the event filters that come after the source.)
    _PARTS = os.path.abspath(__file__).split(os.sep)
    if tuple(_PARTS[-8:-1]) == COLLECTION_DIRS + ('extensions', 'eda', 'plugins', 'event_source'):
        sys.path.append(os.sep.join(_PARTS[:-8]) or os.sep)

# pylint: disable-next=wrong-import-position
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import alertmanager as contract  # noqa: E402

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager webhooks, one event per alert
description:
  - Accepts Alertmanager webhook payloads (version 4) with a bearer token and puts one event per alert
    on the queue, with the alert, a base64 one-alert payload for the response playbook, and the
    payload's receiver, externalURL and groupKey in meta.
  - C(GET /healthz) answers without authentication; every other request needs the token.
options:
  host:
    description: Address to listen on.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port to listen on.
    type: int
    required: true
  path:
    description: Path that accepts the webhooks (POST).
    type: str
    default: /webhook
  token:
    description: Bearer token Alertmanager sends (C(http_config.authorization.credentials)).
    type: str
    required: true
  max_body_bytes:
    description: Largest accepted body; larger ones are refused with 413.
    type: int
    default: 1048576
  max_alerts:
    description: Most alerts in one payload; a payload with more is refused whole with 400 (Alertmanager's
      C(max_alerts) of the webhook receiver can cap what it sends).
    type: int
    default: 1000
"""

EXAMPLES = r"""
- slurm_exporter.incident_response.alertmanager:
    host: 127.0.0.1
    port: 10341
    token: "{{ incident_webhook_token }}"
"""

LOGGER = logging.getLogger(__name__)
SAFE_VALUE = re.compile(r'^[A-Za-z0-9_.:-]{0,128}$')
ARGS = {
    'host': (str, '127.0.0.1'),
    'port': (int, None),
    'path': (str, '/webhook'),
    'token': (str, None),
    'max_body_bytes': (int, 1024 * 1024),
    'max_alerts': (int, contract.DEFAULT_LIMITS.max_alerts),
}

CONFIG = web.AppKey('config', dict)
QUEUE = web.AppKey('queue', asyncio.Queue)


PayloadError = contract.PayloadError


def validate_args(args):
    """The plugin's arguments with defaults filled in; ValueError naming the bad one."""
    unknown = sorted(set(args or {}) - set(ARGS))
    if unknown:
        raise ValueError('alertmanager: unknown argument(s) %s (known: %s)' % (', '.join(unknown), ', '.join(sorted(ARGS))))
    config = {}
    for name, (kind, default) in ARGS.items():
        value = (args or {}).get(name, default)
        if value is None:
            raise ValueError('alertmanager: argument %s is required' % name)
        if kind is int and isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError('alertmanager: argument %s must be a %s, got %s' % (name, kind.__name__, type(value).__name__))
        config[name] = value
    if not 1 <= config['port'] <= 65535:
        raise ValueError('alertmanager: port must be between 1 and 65535, got %d' % config['port'])
    if not config['path'].startswith('/') or config['path'] == '/healthz':
        raise ValueError('alertmanager: path must start with / and not be /healthz, got %r' % config['path'])
    token = config['token']
    if not token.strip():
        raise ValueError('alertmanager: token must not be empty')
    if token != token.strip() or any(ord(char) < 32 or ord(char) == 127 for char in token):
        raise ValueError('alertmanager: token must not start or end with whitespace or hold control characters '
                         '(no client can send it in an Authorization header)')
    if not 1 <= config['max_alerts'] <= contract.DEFAULT_LIMITS.max_alerts:
        raise ValueError('alertmanager: max_alerts must be between 1 and %d, got %d' % (contract.DEFAULT_LIMITS.max_alerts, config['max_alerts']))
    if config['max_body_bytes'] < 1024:
        raise ValueError('alertmanager: max_body_bytes must be at least 1024, got %d' % config['max_body_bytes'])
    if not config['host'].strip():
        raise ValueError('alertmanager: host must not be empty')
    return config


def limits(config):
    """The contract's caps with this source's body size and alerts per payload."""
    return contract.Limits(max_body_bytes=config['max_body_bytes'], max_alerts=config['max_alerts'])


def split_payload(payload, endpoint='/webhook', caps=contract.DEFAULT_LIMITS):
    """The events for one Alertmanager payload (parsed JSON), or PayloadError when any part of it is malformed."""
    contract.check_shape(payload, caps)
    envelope, alerts = contract.validate_payload(payload, caps)
    meta = {'endpoint': endpoint}
    meta.update({key: envelope[key] for key in ('receiver', 'externalURL', 'groupKey') if envelope[key]})
    events = []
    for alert in alerts:
        incident_type = alert['labels'].get('incident_type', '')
        single = contract.one_alert_payload(envelope, alert)
        events.append({
            'alert': alert,
            'response': {
                'alert_payload_b64': base64.b64encode(json.dumps(single, sort_keys=True).encode('utf-8')).decode('ascii'),
                'fingerprint': alert['fingerprint'],
                'status': alert['status'],
                # only a plain identifier: anything else is left to the catalog, which reads the payload
                'incident_type': incident_type if SAFE_VALUE.match(incident_type) else '',
            },
            'meta': dict(meta),
        })
    return events


def read_events(body, endpoint='/webhook', caps=contract.DEFAULT_LIMITS):
    """Bytes of a webhook request -> its events (the contract's parse, never a RecursionError), or PayloadError."""
    return split_payload(contract.parse(body, caps), endpoint, caps)


def _authorized(request):
    scheme, credentials = (request.headers.get('Authorization', '').split(' ', 1) + [''])[:2]
    if scheme.lower() != 'bearer':
        return False
    expected = request.app[CONFIG]['token'].encode('utf-8')
    return hmac.compare_digest(credentials.strip().encode('utf-8'), expected)


@web.middleware
async def bearer_auth(request, handler):
    """Every route except the health check needs the bearer token."""
    if request.path == '/healthz' and request.method in ('GET', 'HEAD'):
        return await handler(request)
    if not _authorized(request):
        LOGGER.warning('alertmanager: refused %s %s from %s: missing or invalid bearer token', request.method, request.path, request.remote)
        raise web.HTTPUnauthorized(text='missing or invalid bearer token', headers={'WWW-Authenticate': 'Bearer'})
    return await handler(request)


async def healthz(_request):
    """Liveness: the source is listening."""
    return web.json_response({'status': 'ok'})


async def receive(request):
    """An Alertmanager webhook: validated whole, then one event per alert."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        LOGGER.warning('alertmanager: refused a body larger than %d bytes', request.app[CONFIG]['max_body_bytes'])
        raise
    try:
        events = read_events(body, request.path, limits(request.app[CONFIG]))
    except PayloadError as exc:
        LOGGER.warning('alertmanager: rejected a payload (%s): %s', exc.reason, exc.message)
        return web.json_response({'error': exc.message, 'reason': exc.reason}, status=400)
    for event in events:
        await request.app[QUEUE].put(event)
    LOGGER.info('alertmanager: accepted %d alert(s) for receiver %s', len(events), events[0]['meta'].get('receiver', ''))
    return web.json_response({'accepted': len(events)}, status=202)


def build_app(queue, config):
    """The aiohttp application (separate from main() so that tests can run it in process)."""
    app = web.Application(middlewares=[bearer_auth], client_max_size=config['max_body_bytes'])
    app[CONFIG] = config
    app[QUEUE] = queue
    app.router.add_get('/healthz', healthz)
    app.router.add_post(config['path'], receive)
    return app


async def main(queue, args):
    """ansible-rulebook entry point: serve until cancelled."""
    config = validate_args(args)
    runner = web.AppRunner(build_app(queue, config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config['host'], config['port'])
        await site.start()
        LOGGER.info('alertmanager: listening on %s:%d%s', config['host'], config['port'], config['path'])
        await asyncio.Future()
    finally:
        await runner.cleanup()
