#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: incident_store_copy
short_description: Copy the incident records from one store into another (file store to cluster store and back)
version_added: 0.1.0
description:
  - Copies every incident record, with its audit trail, from the store the store options name (the source,
    O(store_backend), O(store), O(store_namespace), O(store_kubernetes)) into O(destination), as it is (revision and
    times unchanged), then reads each one back from the destination and compares its SHA-256 (canonical JSON) with the
    source's. A copy that does not read back identical fails the task.
  - The way to move from the file store to the kubernetes store (C(store_backend=file), O(destination.backend=kubernetes))
    and back. Idempotent - a record already in the destination with the same digest is RV(unchanged).
  - A record that exists in the destination with other content is left alone and fails the task, unless O(overwrite).
    An id copied into the kubernetes store is never handed out again there.
  - Evidence bundles, reports and the outbox are files under the store directory in both backends; copy them with the
    directory if the destination runs on another machine.
  - See C(docs/incident-store.md).
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
extends_documentation_fragment:
  - slurm_exporter.incident_response.store
attributes:
  check_mode:
    support: full
    description: Reads both stores and reports what would be copied (RV(copied), RV(replaced)) without writing.
  diff_mode:
    support: none
    description: The records are listed by id in the result.
options:
  destination:
    description: The store the records are copied into.
    type: dict
    required: true
    suboptions:
      backend:
        description: V(file) or V(kubernetes), as O(store_backend).
        type: str
        choices: [file, kubernetes]
        required: true
      store:
        description: The destination's directory (the file store; with V(kubernetes) its local directory of evidence,
          reports and outbox). Defaults to O(store).
        type: path
      namespace:
        description: Namespace of the C(Incident) objects with V(kubernetes).
        type: str
        default: incident-response
      kubeconfig:
        description:
          - Path to the kubeconfig of the destination's cluster with V(kubernetes). The other connection settings
            come from the environment as for O(store_kubernetes).
        type: path
      context:
        description: Context of that kubeconfig.
        type: str
  overwrite:
    description: Replace a record that exists in the destination with other content (the source wins).
    type: bool
    default: false
  ids:
    description: Only copy these incidents (C(INC-YYYYMMDD-NNNN)); every record when not given.
    type: list
    elements: str
seealso:
  - module: slurm_exporter.incident_response.incident_info
'''

EXAMPLES = r'''
- name: Move the incidents into the cluster
  slurm_exporter.incident_response.incident_store_copy:
    store: /var/incident-response
    store_backend: file
    destination:
      backend: kubernetes
      namespace: incident-response
  register: copied

- name: And back into a directory
  slurm_exporter.incident_response.incident_store_copy:
    store: /var/incident-response
    store_backend: kubernetes
    store_namespace: incident-response
    destination:
      backend: file
      store: /srv/incident-archive
'''

RETURN = r'''
copied:
  description: Ids of the records created in the destination (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [INC-20261124-0001]
unchanged:
  description: Ids of the records the destination already held with the same digest.
  returned: always
  type: list
  elements: str
replaced:
  description: Ids of the records replaced with O(overwrite).
  returned: always
  type: list
  elements: str
invalid:
  description: Source records that could not be read (not copied), with the reason.
  returned: always
  type: list
  elements: str
digests:
  description: The SHA-256 of each copied record (canonical JSON), the same in both stores.
  returned: always
  type: dict
source:
  description: Where the records were read (a directory or C(kubernetes://<namespace>)).
  returned: always
  type: str
destination:
  description: Where they were copied.
  returned: always
  type: str
'''

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.module import IncidentResponseModule  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import record as rec  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import stores  # noqa: E402

ARGUMENT_SPEC = {
    'destination': {'type': 'dict', 'required': True, 'options': {
        'backend': {'type': 'str', 'required': True, 'choices': list(stores.BACKENDS)},
        'store': {'type': 'path'},
        'namespace': {'type': 'str', 'default': 'incident-response'},
        'kubeconfig': {'type': 'path'},
        'context': {'type': 'str'},
    }},
    'overwrite': {'type': 'bool', 'default': False},
    'ids': {'type': 'list', 'elements': 'str'},
}


def run(module):
    params = module.params
    ids = [rec.validate_id(item) for item in params['ids'] or ()]
    source_settings = module.store_settings()
    target = params['destination']
    destination_settings = stores.settings(target['backend'], target['store'] or source_settings['path'], target['namespace'],
                                           {'kubeconfig': target['kubeconfig'], 'context': target['context']},
                                           source_settings['lock_timeout'])
    if stores.describe(destination_settings) == stores.describe(source_settings) and target['backend'] == source_settings['backend']:
        module.fail_json(msg='destination: the same store as the source (%s)' % stores.describe(source_settings))
    source = stores.open_store(source_settings, read_only=True)
    destination = stores.open_store(destination_settings, read_only=module.check_mode)
    try:
        if not module.check_mode and destination.backend == 'file':
            destination.ensure()
        result = stores.copy_store(source, destination, overwrite=params['overwrite'], check_mode=module.check_mode, ids=ids)
    finally:
        source.close()
        destination.close()
    result.update(changed=bool(result['copied'] or result['replaced']), source=stores.describe(source_settings),
                  destination=stores.describe(destination_settings))
    return result


def main():
    module = IncidentResponseModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(run)


if __name__ == '__main__':
    main()
