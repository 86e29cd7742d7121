#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: k8s_evidence_verify
short_description: Verify an evidence bundle against its manifest
version_added: 0.1.0
description:
  - Re-hashes every file of an evidence bundle written by M(slurm_exporter.incident_response.k8s_evidence)
    (its directory, or its C(.tar.gz)) and compares with C(manifest.json), and the manifest with
    C(manifest.json.sha256).
  - Reports every altered, missing and added file. A separate module, because verification is read-only and is
    run by other people (auditors) at other times than capture.
author:
  - slurm_exporter incident response maintainers (@slurm-exporter)
attributes:
  check_mode:
    support: full
    description: Read-only; the same in check mode.
  diff_mode:
    support: none
    description: Reads only.
options:
  path:
    description: The bundle directory or its C(.tar.gz).
    type: path
    required: true
  expected_sha256:
    description: The manifest SHA-256 recorded elsewhere (for example in the incident record); it must match too.
    type: str
  fail_on_mismatch:
    description: Fail the task when the bundle does not verify.
    type: bool
    default: false
seealso:
  - module: slurm_exporter.incident_response.k8s_evidence
'''

EXAMPLES = r'''
- name: Verify the bundle registered in the incident
  slurm_exporter.incident_response.k8s_evidence_verify:
    path: "{{ record.incident.evidence[0].path }}"
    expected_sha256: "{{ record.incident.evidence[0].sha256 }}"
    fail_on_mismatch: true
'''

RETURN = r'''
verified:
  description: True when every file matches, nothing is missing or added, and the manifest matches its digest (and O(expected_sha256)).
  returned: always
  type: bool
manifest_sha256:
  description: SHA-256 of the manifest as found.
  returned: always
  type: str
manifest_sha256_ok:
  description: Whether manifest.json matches manifest.json.sha256.
  returned: always
  type: bool
altered:
  description: Files whose content differs from the manifest (manifest.json itself when it does not match its digest).
  returned: always
  type: list
  elements: str
missing:
  description: Files in the manifest that are not in the bundle.
  returned: always
  type: list
  elements: str
added:
  description: Files in the bundle that the manifest does not list.
  returned: always
  type: list
  elements: str
files:
  description: Files listed in the manifest.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slurm_exporter.incident_response.plugins.module_utils import evidence  # noqa: E402
from ansible_collections.slurm_exporter.incident_response.plugins.module_utils.errors import IncidentResponseError  # noqa: E402


def main():
    module = AnsibleModule(argument_spec={
        'path': {'type': 'path', 'required': True},
        'expected_sha256': {'type': 'str'},
        'fail_on_mismatch': {'type': 'bool', 'default': False},
    }, supports_check_mode=True)
    try:
        result = evidence.verify_bundle(module.params['path'])
    except IncidentResponseError as exc:
        module.fail_json(msg=exc.message)
    expected = module.params['expected_sha256']
    if expected and expected.lower() != result.get('manifest_sha256'):
        result['verified'] = False
        result['expected_sha256_ok'] = False
    if module.params['fail_on_mismatch'] and not result['verified']:
        module.fail_json(msg='evidence bundle %s does not verify: %d altered, %d missing, %d added%s' % (
            module.params['path'], len(result['altered']), len(result['missing']), len(result['added']),
            '' if result['manifest_sha256_ok'] else ', manifest digest mismatch'), **result)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
