"""The test files docs/testing.md shows (each code block that starts `# tests/NAME.py`) pass as a
user would run them: written to a project of their own, with pytest and the ivr.testing plugin."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from conftest import FLOWS, ROOT

DOC = ROOT / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n# (tests/test_\w+\.py)\n(.*?)```", re.DOTALL)
EXAMPLES = dict(BLOCK.findall(DOC.read_text(encoding="utf-8")))


def test_the_guide_shows_test_files():
    assert {"tests/test_main_line.py", "tests/test_texts.py", "tests/test_assistant_line.py"} <= set(EXAMPLES)


def test_the_documented_test_files_pass(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(FLOWS, project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    for name, code in EXAMPLES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IVR_FLOWS_DIR": "flows"}
    for unset in ("IVR_HOOKS", "IVR_SCHEDULES", "IVR_RECORD_DIR"):
        env.pop(unset, None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "ivr.testing", "-p", "no:cacheprovider", *sorted(EXAMPLES)],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout
