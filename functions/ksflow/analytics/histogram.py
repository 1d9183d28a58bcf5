"""Log-scale duration histograms: mergeable counters whose nearest-rank percentiles stay within 4% of exact.

A histogram is a sparse map {bucket index as text: count}, the shape of a DynamoDB map whose entries
an update can `ADD` to (and subtract from, when a retried run leaves its terminal state). Buckets are
log-scale so that the relative error is the same for a two-second run and a six-day one.

Bucket i (for i > ZERO_BUCKET) holds durations in [R**i, R**(i+1)) seconds, and reads back as the
harmonic midpoint v = 2*lo*hi / (lo + hi) of its bounds. For any x in [lo, hi):
    v/x - 1 <= v/lo - 1 = (hi - lo)/(hi + lo)   and   1 - v/x < 1 - v/hi = (hi - lo)/(hi + lo),
so |v - x| / x <= (R - 1)/(R + 1) = MAX_RELATIVE_ERROR (1/26, about 3.85%, for R = 1.08). Bucketing
is monotone, so the nearest-rank element of the sorted durations lies in the bucket where the
cumulative count first reaches its rank, and the reported percentile inherits that bound.
A zero duration has a bucket of its own and reads back as exactly 0.0. Durations are differences of
microsecond timestamps, so none lies strictly between 0 and 1 µs; such a value would be counted as 1 µs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction

R = 1.08
"""Ratio between a bucket's bounds: small enough for the 5% promise with margin, coarse enough that a
15-minute bucket item keeps few keys (1 ms to 7 days spans 263 buckets)."""

MAX_RELATIVE_ERROR = (R - 1) / (R + 1)
MIN_SECONDS = 1e-6
"""The smallest positive duration two datetimes can differ by."""

_LOG_R = math.log(R)

Histogram = dict[str, int]
HistogramLike = Mapping[str, int | Decimal]
"""What a store hands back: DynamoDB numbers arrive as Decimal."""


def _lower(index: int) -> float:
    return R**index


def _index_of(seconds: float) -> int:
    index = math.floor(math.log(seconds) / _LOG_R)
    # The logarithm can be off by one at a bound; the bounds themselves decide.
    while _lower(index) > seconds:
        index -= 1
    while _lower(index + 1) <= seconds:
        index += 1
    return index


MIN_BUCKET = _index_of(MIN_SECONDS)
ZERO_BUCKET = MIN_BUCKET - 1
"""Holds zero durations; no positive duration is ever put in it."""


def bucket_of(seconds: float) -> int:
    """The bucket of a duration; a tiny negative one (clocks of two writers) counts as zero."""
    if not math.isfinite(seconds):
        raise ValueError(f"Duration must be finite, not {seconds!r}")
    if seconds <= 0:
        return ZERO_BUCKET
    return _index_of(max(seconds, MIN_SECONDS))


def key_of(seconds: float) -> str:
    """The map key a duration's counter lives under."""
    return str(bucket_of(seconds))


def bounds(bucket: int) -> tuple[float, float]:
    """[low, high) in seconds of a bucket; (0.0, 0.0) for the zero bucket."""
    if bucket == ZERO_BUCKET:
        return 0.0, 0.0
    if bucket < ZERO_BUCKET:
        raise ValueError(f"No histogram bucket {bucket}")
    return _lower(bucket), _lower(bucket + 1)


def representative(bucket: int) -> float:
    """The value a bucket reads back as: the one with the least worst-case relative error."""
    low, high = bounds(bucket)
    if high == 0.0:
        return 0.0
    return 2 * low * high / (low + high)


def of(durations: Iterable[float]) -> Histogram:
    """The histogram of some durations (what a store would hold after adding each one)."""
    histogram: Histogram = {}
    for seconds in durations:
        key = key_of(seconds)
        histogram[key] = histogram.get(key, 0) + 1
    return histogram


def merge(histograms: Iterable[HistogramLike]) -> Histogram:
    """Sum histograms key by key; entries that sum to zero are dropped so merged maps stay sparse."""
    total: dict[int, int] = {}
    for histogram in histograms:
        for key, count in histogram.items():
            bucket = int(key)
            total[bucket] = total.get(bucket, 0) + int(count)
    return {str(bucket): count for bucket, count in sorted(total.items()) if count != 0}


def count(histogram: HistogramLike) -> int:
    """How many durations the histogram holds (non-positive counters ignored, as in percentile)."""
    return sum(max(int(value), 0) for value in histogram.values())


def percentile(histogram: HistogramLike, p: float) -> float | None:
    """Nearest-rank p-th percentile (0 < p <= 100): the value at rank ceil(p/100 * n); None when empty.

    A counter that went non-positive (which a consistent store never shows) contributes nothing
    rather than failing a read.
    """
    if not 0 < p <= 100:
        raise ValueError(f"Percentile must be in (0, 100], not {p}")
    entries = sorted((int(key), int(value)) for key, value in histogram.items() if int(value) > 0)
    total = sum(value for _, value in entries)
    if total == 0:
        return None
    # Exact arithmetic: 95% of 20 is rank 19, not 19.000000000000004 rounded up to 20.
    rank = max(1, math.ceil(Fraction(str(p)) * total / 100))
    seen = 0
    for bucket, value in entries:
        seen += value
        if seen >= rank:
            return representative(bucket)
    raise AssertionError("unreachable: rank <= total")
