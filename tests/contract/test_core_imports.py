"""The contract, the run store and the reports import without torch and without any experiment."""

import subprocess
import sys

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name.startswith("fmtheory.experiments"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import fmtheory.contract, fmtheory.checks, fmtheory.sections, fmtheory.version
import fmtheory.runs.store, fmtheory.report
print("ok", "torch" in sys.modules)
"""


def test_store_and_report_import_with_torch_blocked():
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["ok", "False"]
