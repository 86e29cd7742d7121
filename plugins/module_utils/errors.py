# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One exception hierarchy for the collection.

Every error raised by module_utils code derives from :class:`IncidentResponseError`
and carries a message meant for the person reading the failed task: it names the
field, file or identifier at fault and says what would be accepted instead.
"""

from __future__ import annotations


class IncidentResponseError(Exception):
    """Base class: a clear, user-facing failure."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self):
        return self.message


class ValidationError(IncidentResponseError):
    """Input (module options, catalog, alert payload) is not acceptable."""


class CatalogError(ValidationError):
    """The incident catalog or an override of it is invalid."""


class RecordError(IncidentResponseError):
    """A stored record is unreadable, corrupt or fails schema validation."""


class TransitionError(ValidationError):
    """A status change that the incident lifecycle does not allow."""


class NotFoundError(IncidentResponseError):
    """No incident with the given id exists in the store."""


class StoreError(IncidentResponseError):
    """The store directory cannot be used (missing, not writable, locked)."""


class LockTimeoutError(StoreError):
    """Another writer held the store lock for longer than the timeout (or, in the kubernetes store, kept winning the
    race to write for longer than the timeout)."""


class ConflictError(StoreError):
    """A concurrent writer changed what this operation read (the kubernetes store's resourceVersion precondition
    failed); the store runs the operation again on the new state."""
