"""Property-based fuzzing shared by the reader suites (index: test_fuzz, graph: test_fuzz_metagraph).

Each property becomes two tests: a deterministic CI-sized run, and a long randomised run marked
``fuzz`` (``TF2HF_FUZZ_EXAMPLES`` examples per property, opt-in with ``pytest -m fuzz``). The
number of cases tried is printed once a module's properties have run.
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

LONG_EXAMPLES = int(os.environ.get("TF2HF_FUZZ_EXAMPLES", "20000"))


class Fuzzing:
    """The properties of one suite, their case counts, and the line that reports them."""

    def __init__(self, label: str, suppress=(HealthCheck.too_slow, HealthCheck.function_scoped_fixture)):
        self.label = label
        self.counts: Counter[str] = Counter()
        self._suppress = list(suppress)

    def _settings(self, examples: int, ci: bool) -> settings:
        return settings(max_examples=examples, deadline=None, derandomize=ci, database=None, suppress_health_check=self._suppress)

    def twice(self, ci_examples: int = 200, **strategies):
        """Make a CI-sized test and a long ``fuzz``-marked test of one property."""

        def wrap(body):
            @functools.wraps(body)
            def counted(*args, **kwargs):
                self.counts[body.__name__] += 1
                body(*args, **kwargs)

            ci = self._settings(ci_examples, ci=True)(given(**strategies)(counted))
            long = pytest.mark.fuzz(self._settings(LONG_EXAMPLES, ci=False)(given(**strategies)(counted)))
            return ci, long

        return wrap

    def report_fixture(self):
        """A module-scoped autouse fixture printing ``<label>: N cases in T s (per property)``."""

        @pytest.fixture(scope="module", autouse=True)
        def report(request):
            started = time.perf_counter()
            yield
            if not self.counts:
                return
            took = time.perf_counter() - started
            parts = ", ".join(f"{name.removeprefix('check_')} {n}" for name, n in sorted(self.counts.items()))
            line = f"{self.label}: {sum(self.counts.values())} cases in {took:.1f} s ({parts})"
            capture = request.config.pluginmanager.get_plugin("capturemanager")
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if capture is None or reporter is None:
                print(line)
                return
            with capture.global_and_fixture_disabled():
                reporter.write_line("")
                reporter.write_line(line)

        return report
