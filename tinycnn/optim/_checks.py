"""The argument checks every optimizer makes, each saying what it expected."""

from __future__ import annotations


def check_non_negative(optimizer: str, **values) -> None:
    for name, value in values.items():
        if value < 0.0:
            raise ValueError(f"{optimizer}: invalid {name} {value} (expected >= 0)")


def check_fraction(optimizer: str, **values) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{optimizer}: invalid {name} {value} (expected a number in [0, 1])")
