"""The pure parts of benchmarks/load_test.py: the memory growth, the bound, the verdict and
the bodies. The load test itself is a benchmark script (minutes long), not a test."""

import dataclasses
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def lt() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))  # load_test imports service_common beside it
    try:
        yield importlib.import_module("load_test")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_a_steady_leak_is_measured_between_the_windows_after_warm_up(lt: ModuleType) -> None:
    samples = [(float(t), 100.0 + t) for t in range(61)]  # 1 MiB a second
    growth = lt.memory_growth(samples, warmup=10, window=10, duration=60)
    assert growth.baseline_mib == 114.5  # median of t = 10 .. 19
    assert growth.final_mib == 155.0  # median of t = 50 .. 60
    assert growth.growth_mib == pytest.approx(40.5)
    assert growth.growth_percent == pytest.approx(100 * 40.5 / 114.5)
    assert growth.slope_mib_per_min == pytest.approx(60.0)


def test_warm_up_and_a_single_spike_are_not_growth(lt: ModuleType) -> None:
    samples = [(float(t), 150.0 if t < 10 else 200.0) for t in range(61)]
    samples[55] = (55.0, 400.0)  # one spike in the last window
    growth = lt.memory_growth(samples, warmup=10, window=10, duration=60)
    assert growth.growth_mib == 0.0
    assert lt.failures(report(growth), 50, 20) == []


def test_windows_that_do_not_fit_the_load_are_refused(lt: ModuleType) -> None:
    with pytest.raises(ValueError, match="lengthen --duration"):
        lt.memory_growth([(0.0, 1.0)], warmup=10, window=10, duration=25)


def test_the_bound_is_the_tighter_of_mib_and_percent(lt: ModuleType) -> None:
    assert lt.growth_bound(180.0, 50, 20) == pytest.approx(36.0)
    assert lt.growth_bound(500.0, 50, 20) == 50.0


def test_answers_are_classified_against_what_each_body_should_get(lt: ModuleType) -> None:
    kinds = lt.classify({"200:200": 90, "422:422": 30, "200:422": 2, "422:500": 1, "0:200": 4})
    assert kinds == {"ok": 90, "expected_422": 30, "unexpected": 7, "server_errors": 1}


def test_the_verdict_names_each_kind_of_failure(lt: ModuleType) -> None:
    leak = lt.Growth(200.0, 260.0, 60.0, 30.0, 60.0)
    bad = report(
        leak,
        statuses={"200:200": 100, "422:500": 3},
        errors={"unexpected": 3, "server_errors": 3, "read": 2, "timeouts": 4},
        log_errors=1,
        service_alive_after=False,
        processes={"replaced": 1},
    )
    found = lt.failures(bad, 50, 20)
    assert found[0] == "3 unexpected answers (3 x 500 for a body that should get 422)"
    assert found[1:4] == ["2 socket errors", "4 timeouts", "the service logged 1 errors"]
    assert found[4:6] == [
        "the service exited during the load",
        "1 of the service's processes ended during the load (a worker died)",
    ]
    assert found[6] == "memory grew by 60.0 MiB under load, more than the bound of 40.0 MiB"
    growth_within = lt.Growth(200.0, 239.0, 39.0, 19.5, 39.0)
    assert lt.failures(report(growth_within), 50, 20) == []


def test_mixed_bodies_put_an_invalid_record_in_every_four(lt: ModuleType) -> None:
    records = [{"radius": float(i), "texture": 2.0 * i} for i in range(5)]
    assert [body.expect for body in lt.bodies(records, mixed=False)] == [200] * 5
    mixed = lt.bodies(records, mixed=True)
    invalid = [body for body in mixed if body.expect == 422]
    assert len(invalid) * 4 == len(mixed)
    assert {body.label for body in invalid} == {
        "empty object",
        "record without 'radius'",
        "values are objects",
        "an array, not an object",
    }
    assert {"texture": 0.0} in [body.document for body in invalid]
    valid = [body.document for body in mixed if body.expect == 200]
    assert all(document in records for document in valid)


def report(growth: Any, **changes: Any) -> dict[str, Any]:
    """A report as load_test builds it, clean unless ``changes`` say otherwise."""
    errors = {"unexpected": 0, "server_errors": 0, "connect": 0, "read": 0, "write": 0}
    errors |= {"timeouts": 0} | changes.pop("errors", {})
    return {
        "requests": 100,
        "statuses": {"200:200": 100},
        "errors": errors,
        "log_errors": 0,
        "service_alive_after": True,
        "processes": {"replaced": 0},
        "memory": {"growth": dataclasses.asdict(growth)},
    } | changes
