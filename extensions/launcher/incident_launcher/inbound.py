# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""People in the loop: what Slack and PagerDuty send back, signed, applied to the incident as the person who did it.

Routes (served by intake.py with the launcher's hardening: one deadline per request, connection limits, bounded
memory; the signature headers are checked before a byte of the body is read, the signature itself right after):

- ``POST /slack/interactivity``: Slack's interactivity requests. ``block_actions`` of the messages' buttons
  (``incident_acknowledge``, ``incident_resolve``, ``incident_approve``, ``incident_reject``; link buttons are answered
  and ignored) and the ``view_submission`` of the resolution dialog.
- ``POST /slack/commands``: the slash command (``/incident status|ack|resolve|note|approve|reject INC-... ...``).
- ``POST /pagerduty/webhook``: PagerDuty webhooks v3 (``incident.acknowledged``, ``incident.resolved``,
  ``incident.annotated``: a note, or a command written as a note, ``approve scale_down``).

Every change goes through the incident service (module_utils/people.py, ``apply``) with the person as the actor
(``slack:U0123ABC (alice)``, ``pagerduty:PLH1HKV (Jane Doe)``). Unsigned, badly signed, stale or replayed requests are
refused and counted (``incident_launcher_inbound_refused_total``), logged as a summary at most every 10 s, and never
written to disk. See docs/people.md.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from incident_launcher import signatures
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import approvals, people
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import timeutil
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import (
    IncidentResponseError, LockTimeoutError, NotFoundError, ValidationError)
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.slack import ACKNOWLEDGE, APPROVE, LINK_PREFIX, REJECT, RESOLVE
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import IncidentStore, atomic_write

ROUTES = {'/slack/interactivity': 'slack', '/slack/commands': 'slack', '/pagerduty/webhook': 'pagerduty'}
INCIDENT_IN_TEXT = re.compile(r'\bINC-\d{8}-\d{4,6}\b')
RESOLVE_DIALOG = 'incident_resolve'
MAX_FORM_FIELDS = 64
FUTURE_SKEW = 300
VERB_ALIASES = {'ack': 'acknowledge', 'acknowledge': 'acknowledge', 'resolve': 'resolve', 'note': 'note', 'approve': 'approve',
                'reject': 'reject', 'status': 'status'}
SLASH_RE = re.compile(r'^\s*(\S+)(?:\s+(\S+))?(?:\s+(.*))?$', re.DOTALL)
PD_NOTE_RE = re.compile(r'^\s*(approve|reject|resolve|ack|acknowledge)\b[\s:]*(.*)$', re.DOTALL | re.IGNORECASE)
PD_ID_RE = re.compile(r'^[A-Z0-9]{1,32}$')
MAX_OPEN_SCAN = 500


class Refused(Exception):
    """A signed request that is refused after its signature was checked (bad form, stale, replayed)."""

    def __init__(self, status, reason, message):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _header(headers, name):
    value = headers.get(name)
    return value.strip() if isinstance(value, str) else None


def _json(text, what):
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(400, 'bad_request', '%s is not JSON' % what) from None
    if not isinstance(document, dict):
        raise Refused(400, 'bad_request', '%s is not a JSON object' % what)
    return document


def _form(body):
    try:
        pairs = urllib.parse.parse_qsl(body.decode('utf-8'), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, 'bad_request', 'the body is not a form') from None
    fields = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def help_text(command):
    return '\n'.join([
        '`%s status INC-YYYYMMDD-NNNN`: where the incident stands' % command,
        '`%s ack INC-...`: acknowledge it' % command,
        '`%s resolve INC-... <what fixed it>`: resolve it' % command,
        '`%s note INC-... <text>`: add a note to its timeline' % command,
        '`%s approve INC-... <action> [why]`: approve a pending action (`<phase>:<action>` when two phases wait)' % command,
        '`%s reject INC-... <action> [why]`: reject it; the action does not run' % command,
    ])


def parse_slash(text):
    """``(verb, incident_id, action, phase, text)`` of a slash command's text; ``('help', ...)`` for help or nothing.

    Raises ValidationError with what is wrong."""
    match = SLASH_RE.match(text or '')
    if not match or match.group(1).lower() in ('help', '-h', '--help', '?'):
        return 'help', None, None, None, None
    verb = VERB_ALIASES.get(match.group(1).lower())
    if verb is None:
        raise ValidationError('unknown command %r' % match.group(1)[:40])
    incident_id = rec.validate_id((match.group(2) or '').upper(), 'incident')
    rest = (match.group(3) or '').strip()
    action = phase = None
    if verb in ('approve', 'reject'):
        first, _sep, rest = rest.partition(' ')
        if ':' in first:
            phase, _sep, first = first.partition(':')
        action, rest = first or None, rest.strip()
    return verb, incident_id, action, phase, rest or None


class Inbound:  # pylint: disable=too-many-instance-attributes
    """The receivers of one launcher; :meth:`handle` runs in the intake's thread pool (it writes the store)."""

    def __init__(self, config, catalog, metrics, logger, opener=None, stores=None):  # pylint: disable=too-many-arguments
        settings = config['inbound']
        self.slack = settings['slack'] if settings['slack']['signing_secrets'] else None
        self.pagerduty = settings['pagerduty'] if settings['pagerduty']['webhook_secrets'] else None
        self.max_body_bytes = settings['max_body_bytes']
        self.lock_timeout = settings['lock_timeout']
        self.store_root = config['incident_store']
        # The launcher's store (file or kubernetes, module_utils/stores.py); the file store at incident_store without one.
        self.stores = stores
        self.catalog = catalog
        self.metrics = metrics
        self.logger = logger
        # Slack accepts a timestamp up to the window away in either direction: remember signatures twice as long.
        self.guards = {'slack': signatures.ReplayGuard(2 * (self.slack or {}).get('replay_window', 300)),
                       'pagerduty': signatures.ReplayGuard((self.pagerduty or {}).get('max_age', 1800) + FUTURE_SKEW)}
        self.outbound = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix='launcher-replies')
        self.opener = opener or urllib.request.build_opener(urllib.request.HTTPHandler, urllib.request.HTTPSHandler)

    def configured(self, source):
        return bool(self.slack if source == 'slack' else self.pagerduty)

    def stop(self):
        self.outbound.shutdown(wait=True, cancel_futures=False)

    # -- before the body (intake.py calls these from the event loop: cheap, no I/O) -----------------------------
    def precheck(self, source, headers, now):
        """``(ok, reason)`` from the signature headers alone."""
        if source == 'slack':
            return signatures.slack_headers_ok(_header(headers, 'X-Slack-Signature'), _header(headers, 'X-Slack-Request-Timestamp'), now,
                                               self.slack['replay_window'])
        return signatures.pagerduty_headers_ok(_header(headers, 'X-PagerDuty-Signature'))

    def verify(self, source, headers, body, now):
        """``(ok, reason)``: the signature over the raw body, against every configured secret."""
        if source == 'slack':
            return signatures.verify_slack(self.slack['signing_secrets'], _header(headers, 'X-Slack-Signature'),
                                           _header(headers, 'X-Slack-Request-Timestamp'), body, now, self.slack['replay_window'])
        return signatures.verify_pagerduty(self.pagerduty['webhook_secrets'], _header(headers, 'X-PagerDuty-Signature'), body)

    # -- after the signature ------------------------------------------------------------------------------------
    def handle(self, path, headers, body, now):
        """``(status, document or None, headers)`` for a request whose signature was verified."""
        source = ROUTES[path]
        try:
            if source == 'slack':
                key = 'sig:' + (_header(headers, 'X-Slack-Signature') or '')
                if not self.guards['slack'].claim(key, now):
                    raise Refused(409, 'replayed', 'this request was received before')
                return self._slack(path, body, now)
            return self._pagerduty(headers, body, now)
        except Refused as exc:
            self.metrics.inc('incident_launcher_inbound_refused_total', source=source, reason=exc.reason)
            self.logger.warning('inbound_refused', source=source, reason=exc.reason, message=exc.message)
            return exc.status, {'status': 'refused', 'reason': exc.reason, 'error': exc.message}, {}

    def _store(self):
        if self.stores is not None:
            return self.stores()
        return IncidentStore(self.store_root, lock_timeout=self.lock_timeout)

    def _run(self, source, command, allowed):
        """Apply one command as its person; returns the people.Reply (or a refusal when the person may not)."""
        if not allowed:
            reply = people.Reply('forbidden', 'Not done: %s may not %s incidents here (inbound.%s.%s).' % (
                command.actor, command.verb, source, 'approvers' if command.verb in ('approve', 'reject') else 'users'))
        else:
            reply = people.apply(self._store(), self.catalog, command)
        self.metrics.inc('incident_launcher_inbound_commands_total', source=source, verb=command.verb, result=reply.result)
        self.logger.info('inbound', source=source, verb=command.verb, incident=command.incident_id, action=command.action,
                         actor=command.actor, result=reply.result)
        if reply.changed and command.verb == 'resolve':
            self.outbound.submit(self._write_report, command.incident_id, command.actor)
        return reply

    @staticmethod
    def _allowed(settings, user_id, verb):
        users, approvers = settings['users'], settings['approvers']
        if verb in ('approve', 'reject') and approvers:
            return user_id in approvers
        return not users or user_id in users or user_id in approvers

    def _count(self, source, verb, result):
        self.metrics.inc('incident_launcher_inbound_commands_total', source=source, verb=verb, result=result)

    # -- Slack ----------------------------------------------------------------------------------------------------
    def _slack(self, path, body, now):
        fields = _form(body)
        if path == '/slack/commands':
            return self._slash(fields)
        payload = _json(fields.get('payload') or '', 'payload')
        user = payload.get('user') if isinstance(payload.get('user'), dict) else {}
        try:
            actor = people.person('slack', user.get('id'), user.get('name') or user.get('username'))
        except ValidationError as exc:
            raise Refused(400, 'bad_request', exc.message) from None
        kind = payload.get('type')
        if kind == 'block_actions':
            return self._block_actions(payload, actor, str(user.get('id')))
        if kind == 'view_submission':
            return self._view_submission(payload, actor, str(user.get('id')))
        self._count('slack', str(kind)[:40], 'ignored')
        return 200, None, {}

    def _slash(self, fields):
        command_name = self.slack['command']
        try:
            actor = people.person('slack', fields.get('user_id'), fields.get('user_name'))
        except ValidationError as exc:
            raise Refused(400, 'bad_request', exc.message) from None
        try:
            verb, incident_id, action, phase, text = parse_slash(fields.get('text'))
        except ValidationError as exc:
            self._count('slack', 'unknown', 'refused')
            return self._ephemeral('%s\n%s' % (exc.message, help_text(command_name)))
        if verb == 'help':
            return self._ephemeral(help_text(command_name))
        event = {'source': 'slack', 'id': 'command:%s' % (fields.get('trigger_id') or hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest())[:120]}
        try:
            command = people.Command(verb, incident_id, actor, 'slack', action=action, phase=phase, text=text, event=event)
        except ValidationError as exc:
            self._count('slack', verb, 'refused')
            return self._ephemeral('Not done: %s' % exc.message)
        reply = self._run_guarded('slack', command, self._allowed(self.slack, fields.get('user_id'), verb))
        if reply is None:
            return self._ephemeral('The incident store is busy; try again in a few seconds.')
        return 200, {'response_type': 'in_channel' if reply.changed else 'ephemeral', 'text': reply.text}, {}

    def _run_guarded(self, source, command, allowed):
        try:
            return self._run(source, command, allowed)
        except LockTimeoutError:
            self._count(source, command.verb, 'busy')
            return None

    @staticmethod
    def _ephemeral(text):
        return 200, {'response_type': 'ephemeral', 'text': text}, {}

    def _block_actions(self, payload, actor, user_id):
        actions = [item for item in payload.get('actions') or [] if isinstance(item, dict)]
        response_url = payload.get('response_url') if isinstance(payload.get('response_url'), str) else None
        for item in actions[:5]:
            action_id, value = str(item.get('action_id') or ''), item.get('value')
            if action_id.startswith(LINK_PREFIX):
                continue
            event = {'source': 'slack', 'id': 'action:%s:%s:%s' % (user_id, str(item.get('action_ts') or '')[:32], action_id[:40])}
            try:
                if action_id in (ACKNOWLEDGE, RESOLVE):
                    incident_id = rec.validate_id(value, 'button value')
                    if action_id == RESOLVE:
                        self._resolve_dialog(payload, incident_id, response_url)
                        continue
                    command = people.Command('acknowledge', incident_id, actor, 'slack', event=event)
                elif action_id in (APPROVE, REJECT):
                    incident_id, phase, action = approvals.parse_button_value(value)
                    command = people.Command('approve' if action_id == APPROVE else 'reject', incident_id, actor, 'slack', action=action,
                                             phase=phase, text=None if action_id == APPROVE else 'rejected in Slack', event=event)
                else:
                    self._count('slack', 'button', 'ignored')
                    continue
            except ValidationError as exc:
                self._count('slack', 'button', 'refused')
                self._reply(response_url, 'Not done: %s' % exc.message)
                continue
            reply = self._run_guarded('slack', command, self._allowed(self.slack, user_id, command.verb))
            if reply is None:
                self._reply(response_url, 'The incident store is busy; click again in a few seconds.')
            else:
                self._reply(response_url, reply.text, in_channel=reply.changed)
        return 200, None, {}

    def _resolve_dialog(self, payload, incident_id, response_url):
        """The Resolve button asks what fixed it: a dialog (views.open, with the bot token) or the slash command."""
        command = self.slack['command']
        if not self.slack['bot_token']:
            self._count('slack', 'resolve', 'refused')
            self._reply(response_url, 'To resolve %s, say what fixed it: `%s resolve %s <resolution>`' % (incident_id, command, incident_id))
            return
        view = {
            'type': 'modal', 'callback_id': RESOLVE_DIALOG, 'private_metadata': incident_id,
            'title': {'type': 'plain_text', 'text': 'Resolve incident'},
            'submit': {'type': 'plain_text', 'text': 'Resolve'}, 'close': {'type': 'plain_text', 'text': 'Cancel'},
            'blocks': [
                {'type': 'section', 'text': {'type': 'mrkdwn', 'text': '*%s*: the incident is marked resolved and its report written.' % incident_id}},
                {'type': 'input', 'block_id': 'resolution', 'label': {'type': 'plain_text', 'text': 'What fixed it?'},
                 'element': {'type': 'plain_text_input', 'action_id': 'resolution', 'multiline': True, 'min_length': 3, 'max_length': 3000}},
            ],
        }
        ok, error = self._slack_api('views.open', {'trigger_id': str(payload.get('trigger_id') or ''), 'view': view})
        if not ok:
            self.logger.warning('slack_dialog_failed', error=error)
            self._reply(response_url, 'The resolution dialog could not be opened (%s); use `%s resolve %s <resolution>`'
                        % (error, command, incident_id))

    def _view_submission(self, payload, actor, user_id):
        view = payload.get('view') if isinstance(payload.get('view'), dict) else {}
        if view.get('callback_id') != RESOLVE_DIALOG:
            self._count('slack', 'view', 'ignored')
            return 200, None, {}
        values = ((view.get('state') or {}).get('values') or {}) if isinstance(view.get('state'), dict) else {}
        text = (((values.get('resolution') or {}).get('resolution') or {}).get('value')) if isinstance(values, dict) else None
        event = {'source': 'slack', 'id': 'view:%s' % str(view.get('id') or '')[:64]}
        try:
            command = people.Command('resolve', view.get('private_metadata'), actor, 'slack', text=text, event=event)
        except ValidationError as exc:
            self._count('slack', 'resolve', 'refused')
            return 200, {'response_action': 'errors', 'errors': {'resolution': exc.message[:150]}}, {}
        reply = self._run_guarded('slack', command, self._allowed(self.slack, user_id, 'resolve'))
        if reply is None:
            return 200, {'response_action': 'errors', 'errors': {'resolution': 'The incident store is busy; submit again.'}}, {}
        if reply.result in ('refused', 'forbidden', 'not_found'):
            return 200, {'response_action': 'errors', 'errors': {'resolution': reply.text[:150]}}, {}
        return 200, None, {}

    def _slack_api(self, method, document):
        """A Slack Web API call with the bot token; ``(ok, error)``. Never raises; the token is never logged."""
        url = self.slack['api_url'].rstrip('/') + '/' + method
        request = urllib.request.Request(url, data=json.dumps(document).encode('utf-8'), method='POST', headers={
            'Content-Type': 'application/json; charset=utf-8', 'Authorization': 'Bearer %s' % self.slack['bot_token']})
        try:
            with self.opener.open(request, timeout=self.slack['request_timeout']) as response:
                answer = json.loads(response.read(65536) or b'{}')
        except (OSError, ValueError, urllib.error.URLError) as exc:
            return False, 'no answer from Slack: %s' % type(exc).__name__
        if answer.get('ok'):
            return True, None
        return False, str(answer.get('error') or 'unknown_error')[:80]

    def _reply(self, response_url, text, in_channel=False):
        """Post the answer to the clicker through the interaction's response_url (Slack's URL prefixes only), later."""
        if not response_url or not any(response_url.startswith(prefix) for prefix in self.slack['response_url_prefixes']):
            return
        document = {'response_type': 'in_channel' if in_channel else 'ephemeral', 'replace_original': False, 'text': text}
        self.outbound.submit(self._post_reply, response_url, document)

    def _post_reply(self, url, document):
        request = urllib.request.Request(url, data=json.dumps(document).encode('utf-8'), method='POST',
                                         headers={'Content-Type': 'application/json; charset=utf-8'})
        try:
            with self.opener.open(request, timeout=5) as response:
                response.read(4096)
        except (OSError, urllib.error.URLError) as exc:
            host = urllib.parse.urlsplit(url).hostname
            self.logger.warning('slack_reply_failed', host=host, error=type(exc).__name__)

    # -- PagerDuty ------------------------------------------------------------------------------------------------
    def _pagerduty(self, headers, body, now):
        document = _json(body.decode('utf-8', 'replace'), 'the webhook')
        event = document.get('event')
        if not isinstance(event, dict) or not isinstance(event.get('event_type'), str) or not isinstance(event.get('id'), str):
            raise Refused(400, 'bad_request', 'expected a webhook v3 payload: {"event": {"id", "event_type", "occurred_at", ...}}')
        try:
            occurred = timeutil.parse_ts(event.get('occurred_at'), 'event.occurred_at')
        except (ValidationError, TypeError):
            raise Refused(400, 'bad_request', 'event.occurred_at is not an ISO 8601 time') from None
        age = (datetime.datetime.fromtimestamp(now, datetime.timezone.utc) - occurred).total_seconds()
        if age > self.pagerduty['max_age'] or age < -FUTURE_SKEW:
            raise Refused(400, 'stale', 'the event occurred %d s ago; events older than %d s are refused (replays)'
                          % (age, self.pagerduty['max_age']))
        key = 'id:' + (_header(headers, 'X-Webhook-Id') or event['id'])[:200]
        guard = self.guards['pagerduty']
        if not guard.claim(key, now):
            raise Refused(409, 'replayed', 'this webhook (%s) was received before' % key[3:][:80])
        try:
            status, answer = self._pagerduty_event(event)
        except LockTimeoutError:
            guard.release(key)
            self._count('pagerduty', event['event_type'][:60], 'busy')
            return 503, {'status': 'busy', 'error': 'the incident store is busy; PagerDuty retries'}, {'Retry-After': '5'}
        except Exception:
            guard.release(key)
            raise
        return status, answer, {}

    def _pd_incident(self, event):
        """``(incident id or None, {'id', 'html_url'} of the PagerDuty incident, exact)``: the incident key (the dedup key
        the collection sends is the incident ID), else the ID in the PagerDuty incident's title, else a known mapping."""
        data = event.get('data') if isinstance(event.get('data'), dict) else {}
        if data.get('type') == 'incident':
            pd = {'id': data.get('id'), 'html_url': data.get('html_url')}
            key, title = data.get('incident_key'), data.get('title')
        else:
            ref = data.get('incident') if isinstance(data.get('incident'), dict) else {}
            pd = {'id': ref.get('id'), 'html_url': ref.get('html_url')}
            key, title = None, ref.get('summary')
        pd = {name: value for name, value in pd.items() if isinstance(value, str) and value}
        if not PD_ID_RE.fullmatch(pd.get('id') or ''):
            pd = {}
        if isinstance(key, str) and rec.ID_RE.fullmatch(key):
            return key, pd, True
        found = INCIDENT_IN_TEXT.search(title) if isinstance(title, str) else None
        if found:
            return found.group(0), pd, False
        if pd:
            return self._mapped(pd['id']), pd, False
        return None, pd, False

    def _mapped(self, pd_id):
        """The open incident whose record knows this PagerDuty incident (``x_pagerduty_incident``)."""
        store = self._store()
        summaries, _invalid = store.list(lambda summary: summary['status'] != 'resolved')
        for summary in summaries[-MAX_OPEN_SCAN:]:
            try:
                record = store.read(summary['id'])
            except IncidentResponseError:
                continue
            if (record.get('x_pagerduty_incident') or {}).get('id') == pd_id:
                return record['id']
        return None

    def _remember_pd(self, incident_id, pd):
        """Keep the PagerDuty incident in the record (notes are written to it, annotations found by it)."""
        store = self._store()
        try:
            record = store.read(incident_id)
        except NotFoundError:
            return
        if pd and (record.get('x_pagerduty_incident') or {}).get('id') != pd['id']:
            IncidentService(store, self.catalog, actor='pagerduty').update(incident_id, {'extensions': {'x_pagerduty_incident': pd}})

    def _pagerduty_event(self, event):
        event_type = event['event_type'][:60]
        if event_type == 'pagey.ping':
            self._count('pagerduty', 'ping', 'ignored')
            return 200, {'status': 'ok', 'event': 'pagey.ping'}
        incident_id, pd, exact = self._pd_incident(event)
        if incident_id is None:
            self._count('pagerduty', event_type, 'ignored')
            return 200, {'status': 'ignored', 'reason': 'no incident of this collection (incident_key or title INC-YYYYMMDD-NNNN)'}
        if exact and pd:
            self._remember_pd(incident_id, pd)
        agent = event.get('agent') if isinstance(event.get('agent'), dict) else {}
        if agent.get('type') != 'user_reference':
            # The collection's own events (a resolve sent by the response) and integrations: not a person's doing.
            self._count('pagerduty', event_type, 'ignored')
            return 200, {'status': 'ignored', 'reason': 'not done by a person (%s)' % str(agent.get('type') or 'no agent')[:40]}
        try:
            actor = people.person('pagerduty', agent.get('id'), agent.get('summary'))
            command = self._pd_command(event, event_type, incident_id, actor)
        except ValidationError as exc:
            self._count('pagerduty', event_type, 'refused')
            return 200, {'status': 'refused', 'incident': incident_id, 'error': exc.message}
        if command is None:
            self._count('pagerduty', event_type, 'ignored')
            return 200, {'status': 'ignored', 'reason': 'event type %s changes nothing here' % event_type}
        reply = self._run('pagerduty', command, self._allowed(self.pagerduty, agent.get('id'), command.verb))
        return 200, {'status': reply.result, 'incident': incident_id, 'verb': command.verb, 'message': reply.text}

    @staticmethod
    def _pd_command(event, event_type, incident_id, actor):
        data = event.get('data') if isinstance(event.get('data'), dict) else {}
        marker = {'source': 'pagerduty', 'id': event['id'][:120]}
        if event_type == 'incident.acknowledged':
            return people.Command('acknowledge', incident_id, actor, 'pagerduty', event=marker)
        if event_type == 'incident.resolved':
            number = data.get('number')
            text = 'Resolved in PagerDuty by %s%s' % (actor, ' (incident #%s)' % number if isinstance(number, int) else '')
            return people.Command('resolve', incident_id, actor, 'pagerduty', text=text, event=marker)
        if event_type != 'incident.annotated':
            return None
        content = people.clean_text(data.get('content'))
        if not content:
            return None
        match = PD_NOTE_RE.match(content)
        if not match:
            return people.Command('note', incident_id, actor, 'pagerduty', text=content, event=marker)
        verb = VERB_ALIASES[match.group(1).lower()]
        rest = match.group(2).strip()
        if verb in ('approve', 'reject'):
            first, _sep, reason = rest.partition(' ')
            phase = None
            if ':' in first:
                phase, _sep, first = first.partition(':')
            return people.Command(verb, incident_id, actor, 'pagerduty', action=first or None, phase=phase or None,
                                  text=reason.strip() or None, event=marker)
        if verb == 'resolve':
            return people.Command('resolve', incident_id, actor, 'pagerduty', text=rest or 'Resolved in PagerDuty by %s' % actor, event=marker)
        return people.Command('acknowledge', incident_id, actor, 'pagerduty', event=marker)

    # -- the report after a person's resolution -----------------------------------------------------------------
    def _write_report(self, incident_id, actor):
        """The post-incident report, as incident_report writes it (Markdown and HTML under <store>/reports/<id>/)."""
        try:
            # Controller-side rendering (Jinja2), imported only when a report is written.
            from ansible_collections.slurm_exporter.incident_response.plugins.plugin_utils.report import (  # pylint: disable=import-outside-toplevel
                render_incident_report)
            store = self._store()
            record = store.read(incident_id)
            rendered = render_incident_report(record, self.catalog.profile(record['type'], record['severity']))
            directory = os.path.join(store.path('reports'), incident_id)
            os.makedirs(directory, mode=0o750, exist_ok=True)
            reports = []
            for kind, name in (('markdown', 'report.md'), ('html', 'report.html')):
                data = rendered[kind].encode('utf-8')
                path = os.path.join(directory, name)
                atomic_write(path, data)
                reports.append({'kind': kind, 'path': path, 'sha256': hashlib.sha256(data).hexdigest()})
            IncidentService(store, self.catalog, actor=actor).update(incident_id, {'reports': reports})
            self.logger.info('report_written', incident=incident_id, path=reports[0]['path'])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self.logger.error('report_failed', incident=incident_id, error='%s: %s' % (type(exc).__name__, str(exc)[:300]))
