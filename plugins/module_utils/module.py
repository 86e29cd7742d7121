# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one wrapper every module of the collection goes through.

It adds the shared store/catalog options (documented once, in the
``slurm_exporter.incident_response.store`` doc fragment), turns the collection's
exceptions into ``fail_json`` with their message, and reports anything else as an
internal error with a traceback.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.catalog import load_catalog
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.kubestore import DEFAULT_NAMESPACE
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.service import IncidentService
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.store import DEFAULT_STORE
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import stores

STORE_ARGUMENT_SPEC = {
    'store': {'type': 'path', 'default': DEFAULT_STORE, 'fallback': (env_fallback, ['INCIDENT_RESPONSE_STORE'])},
    'store_backend': {'type': 'str', 'default': 'file', 'choices': list(stores.BACKENDS),
                      'fallback': (env_fallback, ['INCIDENT_RESPONSE_STORE_BACKEND'])},
    'store_namespace': {'type': 'str', 'default': DEFAULT_NAMESPACE, 'fallback': (env_fallback, ['INCIDENT_RESPONSE_STORE_NAMESPACE'])},
    'store_kubernetes': {'type': 'dict', 'default': {}, 'options': {
        'kubeconfig': {'type': 'path'},
        'context': {'type': 'str'},
        'host': {'type': 'str'},
        'api_key': {'type': 'str', 'no_log': True},
        'validate_certs': {'type': 'bool', 'aliases': ['verify_ssl']},
        'ca_cert': {'type': 'path', 'aliases': ['ssl_ca_cert']},
        'request_timeout': {'type': 'float'},
    }},
    'lock_timeout': {'type': 'float', 'default': 30.0},
    'catalog': {'type': 'dict'},
}


class IncidentResponseModule(AnsibleModule):
    """AnsibleModule with the store options and one failure path."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(STORE_ARGUMENT_SPEC)
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        self._catalog = None

    @property
    def incident_catalog(self):
        if self._catalog is None:
            self._catalog = load_catalog(self.params.get('catalog'))
        return self._catalog

    def store_settings(self):
        """The store settings (module_utils/stores.py) of the task's store options."""
        if self.params['lock_timeout'] <= 0:
            self.fail_json(msg='lock_timeout: must be greater than zero')
        try:
            return stores.from_params(self.params)
        except IncidentResponseError as exc:
            self.fail_json(msg=exc.message)
        return None  # pragma: no cover - fail_json exits

    def incident_store(self):
        """The store the task's options name (file store, or kubernetes store); read-only in check mode."""
        try:
            return stores.open_store(self.store_settings(), read_only=self.check_mode)
        except IncidentResponseError as exc:
            self.fail_json(msg=exc.message)
        return None  # pragma: no cover - fail_json exits

    def incident_service(self, store=None):
        """The lifecycle service over the store, acting as the task's ``actor``, honouring check mode."""
        return IncidentService(store or self.incident_store(), self.incident_catalog, actor=self.params.get('actor') or 'ansible',
                               check_mode=self.check_mode)

    def fail_from_exception(self, exc, **result):
        """Fail the task from an exception: the collection's errors by message, others with a traceback."""
        if isinstance(exc, IncidentResponseError):
            self.fail_json(msg=exc.message, **result)
        self.fail_json(msg='internal error (%s): %s' % (type(exc).__name__, exc), exception=traceback.format_exc(), **result)

    def run(self, main):
        """Call ``main(module)`` and exit with its result dict, or fail cleanly."""
        try:
            result = main(self)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self.fail_from_exception(exc)
        self.exit_json(**result)
