# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Signed inbound requests: Slack's signing secret (v0) and PagerDuty's webhook signatures (v3, ``v1=``), and the
memory of requests already seen (replays). Pure functions, without Ansible or the collection.

Slack (https://api.slack.com/authentication/verifying-requests-from-slack): ``X-Slack-Signature: v0=<hex>`` is the
HMAC-SHA256, keyed with the app's signing secret, of ``v0:<X-Slack-Request-Timestamp>:<raw body>``; a request whose
timestamp is more than five minutes away from now is refused (a replay). Several secrets may be configured (the new
and the old one while the app's secret is regenerated).

PagerDuty (developer docs, webhooks v3, "Verifying Signatures"): ``X-PagerDuty-Signature`` holds one or more
``v1=<hex>`` signatures separated by commas, each the HMAC-SHA256 of the raw body keyed with one of the subscription's
secrets (several during a rotation); the request is authentic when any of them matches any configured secret.

Every comparison is :func:`hmac.compare_digest`, and every configured secret is compared for every offered signature
(no early exit that would tell which one matched or how far a forgery got).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import re
import threading

SLACK_VERSION = 'v0'
SLACK_WINDOW = 300
PAGERDUTY_VERSION = 'v1'
# A PagerDuty signature header carries one signature per secret: two during a rotation. More are not looked at.
MAX_SIGNATURES = 8
MAX_HEADER = 1024
_HEX64 = re.compile(r'^[0-9a-f]{64}$')
_TIMESTAMP = re.compile(r'^[0-9]{1,12}$')


def _bytes(value):
    return value.encode('utf-8') if isinstance(value, str) else bytes(value)


def _hmac_hex(secret, message):
    return hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


# -- Slack --------------------------------------------------------------------------------------------------
def slack_signature(secret, timestamp, body):
    """``v0=<hex>`` for ``body`` (bytes) sent at ``timestamp`` (seconds, as in X-Slack-Request-Timestamp)."""
    return '%s=%s' % (SLACK_VERSION, _hmac_hex(secret, b'%s:%s:%s' % (SLACK_VERSION.encode(), str(timestamp).encode(), _bytes(body))))


def slack_headers_ok(signature, timestamp, now, window=SLACK_WINDOW):
    """``(ok, reason)`` from the headers alone, before the body is read: both present and well-formed, and the
    timestamp within ``window`` seconds of ``now``. Reasons: signature_missing, signature_invalid, stale."""
    if not signature or not timestamp:
        return False, 'signature_missing'
    if len(signature) > MAX_HEADER or not signature.startswith(SLACK_VERSION + '=') or not _HEX64.fullmatch(signature[3:]):
        return False, 'signature_invalid'
    if not _TIMESTAMP.fullmatch(timestamp):
        return False, 'signature_invalid'
    if abs(now - int(timestamp)) > window:
        return False, 'stale'
    return True, None


def verify_slack(secrets, signature, timestamp, body, now, window=SLACK_WINDOW):
    """``(ok, reason)``: the headers' checks, then the signature against every secret."""
    ok, reason = slack_headers_ok(signature, timestamp, now, window)
    if not ok:
        return ok, reason
    offered = _bytes(signature)
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(_bytes(slack_signature(secret, timestamp, body)), offered)
    return (True, None) if matched else (False, 'signature_invalid')


# -- PagerDuty ----------------------------------------------------------------------------------------------
def pagerduty_signature(secret, body):
    """``v1=<hex>`` for ``body`` (bytes) and one subscription secret."""
    return '%s=%s' % (PAGERDUTY_VERSION, _hmac_hex(secret, _bytes(body)))


def pagerduty_header(secrets, body):
    """The whole header value PagerDuty sends for ``secrets``: one signature per secret, comma-separated."""
    return ','.join(pagerduty_signature(secret, body) for secret in secrets)


def pagerduty_offered(header):
    """The ``v1`` signatures of a header (others are ignored, as the documentation says); at most MAX_SIGNATURES."""
    if not header or len(header) > MAX_HEADER:
        return []
    offered = []
    for item in header.split(','):
        item = item.strip()
        if item.startswith(PAGERDUTY_VERSION + '=') and _HEX64.fullmatch(item[3:]):
            offered.append(item)
    return offered[:MAX_SIGNATURES]


def pagerduty_headers_ok(header):
    """``(ok, reason)`` from the header alone, before the body is read."""
    if not header:
        return False, 'signature_missing'
    if not pagerduty_offered(header):
        return False, 'signature_invalid'
    return True, None


def verify_pagerduty(secrets, header, body):
    """``(ok, reason)``: authentic when any offered v1 signature matches any configured secret."""
    ok, reason = pagerduty_headers_ok(header)
    if not ok:
        return ok, reason
    offered = [_bytes(item) for item in pagerduty_offered(header)]
    expected = [_bytes(pagerduty_signature(secret, body)) for secret in secrets]
    matched = False
    for mine in expected:
        for theirs in offered:
            matched |= hmac.compare_digest(mine, theirs)
    return (True, None) if matched else (False, 'signature_invalid')


# -- replays ---------------------------------------------------------------------------------------------------
class ReplayGuard:
    """Keys of requests seen in the last ``window`` seconds (at most ``capacity``; the oldest go first).

    :meth:`claim` marks a key as taken and says whether it was free; :meth:`release` gives it back (the request was
    not applied, so its sender may retry it). Thread-safe; memory bounded by ``capacity``.
    """

    def __init__(self, window, capacity=20000):
        self.window = float(window)
        self.capacity = int(capacity)
        self.seen = collections.OrderedDict()
        self.lock = threading.Lock()

    def _expire(self, now):
        while self.seen:
            key, when = next(iter(self.seen.items()))
            if now - when <= self.window and len(self.seen) <= self.capacity:
                break
            del self.seen[key]

    def claim(self, key, now):
        with self.lock:
            self._expire(now)
            if key in self.seen:
                return False
            self.seen[key] = now
            self._expire(now)
            return True

    def release(self, key):
        with self.lock:
            self.seen.pop(key, None)

    def __len__(self):
        return len(self.seen)
