# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Webhook authentication exactly as Alertmanager's ``http_config`` sends it.

- ``authorization: {type: Bearer, credentials: ...}`` (or the older ``bearer_token``):
  ``Authorization: Bearer <token>``;
- ``basic_auth: {username, password}``: ``Authorization: Basic base64(user:password)``.

Every comparison uses :func:`hmac.compare_digest`, and all configured credentials are
compared on every request (no early exit that would tell which part was wrong).
"""

from __future__ import annotations

import base64
import binascii
import hmac


def _bytes(value):
    return value.encode('utf-8') if isinstance(value, str) else value


class Authenticator:
    """Checks one ``Authorization`` header against the configured bearer token and/or basic credentials."""

    def __init__(self, bearer_token=None, basic_username=None, basic_password=None, allow_anonymous=False):
        self.bearer_token = _bytes(bearer_token) if bearer_token else None
        self.basic = (_bytes(basic_username), _bytes(basic_password)) if basic_username and basic_password else None
        self.allow_anonymous = allow_anonymous and not (self.bearer_token or self.basic)

    @property
    def enabled(self):
        return not self.allow_anonymous

    def check(self, header):
        """``(ok, reason)``; reason is None, 'auth_missing' or 'auth_invalid'."""
        if self.allow_anonymous:
            return True, None
        if not header:
            return False, 'auth_missing'
        scheme, _sep, credentials = header.strip().partition(' ')
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == 'bearer' and self.bearer_token is not None:
            return (True, None) if hmac.compare_digest(_bytes(credentials), self.bearer_token) else (False, 'auth_invalid')
        if scheme == 'basic' and self.basic is not None:
            try:
                decoded = base64.b64decode(credentials.encode('ascii'), validate=True)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                return False, 'auth_invalid'
            username, sep, password = decoded.partition(b':')
            # Both are compared whatever the first answer is: no timing difference between a wrong user and a wrong password.
            user_ok = hmac.compare_digest(username, self.basic[0])
            password_ok = hmac.compare_digest(password, self.basic[1])
            return (True, None) if (user_ok & password_ok & bool(sep)) else (False, 'auth_invalid')
        return False, 'auth_invalid'
