import pytest

from bench.figures.flat import costs


def test_a_constant_cost_per_read_is_flat() -> None:
    looks = [(r, r * 50e-6) for r in range(0, 10_001, 700)] + [(10_000, 0.5)]
    got = costs(looks)
    assert got["reads"] == 10_000
    assert got["cpu_us_per_read_first_10pct"] == pytest.approx(50, rel=1e-6)
    assert got["cpu_us_per_read_last_10pct"] == pytest.approx(50, rel=1e-6)
    assert got["ratio"] == pytest.approx(1.0)


def test_a_cost_that_grows_with_what_was_read_shows_in_the_last_tenth() -> None:
    # CPU(r) = r^2 / 2 µs: each read costs r µs, so the last tenth costs about 19x the first.
    looks = [(r, r * r / 2 * 1e-6) for r in range(0, 1_001, 10)]
    got = costs(looks)
    assert got["cpu_us_per_read_first_10pct"] == pytest.approx(50, rel=1e-6)
    assert got["cpu_us_per_read_last_10pct"] == pytest.approx(950, rel=1e-6)
    assert got["ratio"] == pytest.approx(19.0)


def test_the_marks_are_interpolated_between_looks_and_start_from_the_first_look() -> None:
    # Two looks only, the first after some reads: a straight line between them.
    got = costs([(200, 1.0), (1_200, 2.0)])
    assert got["reads"] == 1_000
    assert got["cpu_us_per_read_first_10pct"] == pytest.approx(1000)
    assert got["ratio"] == pytest.approx(1.0)


def test_nothing_read_is_an_error_not_a_figure() -> None:
    with pytest.raises(ValueError, match="read nothing"):
        costs([(5, 1.0), (5, 2.0)])
