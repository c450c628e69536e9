"""Tests of the engine's compiled geometry (``engine.kernels``, ``engine.angles``): the
geodesic it measures against pyproj's, and the bounds its decisions rest on.

A decision says "no" from a lower bound of the distance and "yes" from an upper bound, and
measures only in between; each bound is checked here on its own, against the exact value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deconflict.engine.angles import (
    angle_above,
    asin_above,
    central_angle,
    chord_below,
    exact_angle,
    sine_below,
)
from deconflict.engine.kernels import radii_bounds, vincenty_m
from support import GEOD


def test_vincenty_agrees_with_pyproj() -> None:
    rng = np.random.default_rng(4)
    lon1 = rng.uniform(-180, 180, 3000)
    lat1 = np.concatenate(
        (rng.uniform(-90, 90, 2000), rng.uniform(85, 90, 500), rng.uniform(-90, -85, 500))
    )
    lon2, lat2, _ = GEOD.fwd(
        lon1, lat1, rng.uniform(0, 360, 3000), rng.uniform(0.01, 2_000_000, 3000)
    )
    _, _, expected = GEOD.inv(lon1, lat1, lon2, lat2)
    for a, b, c, d, e in zip(lon1, lat1, lon2, lat2, expected, strict=True):
        got = vincenty_m(math.radians(a), math.radians(b), math.radians(c), math.radians(d))
        assert got == pytest.approx(e, rel=1e-11, abs=1e-6)


def _unit(lon: float, lat: float) -> tuple[float, float, float]:
    lo, la = math.radians(lon), math.radians(lat)
    return (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))


def test_geodesics_stay_within_the_radii_of_their_latitudes() -> None:
    """Metres per radian of central angle lie in [M_min, N_max] of the band both ends span,
    at every latitude: what lets a decision skip measuring far and near pairs."""
    rng = np.random.default_rng(11)
    lon1 = rng.uniform(-180, 180, 2000)
    lat1 = np.concatenate((rng.uniform(-89, 89, 1500), rng.uniform(80, 89.9, 500)))
    lon2, lat2, _ = GEOD.fwd(lon1, lat1, rng.uniform(0, 360, 2000), rng.uniform(1, 50_000, 2000))
    _, _, metres = GEOD.inv(lon1, lat1, lon2, lat2)
    for a, b, c, d, m in zip(lon1, lat1, lon2, lat2, metres, strict=True):
        psi = central_angle(*_unit(a, b), *_unit(c, d))
        # A geodesic this short stays within its ends' latitudes, give or take a hair.
        z = sorted((math.sin(math.radians(b)), math.sin(math.radians(d))))
        m_min, n_max = radii_bounds(z[0] - 1e-3, z[1] + 1e-3)
        assert m_min * psi <= m * (1 + 1e-12)
        assert m <= n_max * psi * (1 + 1e-12)


@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-9, 1e-6, 1e-3, 0.01, 0.1, 0.5, 1.0, 1.5])
def test_angle_bounds_hold_on_both_sides(angle: float) -> None:
    chord = 2.0 * math.sin(angle / 2.0)
    sine = math.sin(angle)
    assert chord_below(angle) <= chord
    assert sine_below(angle) <= sine
    assert angle_above(chord) >= 2.0 * math.asin(chord / 2.0)
    assert asin_above(sine) >= math.asin(sine)
    assert exact_angle(chord, sine) == pytest.approx(angle, rel=1e-12, abs=1e-15)
    # Tight for the small angles the decisions are about.
    if angle <= 0.01:
        assert angle_above(chord) - angle <= 1e-9 * max(angle, 1e-12)


def test_negative_angles_have_no_bound_below() -> None:
    assert chord_below(-1e-9) == -1.0
    assert sine_below(-1e-9) == -1.0


def test_central_angle_is_accurate_near_zero_and_pi() -> None:
    a = _unit(10.0, 45.0)
    near = _unit(10.0, 45.0 + 1e-9)
    assert central_angle(*a, *near) == pytest.approx(math.radians(1e-9), rel=1e-6)
    antipode = (-a[0], -a[1], -a[2])
    assert central_angle(*a, *antipode) == pytest.approx(math.pi, abs=1e-15)
