"""Argument checks shared by the core and the adapters.

Every check raises ``ValueError`` naming the argument, the rule and the value
received, so that the same message appears on every rank of a job.
"""

import math
import numbers


def check_int(name, value, minimum=None):
    """Return ``value`` as an ``int`` after checking it is an integer >= ``minimum``.

    Integral floats such as ``1e4`` are accepted because command lines and
    config files often write counts that way; ``True``/``False`` are not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        result = int(value)
    else:
        if not math.isfinite(value) or not float(value).is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r}")
        result = int(value)

    if minimum is not None and result < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return result


def check_real(name, value, *, greater_than=None, at_least=None, less_than=None):
    """Return ``value`` as a finite ``float`` within the given open or closed bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")

    if greater_than is not None and not result > greater_than:
        raise ValueError(f"{name} must be > {greater_than}, got {value!r}")
    if at_least is not None and not result >= at_least:
        raise ValueError(f"{name} must be >= {at_least}, got {value!r}")
    if less_than is not None and not result < less_than:
        raise ValueError(f"{name} must be < {less_than}, got {value!r}")
    return result


def check_choice(name, value, choices):
    """Return ``value`` after checking it is one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value
