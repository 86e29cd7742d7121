# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The signature code alone (no Ansible, no server): Slack v0 with its replay window, PagerDuty v1 with rotation, and
the replay memory."""

from __future__ import annotations

import pytest

from incident_launcher import signatures
from tests.fakes import inbound as signed

# Slack's published example (api.slack.com, "Verifying requests from Slack").
SLACK_SECRET = '8f742231b10e8888abcd99yyyzzz85a5'
SLACK_TIMESTAMP = '1531420618'
SLACK_BODY = (b'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar'
              b'&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com'
              b'%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.'
              b'803a0bc887a14d10d2c447fce8b6703c')
SLACK_SIGNATURE = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503'
NOW = 1531420618 + 10


def test_slacks_published_example():
    assert signatures.slack_signature(SLACK_SECRET, SLACK_TIMESTAMP, SLACK_BODY) == SLACK_SIGNATURE
    assert signatures.verify_slack([SLACK_SECRET], SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_BODY, NOW) == (True, None)


@pytest.mark.parametrize('secrets, signature, timestamp, body, now, reason', [
    ([SLACK_SECRET], SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_BODY + b'&x=1', NOW, 'signature_invalid'),      # body changed
    (['another-secret-0123456789'], SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_BODY, NOW, 'signature_invalid'),
    ([SLACK_SECRET], SLACK_SIGNATURE, '1531420619', SLACK_BODY, NOW, 'signature_invalid'),                    # timestamp changed
    ([SLACK_SECRET], SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_BODY, 1531420618 + 301, 'stale'),               # replayed later
    ([SLACK_SECRET], SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_BODY, 1531420618 - 301, 'stale'),               # from the future
    ([SLACK_SECRET], None, SLACK_TIMESTAMP, SLACK_BODY, NOW, 'signature_missing'),
    ([SLACK_SECRET], SLACK_SIGNATURE, None, SLACK_BODY, NOW, 'signature_missing'),
    ([SLACK_SECRET], 'v1=' + SLACK_SIGNATURE[3:], SLACK_TIMESTAMP, SLACK_BODY, NOW, 'signature_invalid'),
    ([SLACK_SECRET], SLACK_SIGNATURE.upper(), SLACK_TIMESTAMP, SLACK_BODY, NOW, 'signature_invalid'),
    ([SLACK_SECRET], SLACK_SIGNATURE + '\n', SLACK_TIMESTAMP, SLACK_BODY, NOW, 'signature_invalid'),
    ([SLACK_SECRET], SLACK_SIGNATURE, '15314206l8', SLACK_BODY, NOW, 'signature_invalid'),
    ([SLACK_SECRET], SLACK_SIGNATURE, SLACK_TIMESTAMP + '\n', SLACK_BODY, NOW, 'signature_invalid'),
    ([], SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_BODY, NOW, 'signature_invalid'),
])
def test_slack_refusals(secrets, signature, timestamp, body, now, reason):
    assert signatures.verify_slack(secrets, signature, timestamp, body, now) == (False, reason)


def test_slack_accepts_the_old_and_the_new_secret_during_a_rotation():
    assert signatures.verify_slack(['new-secret-0123456789abcdef', SLACK_SECRET], SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_BODY, NOW)[0]
    headers = signed.slack_headers('new-secret-0123456789abcdef', b'payload=x', timestamp=NOW)
    assert signatures.verify_slack(['new-secret-0123456789abcdef'], headers['X-Slack-Signature'], headers['X-Slack-Request-Timestamp'],
                                   b'payload=x', NOW) == (True, None)


def test_slack_headers_are_checked_before_the_body():
    assert signatures.slack_headers_ok(SLACK_SIGNATURE, SLACK_TIMESTAMP, NOW) == (True, None)
    assert signatures.slack_headers_ok(SLACK_SIGNATURE, SLACK_TIMESTAMP, NOW, window=5) == (False, 'stale')
    assert signatures.slack_headers_ok('v0=' + 'a' * 5000, SLACK_TIMESTAMP, NOW) == (False, 'signature_invalid')


PD_OLD = 'old-pagerduty-webhook-secret-0001'
PD_NEW = 'new-pagerduty-webhook-secret-0002'
PD_BODY = signed.encode(signed.pagerduty_incident_event('incident.acknowledged', 'INC-20261124-0001'))


def test_pagerduty_one_signature_and_a_rotation():
    header = signed.pagerduty_headers([PD_NEW], PD_BODY)['X-PagerDuty-Signature']
    assert header == signatures.pagerduty_header([PD_NEW], PD_BODY)
    assert signatures.verify_pagerduty([PD_NEW], header, PD_BODY) == (True, None)
    # During a rotation PagerDuty signs with both secrets: a receiver that knows either one accepts it.
    both = signed.pagerduty_headers([PD_OLD, PD_NEW], PD_BODY)['X-PagerDuty-Signature']
    assert both.count('v1=') == 2
    assert signatures.verify_pagerduty([PD_NEW], both, PD_BODY) == (True, None)
    assert signatures.verify_pagerduty([PD_OLD], both, PD_BODY) == (True, None)
    assert signatures.verify_pagerduty([PD_OLD, PD_NEW], header, PD_BODY) == (True, None)
    # Unknown versions are ignored, spaces after commas tolerated.
    mixed = 'v2=%s, %s' % ('0' * 64, header)
    assert signatures.verify_pagerduty([PD_NEW], mixed, PD_BODY) == (True, None)


@pytest.mark.parametrize('header, body, reason', [
    (None, PD_BODY, 'signature_missing'),
    ('', PD_BODY, 'signature_missing'),
    ('sha256=abc', PD_BODY, 'signature_invalid'),
    ('v1=' + 'f' * 63, PD_BODY, 'signature_invalid'),
    (signatures.pagerduty_header([PD_OLD], PD_BODY), PD_BODY, 'signature_invalid'),           # a secret no longer configured
    (signatures.pagerduty_header([PD_NEW], PD_BODY), PD_BODY + b' ', 'signature_invalid'),   # the body changed
    (','.join(['v1=' + '0' * 64] * 8 + [signatures.pagerduty_signature(PD_NEW, PD_BODY)]), PD_BODY, 'signature_invalid'),
], ids=['none', 'empty', 'other-scheme', 'short', 'retired-secret', 'body-changed', 'ninth-signature'])
def test_pagerduty_refusals(header, body, reason):
    assert signatures.verify_pagerduty([PD_NEW], header, body) == (False, reason)


def test_the_replay_memory_is_bounded_and_forgets_after_the_window():
    guard = signatures.ReplayGuard(window=10, capacity=3)
    assert guard.claim('a', 100) and not guard.claim('a', 105)
    guard.release('a')
    assert guard.claim('a', 106)
    assert guard.claim('a', 117)                      # 11 s later: forgotten
    for key in 'bcd':
        assert guard.claim(key, 118)
    assert len(guard) == 3 and guard.claim('a', 118)  # the oldest went first
