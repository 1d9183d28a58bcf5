"""Duration histograms: their nearest-rank percentiles stay within the proven bound of the exact ones."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest

from ksflow.analytics import histogram
from ksflow.analytics.histogram import MAX_RELATIVE_ERROR, ZERO_BUCKET, R

SEVEN_DAYS = 7 * 24 * 3600.0
PERCENTILES = (50, 95, 0.1, 1, 33.3, 99, 99.9, 100)
# Float noise only: the bounds are floats, so their ratio is R to within a few ulps.
BOUND = MAX_RELATIVE_ERROR * (1 + 1e-9)


def exact(values: list[float], p: float) -> float:
    """Nearest rank: the ceil(p/100 * n)-th smallest value."""
    ordered = sorted(values)
    rank = max(1, math.ceil(Fraction(str(p)) * len(ordered) / 100))
    return ordered[rank - 1]


def relative_error(estimate: float, truth: float) -> float:
    if truth == 0:
        return 0.0 if estimate == 0 else math.inf
    return abs(estimate - truth) / truth


def log_uniform(rng: random.Random) -> float:
    return math.exp(rng.uniform(math.log(1e-6), math.log(SEVEN_DAYS)))


def on_bounds(rng: random.Random) -> float:
    """A bucket bound or the float just below it, where an off-by-one would show."""
    bound = R ** rng.randint(histogram.MIN_BUCKET + 1, histogram.bucket_of(SEVEN_DAYS))
    return min(rng.choice([bound, math.nextafter(bound, 0.0)]), SEVEN_DAYS)


def microseconds(rng: random.Random) -> float:
    """What datetime differences give: whole microseconds, often sub-second, sometimes zero."""
    return rng.choice([0, rng.randint(1, 999_999), rng.randint(1, int(SEVEN_DAYS * 1e6))]) / 1e6


DISTRIBUTIONS: dict[str, Callable[[random.Random], float]] = {
    "log_uniform": log_uniform,
    "uniform": lambda rng: rng.uniform(0, SEVEN_DAYS),
    "whole_seconds": lambda rng: float(rng.randint(0, 600)),
    "with_zeros": lambda rng: 0.0 if rng.random() < 0.3 else log_uniform(rng),
    "sub_second": lambda rng: rng.uniform(1e-6, 1.0),
    "on_bounds": on_bounds,
    "microseconds": microseconds,
    "clustered": lambda rng: rng.gauss(120.0, 3.0) if rng.random() < 0.9 else rng.uniform(3000, 3600),
}


def test_the_bound_is_proven_below_five_percent() -> None:
    assert pytest.approx((R - 1) / (R + 1)) == MAX_RELATIVE_ERROR
    assert MAX_RELATIVE_ERROR < 0.04 < 0.05


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_percentiles_within_bound_of_exact_nearest_rank(name: str) -> None:
    rng = random.Random(f"analytics-{name}")
    draw = DISTRIBUTIONS[name]
    worst = 0.0
    for trial in range(300):
        size = rng.choice([1, 2, 3, 19, 20, 21, 100, rng.randint(1, 2000)]) if trial % 3 else rng.randint(1, 50)
        values = [max(0.0, min(draw(rng), SEVEN_DAYS)) for _ in range(size)]
        counts = histogram.of(values)
        assert histogram.count(counts) == size
        for p in PERCENTILES:
            estimate = histogram.percentile(counts, p)
            assert estimate is not None
            error = relative_error(estimate, exact(values, p))
            assert error <= BOUND, (name, trial, p, estimate, exact(values, p))
            worst = max(worst, error)
    assert worst < 0.05


def test_every_bucket_reads_back_within_bound_at_both_ends() -> None:
    for bucket in range(histogram.MIN_BUCKET, histogram.bucket_of(SEVEN_DAYS * 10) + 1):
        low, high = histogram.bounds(bucket)
        assert high / low == pytest.approx(R, rel=1e-12)
        value = histogram.representative(bucket)
        assert low < value < high
        for x in (low, math.nextafter(high, 0.0), math.sqrt(low * high)):
            assert histogram.bucket_of(x) == bucket
            assert relative_error(value, x) <= BOUND


def test_bucket_bounds_decide_exactly() -> None:
    for bucket in range(histogram.MIN_BUCKET + 1, 200):
        bound = R**bucket
        assert histogram.bucket_of(bound) == bucket
        assert histogram.bucket_of(math.nextafter(bound, 0.0)) == bucket - 1


def test_bucketing_is_monotone() -> None:
    rng = random.Random(7)
    values = sorted(rng.choice([0.0, log_uniform(rng), rng.uniform(0, 10)]) for _ in range(5000))
    buckets = [histogram.bucket_of(value) for value in values]
    assert buckets == sorted(buckets)


def test_zero_and_tiny_durations() -> None:
    assert histogram.bucket_of(0) == ZERO_BUCKET
    assert histogram.bucket_of(-0.25) == ZERO_BUCKET  # clock skew between two writers
    assert histogram.representative(ZERO_BUCKET) == 0.0
    assert histogram.percentile(histogram.of([0, 0, 0]), 95) == 0.0
    assert histogram.bucket_of(1e-6) == histogram.MIN_BUCKET == ZERO_BUCKET + 1
    # No datetime difference lies in (0, 1 µs); a float that does is counted as 1 µs, never as zero.
    assert histogram.bucket_of(1e-12) == histogram.MIN_BUCKET
    assert histogram.bucket_of(5e-324) == histogram.MIN_BUCKET
    assert relative_error(histogram.percentile(histogram.of([1e-6]), 50) or 0.0, 1e-6) <= BOUND
    with pytest.raises(ValueError):
        histogram.bounds(ZERO_BUCKET - 1)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_durations_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        histogram.bucket_of(bad)


def test_keys_are_text_for_a_dynamodb_map() -> None:
    counts = histogram.of([0, 0.5, 1, 60, 3600, SEVEN_DAYS])
    assert all(isinstance(key, str) and str(int(key)) == key for key in counts)
    assert histogram.key_of(60) == str(histogram.bucket_of(60))
    # Short keys keep bucket items small: every duration up to 7 days has a key of at most 4 characters.
    assert max(len(histogram.key_of(x)) for x in (0, 1e-6, 1e-3, 1, SEVEN_DAYS)) <= 4


def test_merge_of_parts_equals_histogram_of_whole() -> None:
    rng = random.Random(11)
    values = [log_uniform(rng) for _ in range(1000)] + [0.0] * 5
    parts = [values[i::7] for i in range(7)]
    merged = histogram.merge(histogram.of(part) for part in parts)
    assert merged == histogram.of(values)
    assert histogram.merge([merged]) == merged
    assert histogram.merge([]) == {}
    # Order of the merge does not matter.
    assert histogram.merge(reversed([histogram.of(part) for part in parts])) == merged


def test_merge_accepts_decimals_and_drops_entries_that_cancel() -> None:
    stored = {"10": Decimal(3), "11": Decimal(1)}
    retried = {"11": -1}  # a FAILED run retried: its duration is taken back out
    assert histogram.merge([stored, retried]) == {"10": 3}
    assert histogram.percentile(histogram.merge([stored, retried]), 50) == histogram.representative(10)
    assert histogram.percentile(stored, 100) == histogram.representative(11)


def test_percentile_edges() -> None:
    assert histogram.percentile({}, 50) is None
    assert histogram.percentile({"3": 0}, 50) is None
    for bad in (0, -1, 100.5):
        with pytest.raises(ValueError):
            histogram.percentile({"3": 1}, bad)
    # 95% of 20 is rank 19 exactly: the top value alone is not p95.
    values = [float(i) for i in range(1, 21)]
    assert histogram.percentile(histogram.of(values), 95) == histogram.representative(histogram.bucket_of(19.0))
    # A counter that went negative (never in a consistent store) is ignored rather than failing the read.
    assert histogram.percentile({"3": -2, "5": 1}, 50) == histogram.representative(5)
    assert histogram.count({"3": -2, "5": 1}) == 1
    with pytest.raises(ValueError):
        histogram.merge([{"not-a-bucket": 1}])
