# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Authentication as Alertmanager sends it; every comparison goes through hmac.compare_digest."""

from __future__ import annotations

import base64

import pytest

from incident_launcher import auth as auth_mod
from incident_launcher.auth import Authenticator


def basic(user, password):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()


@pytest.fixture
def compared(monkeypatch):
    calls = []
    real = auth_mod.hmac.compare_digest

    def spy(left, right):
        calls.append((left, right))
        return real(left, right)

    monkeypatch.setattr(auth_mod.hmac, 'compare_digest', spy)
    return calls


def test_bearer(compared):
    checker = Authenticator(bearer_token='t0ken-value')
    assert checker.check('Bearer t0ken-value') == (True, None)
    assert checker.check('bearer t0ken-value') == (True, None)
    assert checker.check('Bearer t0ken-valuf') == (False, 'auth_invalid')
    assert checker.check('Bearer ') == (False, 'auth_invalid')
    assert checker.check(None) == (False, 'auth_missing')
    assert checker.check('') == (False, 'auth_missing')
    assert checker.check(basic('u', 't0ken-value')) == (False, 'auth_invalid')
    assert len(compared) == 4
    assert all(right == b't0ken-value' for _left, right in compared)


def test_basic_compares_user_and_password_every_time(compared):
    checker = Authenticator(basic_username='alertmanager', basic_password='pa:ss')
    assert checker.check(basic('alertmanager', 'pa:ss')) == (True, None)
    assert checker.check(basic('intruder', 'pa:ss')) == (False, 'auth_invalid')
    assert checker.check(basic('alertmanager', 'wrong')) == (False, 'auth_invalid')
    assert checker.check('Basic !!!notbase64') == (False, 'auth_invalid')
    assert checker.check('Bearer pa:ss') == (False, 'auth_invalid')
    # two comparisons per well-formed Basic header, whichever part is wrong
    assert len(compared) == 6


def test_both_schemes_configured():
    checker = Authenticator(bearer_token='tok', basic_username='u', basic_password='p')
    assert checker.check('Bearer tok')[0] and checker.check(basic('u', 'p'))[0]
    assert not checker.check(basic('u', 'tok'))[0]


def test_anonymous_only_when_nothing_is_configured():
    assert Authenticator(allow_anonymous=True).check(None) == (True, None)
    assert Authenticator(bearer_token='x', allow_anonymous=True).check(None) == (False, 'auth_missing')
