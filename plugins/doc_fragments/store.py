# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Options shared by every module that reads or writes the incident store."""

from __future__ import annotations


class ModuleDocFragment:
    """Documentation of the store and catalog options."""

    DOCUMENTATION = r'''
options:
  store:
    description:
      - Directory that holds the incident records (C(incident-<ID>.json)), C(index.json), C(audit.log)
        and the C(evidence/), C(reports/) and C(outbox/) sub-directories.
      - Created with mode 0750 when missing.
      - If not set, the environment variable E(INCIDENT_RESPONSE_STORE) is used, then C(/var/incident-response).
    type: path
    default: /var/incident-response
  lock_timeout:
    description:
      - Seconds to wait for the store's writer lock before failing.
    type: float
    default: 30.0
  catalog:
    description:
      - Overrides of the incident catalog, deep-merged over the catalog shipped with the collection
        and validated; an invalid field fails the task with its path named.
      - Usually set once for all modules with C(module_defaults) for the action group
        C(group/slurm_exporter.incident_response.incident_response), from the inventory variable C(incident_catalog).
      - See C(docs/catalog.md) for the structure (C(types), C(severities), C(categories), C(classification), C(business_hours)).
    type: dict
'''
