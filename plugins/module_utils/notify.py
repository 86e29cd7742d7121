# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sending notifications: the transports (Slack incoming webhook and Web API, PagerDuty Events v2, a JSON webhook,
e-mail with a plain-text and an HTML part, the file outbox) and the one retry policy (exponential backoff that
honours 429 Retry-After) and redaction they all go through. What each channel sends is built in its own module
(module_utils/slack.py, module_utils/pagerduty.py); module_utils/notifier.py runs a notification over them.

Every send returns a :class:`Delivery` (status, attempts, detail) instead of raising, so that a
failed notification never stops containment. Secrets (webhook URLs, tokens, routing keys,
passwords) are redacted from every message this module produces.
"""

from __future__ import annotations

import datetime
import email.message
import email.utils
import json
import os
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse

from ansible.module_utils.urls import open_url


REDACTED = '********'


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class Delivery:  # pylint: disable=too-few-public-methods
    """The outcome of one send."""

    def __init__(self, channel, status, attempts, detail=None):
        self.channel = channel
        self.status = status        # sent, failed, skipped
        self.attempts = attempts
        self.detail = detail or {}

    def as_dict(self):
        return {'channel': self.channel, 'status': self.status, 'attempts': self.attempts, 'detail': self.detail}


class Redactor:
    """Replaces every known secret (and its URL-quoted form) in text."""

    def __init__(self, secrets):
        self.secrets = sorted({secret for secret in secrets if isinstance(secret, str) and len(secret) >= 4}, key=len, reverse=True)

    def __call__(self, text):
        text = str(text)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
            text = text.replace(urllib.parse.quote(secret, safe=''), REDACTED)
        return text


class HttpResult:  # pylint: disable=too-few-public-methods
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers


def http_post(url, payload, headers, timeout):
    """POST JSON; returns HttpResult for any HTTP status; raises OSError for no answer."""
    data = json.dumps(payload).encode('utf-8')
    try:
        response = open_url(url, data=data, method='POST', timeout=timeout, follow_redirects='none',
                            headers=dict({'Content-Type': 'application/json; charset=utf-8'}, **(headers or {})))
        with response:
            return HttpResult(response.status, response.read(65536), dict(response.headers))
    except urllib.error.HTTPError as exc:
        body = exc.read(65536) if exc.fp else b''
        return HttpResult(exc.code, body, dict(exc.headers or {}))
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from None
    except (ValueError, TypeError) as exc:  # a malformed URL
        raise OSError('invalid URL: %s' % exc) from None


def http_get(url, headers, timeout):
    """GET; returns HttpResult for any HTTP status; raises OSError for no answer."""
    try:
        response = open_url(url, method='GET', timeout=timeout, follow_redirects='none', headers=dict(headers or {}))
        with response:
            return HttpResult(response.status, response.read(1048576), dict(response.headers))
    except urllib.error.HTTPError as exc:
        body = exc.read(65536) if exc.fp else b''
        return HttpResult(exc.code, body, dict(exc.headers or {}))
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from None
    except (ValueError, TypeError) as exc:
        raise OSError('invalid URL: %s' % exc) from None


def retry_after(headers, default, ceiling):
    """Seconds to wait from a Retry-After header (seconds or HTTP date), capped at ``ceiling``."""
    value = None
    for key, item in (headers or {}).items():
        if key.lower() == 'retry-after':
            value = item
    if value is None:
        return min(default, ceiling)
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
            seconds = (moment - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            seconds = default
    return max(0.0, min(seconds, ceiling))


class Sender:
    """Retry policy and transport shared by the channels."""

    def __init__(self, retries=4, backoff=1.0, max_backoff=30.0, timeout=10.0, redactor=None, sleep=time.sleep, post=http_post,
                 get=http_get):
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.redact = redactor or Redactor([])
        self.sleep = sleep
        self.post = post
        self.get = get

    def post_json(self, channel, url, payload, headers=None, accept=None):
        """POST with retries on 429 (Retry-After), 5xx and no answer; ``accept(result)`` -> (ok, detail, retry)."""
        return self._request(channel, lambda: self.post(url, payload, headers, self.timeout), accept)

    def get_json(self, channel, url, headers=None, accept=None):
        """GET with the same retries as :meth:`post_json`."""
        return self._request(channel, lambda: self.get(url, headers, self.timeout), accept)

    def _request(self, channel, call, accept):
        attempts = 0
        detail = {}
        while True:
            attempts += 1
            wait = min(self.backoff * (2 ** (attempts - 1)), self.max_backoff)
            retry = False
            try:
                result = call()
            except (OSError, socket.timeout) as exc:
                detail = {'error': self.redact('no answer: %s' % exc)}
                retry = True
            else:
                detail = {'http_status': result.status}
                if result.status == 429:
                    wait = retry_after(result.headers, wait, self.max_backoff)
                    detail['error'] = 'rate limited (429), Retry-After %.1fs' % wait
                    retry = True
                elif result.status >= 500:
                    detail['error'] = self.redact('server error %d: %s' % (result.status, result.body[:300].decode('utf-8', 'replace')))
                    retry = True
                elif result.status >= 400:
                    detail['error'] = self.redact('refused %d: %s' % (result.status, result.body[:300].decode('utf-8', 'replace')))
                else:
                    ok, extra, retry = accept(result) if accept else (True, {}, False)
                    detail.update(extra)
                    if ok:
                        return Delivery(channel, 'sent', attempts, detail)
            if not retry or attempts > self.retries:
                return Delivery(channel, 'failed', attempts, detail)
            self.sleep(wait)


# -- channels ------------------------------------------------------------------------------
def slack_webhook(sender, url, payload):
    def accept(result):
        body = result.body.decode('utf-8', 'replace').strip()
        return body in ('ok', ''), {}, False
    return sender.post_json('slack', url, payload, accept=accept)


def slack_api(sender, api_url, token, payload):
    """chat.postMessage; Slack answers HTTP 200 with ok=false on errors (invalid_auth, channel_not_found, ...)."""
    def accept(result):
        try:
            answer = json.loads(result.body)
        except ValueError:
            return False, {'error': 'Slack answered with something that is not JSON'}, True
        if answer.get('ok'):
            return True, {'ts': answer.get('ts'), 'slack_channel': answer.get('channel')}, False
        error = answer.get('error', 'unknown_error')
        return False, {'error': 'Slack API error: %s' % error}, error in ('ratelimited', 'internal_error', 'fatal_error', 'service_unavailable')
    url = api_url.rstrip('/') + '/chat.postMessage'
    return sender.post_json('slack', url, payload, headers={'Authorization': 'Bearer %s' % token}, accept=accept)


def pagerduty(sender, url, payload):
    def accept(result):
        try:
            answer = json.loads(result.body or b'{}')
        except ValueError:
            answer = {}
        return True, {'dedup_key': answer.get('dedup_key')}, False
    return sender.post_json('pagerduty', url, payload, accept=accept)


def webhook(sender, url, payload, headers=None):
    return sender.post_json('webhook', url, payload, headers=headers)


def build_email(settings, subject, body, html=None):
    """The message: plain text, and with ``html`` a multipart/alternative with the HTML part last (preferred)."""
    message = email.message.EmailMessage()
    message['Subject'] = ' '.join(str(subject).split())
    message['From'] = settings['sender']
    message['To'] = ', '.join(settings['to'])
    message['Date'] = email.utils.formatdate(localtime=False)
    message['Message-ID'] = email.utils.make_msgid(domain='incident-response')
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype='html')
    return message


def send_email(settings, subject, body, redact, retries=2, sleep=time.sleep, html=None):
    """Mail over SMTP (STARTTLS or SSL when asked); retried on connection errors."""
    message = build_email(settings, subject, body, html)
    attempts = 0
    while True:
        attempts += 1
        try:
            factory = smtplib.SMTP_SSL if settings.get('security') == 'ssl' else smtplib.SMTP
            with factory(settings['host'], settings.get('port') or (465 if settings.get('security') == 'ssl' else 25),
                         timeout=settings.get('timeout') or 10) as client:
                if settings.get('security') == 'starttls':
                    client.starttls(context=ssl.create_default_context())
                if settings.get('username'):
                    client.login(settings['username'], settings.get('password') or '')
                refused = client.send_message(message)
            detail = {'refused': sorted(refused)} if refused else {}
            return Delivery('email', 'sent' if not refused or len(refused) < len(settings['to']) else 'failed', attempts, detail)
        except (smtplib.SMTPException, OSError) as exc:
            permanent = isinstance(exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused))
            if permanent or attempts > retries:
                return Delivery('email', 'failed', attempts, {'error': redact('%s: %s' % (type(exc).__name__, exc))})
            sleep(min(2 ** attempts, 10))


def outbox_append(store_root, entry):
    """Append one JSON line to <store>/outbox/notifications.jsonl (fsync; O_APPEND keeps concurrent lines whole)."""
    directory = os.path.join(store_root, 'outbox')
    os.makedirs(directory, mode=0o750, exist_ok=True)
    path = os.path.join(directory, 'notifications.jsonl')
    line = (json.dumps(entry, sort_keys=True, ensure_ascii=False) + '\n').encode('utf-8')
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return Delivery('outbox', 'sent', 1, {'path': path})
