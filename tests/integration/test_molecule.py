# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The molecule scenario (extensions/molecule/security_breach) runs end to end: create, converge, idempotence, verify."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT, ansible_env


@pytest.mark.skipif(shutil.which('molecule') is None, reason='molecule is not installed (requirements-test.txt)')
def test_security_breach_scenario(tmp_path):
    env = ansible_env({'MOLECULE_NO_LOG': 'false', 'NO_COLOR': '1', 'XDG_CACHE_HOME': str(tmp_path / 'cache')})
    done = subprocess.run(['molecule', 'test', '-s', 'security_breach'], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert re.search(r'security_breach\s*: actions=6\s+successful=6\s+disabled=0\s+skipped=0\s+missing=0\s+failed=0', output), output[-3000:]
    for play in ('Security breach response', 'Verify - the cluster and the incident after the security breach response'):
        assert 'PLAY [%s]' % play in output, play
