"""Mean ± standard deviation over folds (or any small set of values), as the paper's tables report them.

The standard deviation is the sample one (``ddof=1``: divided by n - 1), the usual choice for the spread
of K cross-validation folds; with a single value it is undefined and reported as ``None``, shown as
``(n = 1)`` instead of a ± term.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lesionseg.errors import ParameterError


@dataclass(frozen=True)
class MeanSD:
    """Mean and sample standard deviation of n values.

    Attributes:
        mean: the arithmetic mean.
        sd: the sample standard deviation (ddof = 1), None when n = 1.
        n: the number of values.
    """

    mean: float
    sd: float | None
    n: int

    def format(self, digits: int = 3) -> str:
        """``"0.660 ± 0.050"`` (or ``"0.660 (n = 1)"`` for a single value)."""
        if self.sd is None:
            return f"{self.mean:.{digits}f} (n = 1)"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"

    def __str__(self) -> str:
        return self.format()


def fold_summary(values_per_fold: Iterable[float | None]) -> MeanSD:
    """Mean ± sample standard deviation (ddof = 1) of one value per fold.

    Args:
        values_per_fold: one number per fold; ``None`` entries (a fold without that value, e.g. no
            validation) are skipped.

    Returns:
        A :class:`MeanSD` over the values given.

    Raises:
        ParameterError: no value, or a value that is not a finite number.
    """
    values = []
    for value in values_per_fold:
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"a fold value must be a number, not {value!r}.") from None
        if not math.isfinite(number):
            raise ParameterError(f"a fold value must be a finite number, not {value!r}.")
        values.append(number)
    if not values:
        raise ParameterError("mean ± sd needs at least one value.")
    array = np.asarray(values, dtype=float)
    sd = float(np.std(array, ddof=1)) if array.size > 1 else None
    return MeanSD(float(array.mean()), sd, int(array.size))
