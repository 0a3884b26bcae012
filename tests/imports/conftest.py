"""The journey tests' fixtures (a runtime on the time-skipping server and a real worker), for
the historic-rule tests."""

from tests.journeys.conftest import jruntime, worker  # noqa: F401 - fixtures
