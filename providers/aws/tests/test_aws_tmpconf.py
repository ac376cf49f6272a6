import sys, types, os
import runvoy_core.testing as t
pkg = types.ModuleType("runvoy_core.testing.conformance")
pkg.__path__ = [os.path.join(os.path.dirname(t.__file__), "conformance")]
sys.modules.setdefault("runvoy_core.testing.conformance", pkg)
from test_aws_conformance import *  # noqa
