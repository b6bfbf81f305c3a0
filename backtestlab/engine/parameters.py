"""Typed strategy parameters: coercion with clear messages, grid validation, did-you-mean."""

from __future__ import annotations

import difflib
import math
import numbers
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np


class ParameterError(ValueError):
    """Invalid parameter; ``field`` names the offending parameter (or ``"parameter_grid"``,
    ``"strategy"``) so forms can attach the message to the right input."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _fmt(x: Any) -> str:
    """Compact number formatting for messages: 50.0 -> '50', 0.1 -> '0.1'."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return repr(x)
    if isinstance(x, numbers.Integral):
        digits = str(abs(int(x)))
        sign = "-" if x < 0 else ""
        if len(digits) > 18:
            return f"{sign}{digits[0]}.{digits[1:4]}e+{len(digits) - 1}"
        return sign + digits
    f = float(x)
    if math.isfinite(f) and f == int(f) and abs(f) < 1e15:
        return str(int(f))
    return repr(f)


def did_you_mean(kind: str, name: str, known: Sequence[str]) -> str:
    """``"unknown <kind> 'x'; did you mean 'y'? Known: a, b"`` (suggestion only if close)."""
    name_s = str(name)
    close = difflib.get_close_matches(name_s, list(known), n=1)
    if not close and len(name_s) >= 2:
        # difflib misses abbreviations ('sma' vs 'sma_cross'); a substring match is a
        # better hint than none.
        close = [k for k in known if name_s.lower() in k.lower()][:1]
    hint = f"; did you mean '{close[0]}'?" if close else "."
    return f"unknown {kind} '{name}'{hint} Known: {', '.join(known)}"


ROLES: tuple[str, ...] = ("signal", "exit", "sizing")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "!=": operator.ne,
}
_CONSTRAINT = re.compile(
    r"^\s*([A-Za-z_]\w*)\s*(<=|>=|<|>|!=)\s*([A-Za-z_]\w*|-?[\d.]+(?:e-?\d+)?)\s*$"
)


class Constraint:
    """A rule every combination must keep, written as the trader says it: ``"fast < slow"``.

    The left side is a parameter name; the right side a parameter name or a number; the
    operator one of ``< <= > >= !=``.  A constraint works on one combination (a mapping of
    values: :meth:`message`) and on a whole sweep at once (a mapping of equal-length arrays:
    :meth:`holds`), so a grid's broken combinations are counted without a Python loop.
    ``reason`` is appended to the message (e.g. "this combination never trades").
    """

    def __init__(self, rule: str, reason: str = ""):
        match = _CONSTRAINT.match(rule)
        if not match:
            raise ValueError(
                f"constraint {rule!r}: write it as '<parameter> <op> <parameter or number>' "
                "with op one of <, <=, >, >=, != (e.g. 'fast < slow')"
            )
        self.left, self.op, right = match.groups()
        self.right: str | float = right if re.match(r"[A-Za-z_]", right) else float(right)
        self.rule = f"{self.left} {self.op} {right}"
        self.reason = reason

    @property
    def names(self) -> tuple[str, ...]:
        return (self.left,) + ((self.right,) if isinstance(self.right, str) else ())

    def holds(self, values: Mapping[str, Any]) -> Any:
        """True where the rule holds (a bool, or a bool array for array values)."""
        right = values[self.right] if isinstance(self.right, str) else self.right
        return _OPS[self.op](values[self.left], right)

    def message(self, params: Mapping[str, Any]) -> str | None:
        if self.holds(params):
            return None
        shown = ", ".join(f"{n}={_fmt(params[n])}" for n in self.names)
        return f"{self.rule} does not hold ({shown})" + (f"; {self.reason}" if self.reason else "")

    __call__ = message

    def __repr__(self) -> str:
        return f"Constraint({self.rule!r})"


@dataclass(frozen=True)
class Param:
    """One strategy parameter.

    ``low``/``high`` are inclusive bounds for numeric kinds; ``choices`` lists the allowed
    values for ``kind == "choice"``.  ``role`` says what the parameter acts on: ``"signal"``
    (the default: entries and exits), ``"exit"`` (only stop and target levels) or
    ``"sizing"`` (only the position size).  Combinations of a sweep that share their signal
    parameters share one signal computation; exit and sizing parameters reach the strategy's
    ``levels`` only.
    """

    name: str
    kind: Literal["int", "float", "bool", "choice"]
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    label: str = ""
    help: str = ""
    role: Literal["signal", "exit", "sizing"] = "signal"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(
                f"parameter {self.name!r}: role must be one of {', '.join(ROLES)}, "
                f"got {self.role!r}"
            )

    def _err(self, message: str) -> ParameterError:
        return ParameterError(self.name, message)

    def _bounds_msg(self, got: Any) -> str:
        if self.low is not None and self.high is not None:
            lo, hi = _fmt(self.low), _fmt(self.high)
            return f"{self.name} must be between {lo} and {hi}, got {_fmt(got)}"
        if self.low is not None:
            return f"{self.name} must be at least {_fmt(self.low)}, got {_fmt(got)}"
        return f"{self.name} must be at most {_fmt(self.high)}, got {_fmt(got)}"

    def _check_bounds(self, v: float | int) -> None:
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise self._err(self._bounds_msg(v))

    def coerce(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type or raise ParameterError.

        Strict: bools are not numbers, strings are not parsed, NaN/inf (including ``1e309``
        which parses to inf) are rejected, floats for an int parameter must be integral
        (``5.0 -> 5``), ints are accepted for floats, bounds are inclusive.
        """
        if self.kind == "bool":  # pragma: no mutate: Eq_LtE
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise self._err(f"{self.name} must be true or false, got {value!r}")
        if self.kind == "choice":  # pragma: no mutate: Eq_LtE
            for c in self.choices:
                if type(c) is type(value) and c == value:
                    return c
            if isinstance(value, np.generic):
                return self.coerce(value.item())
            raise self._err(
                f"{self.name} must be one of {', '.join(map(repr, self.choices))}, got {value!r}"
            )
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise self._err(f"{self.name} must be a number, got {value!r}")
        if isinstance(value, numbers.Integral):
            iv = int(value)
            if self.kind == "int":  # pragma: no mutate: Eq_GtE
                self._check_bounds(iv)
                return iv
            try:
                f = float(iv)
            except OverflowError:
                raise self._err(self._bounds_msg(iv)) from None
            self._check_bounds(f)
            return f
        f = float(value)
        if not math.isfinite(f):
            raise self._err(f"{self.name} must be a finite number, got {value!r}")
        if self.kind == "int":  # pragma: no mutate: Eq_GtE
            if not f.is_integer():
                raise self._err(f"{self.name} must be a whole number, got {_fmt(f)}")
            iv = int(f)
            self._check_bounds(iv)
            return iv
        self._check_bounds(f)
        return f


_RANGE_KEYS = frozenset({"start", "stop", "step"})


class ParameterSpace:
    """Ordered set of :class:`Param` with validation helpers.

    ``constraints`` describe combinations that are legal but degenerate (e.g. ``fast >= slow``
    for an SMA crossover, which never trades): a rule string such as ``"fast < slow"`` (see
    :class:`Constraint`) or a callable ``params -> str | None`` returning the reason a
    combination breaks it.  A sweep skips the combinations that break one
    (:func:`~backtestlab.engine.sweep.allowed`): they are never run; a single run or an
    applied parameter set that breaks one is refused with the message.
    """

    def __init__(
        self,
        params: Sequence[Param],
        constraints: Sequence[str | Constraint | Callable[[Mapping[str, Any]], str | None]] = (),
    ):
        self.params: tuple[Param, ...] = tuple(params)
        self.names: tuple[str, ...] = tuple(p.name for p in self.params)
        if len(set(self.names)) != len(self.names):
            raise ValueError("duplicate parameter names")
        self._by_name = {p.name: p for p in self.params}
        self._constraints = tuple(Constraint(c) if isinstance(c, str) else c for c in constraints)
        for c in self._constraints:
            if isinstance(c, Constraint):
                unknown = [n for n in c.names if n not in self._by_name]
                if unknown:
                    raise ValueError(
                        f"constraint {c.rule!r}: "
                        + did_you_mean("parameter", unknown[0], self.names)
                    )

    @property
    def constraints(self) -> tuple:
        return self._constraints

    def names_with_role(self, *roles: str) -> tuple[str, ...]:
        """Parameter names whose role is one of ``roles``, in declared order."""
        return tuple(p.name for p in self.params if p.role in roles)

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise ParameterError(name, did_you_mean("parameter", name, self.names)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def _check_names(self, keys) -> None:
        for k in keys:
            if k not in self._by_name:
                raise ParameterError(str(k), did_you_mean("parameter", k, self.names))

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce every given value, fill defaults; result is in declared order."""
        self._check_names(params)
        return {
            p.name: p.coerce(params[p.name]) if p.name in params else p.default for p in self.params
        }

    def check_constraints(self, params: Mapping[str, Any]) -> str | None:
        """First constraint message for a (validated) combination, or None."""
        for rule in self._constraints:
            msg = rule(params)
            if msg:
                return msg
        return None

    def _range_count(self, p: Param, spec: Mapping[str, Any]) -> tuple[Any, Any, int]:
        extra = set(spec) - _RANGE_KEYS
        missing = _RANGE_KEYS - set(spec)
        if extra or missing:
            raise ParameterError(p.name, "a range needs exactly the keys start, stop and step")
        if p.kind not in ("int", "float"):
            raise ParameterError(p.name, f"a range is only allowed for numbers, not {p.kind}")
        start = p.coerce(spec["start"])
        stop = p.coerce(spec["stop"])
        step_param = Param(p.name, p.kind, p.default)  # step is unbounded but same type
        step = step_param.coerce(spec["step"])
        if step <= 0:
            raise ParameterError(p.name, f"range step must be > 0, got {_fmt(step)}")
        if start > stop:
            raise ParameterError(
                p.name, f"range start {_fmt(start)} is greater than stop {_fmt(stop)}"
            )
        if p.kind == "int":  # pragma: no mutate: Eq_GtE
            count = (stop - start) // step + 1
        else:
            # Tolerance so that 0.1..0.3 step 0.1 includes 0.3 despite binary rounding.
            q = (stop - start) / step
            if not math.isfinite(q):
                raise ParameterError(
                    p.name, "range step is too small: the range has too many values"
                )
            count = math.floor(q + 1e-9) + 1
        return start, step, count

    def validate_grid(self, grid: Mapping[str, Any], *, max_combinations: int) -> dict[str, list]:
        """Validate a parameter grid and return ``{name: [values...]}`` in declared order.

        Each entry is a list of values, a scalar (= one value) or a range spec
        ``{"start": a, "stop": b, "step": s}`` with inclusive stop.  Values are coerced,
        duplicates dropped (first occurrence kept), missing parameters get ``[default]``.
        The combination count is the product of the de-duplicated list lengths and of the
        range counts, computed before any range is expanded or any product is formed, so
        huge grids are rejected without materialising anything.
        """
        self._check_names(grid)
        counts: dict[str, int] = {}
        ranges: dict[str, tuple[Any, Any, int]] = {}
        lists: dict[str, list] = {}
        for name, spec in grid.items():
            p = self._by_name[name]
            if isinstance(spec, Mapping):
                start, step, count = self._range_count(p, spec)
                if count > max_combinations:
                    raise ParameterError(
                        name,
                        f"range has {count} values, more than the cap of {max_combinations} "
                        "combinations",
                    )
                ranges[name] = (start, step, count)
                counts[name] = count
            else:
                # Explicit lists are already materialised by the caller, so coercing and
                # de-duplicating them before counting costs nothing extra.
                raw = list(spec) if isinstance(spec, (list, tuple, np.ndarray)) else [spec]
                if not raw:
                    raise ParameterError(name, "needs at least one value")
                lists[name] = self._coerce_unique(p, raw)
                counts[name] = len(lists[name])
        total = 1
        for c in counts.values():
            total *= c
        if total > max_combinations:
            raise ParameterError(
                "parameter_grid",
                f"{total} combinations exceed the cap of {max_combinations}; "
                "reduce the number of values per parameter",
            )
        out: dict[str, list] = {}
        for p in self.params:
            if p.name in lists:
                out[p.name] = lists[p.name]
            elif p.name in ranges:
                start, step, count = ranges[p.name]
                if p.kind == "int":  # pragma: no mutate: Eq_GtE
                    raw = [start + k * step for k in range(count)]
                else:
                    # Rounding removes binary noise (0.1 + 2 * 0.1 -> 0.3) so values hash
                    # like the numbers the user typed.
                    raw = [round(start + k * step, 12) for k in range(count)]
                out[p.name] = self._coerce_unique(p, raw)
            else:
                out[p.name] = [p.default]
        return out

    @staticmethod
    def _coerce_unique(p: Param, raw: Sequence[Any]) -> list:
        values: list = []
        seen: set = set()
        for v in raw:
            c = p.coerce(v)
            key = (type(c), c)
            if key not in seen:
                seen.add(key)
                values.append(c)
        return values
