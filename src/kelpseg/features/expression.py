"""Compile index formulas (spyndex syntax) into torch functions, safely and once.

A formula such as ``"(N-R)/(N+R)"`` is parsed with :mod:`ast` and only arithmetic is accepted:
numbers, names, ``+ - * / **``, unary minus and the functions ``exp``, ``ln``, ``sqrt`` and
``abs``. Nothing is passed to ``eval``, so a catalogue entry cannot run code.

Undefined arithmetic gives NaN rather than ``inf`` or an error: a zero denominator, the log of
a non-positive value, zero raised to a negative power and a negative base raised to a fractional
power (torch already gives NaN there). Only overflow can still produce ``inf``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import torch

from kelpseg.errors import KelpsegError

Value = torch.Tensor | float
Env = Mapping[str, Value]
Node = Callable[[Env], Value]

_NAN = float("nan")


def safe_div(a: Value, b: Value) -> Value:
    """``a / b`` with NaN wherever ``b`` is zero."""
    if isinstance(b, torch.Tensor):
        return torch.where(b == 0, _NAN, a / b)
    if b == 0:
        return a * _NAN if isinstance(a, torch.Tensor) else _NAN
    return a / b


def safe_pow(a: Value, b: Value) -> Value:
    """``a ** b`` with NaN for ``0 ** negative`` and ``negative ** fraction``."""
    if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        try:
            out = a**b
        except ZeroDivisionError:
            return _NAN
        return _NAN if isinstance(out, complex) else float(out)
    if not isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        return torch.where((b < 0) & (a == 0), _NAN, torch.pow(a, b))
    result = torch.pow(a, b)
    if isinstance(b, torch.Tensor):
        return torch.where((b < 0) & (a == 0), _NAN, result)
    if b < 0:
        return torch.where(a == 0, _NAN, result)
    return result


def _tensor_fn(
    fn: Callable[[torch.Tensor], torch.Tensor], scalar: Callable[[float], float]
) -> Callable[[Value], Value]:
    def apply(x: Value) -> Value:
        if isinstance(x, torch.Tensor):
            return fn(x)
        try:
            return float(scalar(x))
        except (ValueError, OverflowError):
            return _NAN

    return apply


def _ln(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, torch.log(x), _NAN)


FUNCTIONS: dict[str, Callable[[Value], Value]] = {
    "exp": _tensor_fn(torch.exp, math.exp),
    "ln": _tensor_fn(_ln, lambda v: math.log(v) if v > 0 else _NAN),
    "sqrt": _tensor_fn(torch.sqrt, lambda v: math.sqrt(v) if v >= 0 else _NAN),
    "abs": _tensor_fn(torch.abs, abs),
}

_BINARY: dict[type[ast.operator], Callable[[Value, Value], Value]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: safe_div,
    ast.Pow: safe_pow,
}


@dataclass(frozen=True)
class Formula:
    """A compiled formula: call it with a mapping from symbol to tensor or number.

    Attributes:
        text: the formula as written.
        symbols: every name it reads (bands and constants).
    """

    text: str
    symbols: frozenset[str]
    _root: Node

    def __call__(self, env: Env) -> Value:
        """Evaluate on ``env``; every symbol of the formula must be in it."""
        return self._root(env)


@lru_cache(maxsize=1024)
def compile_formula(text: str) -> Formula:
    """Parse ``text`` once into a :class:`Formula`.

    Raises:
        KelpsegError: the text is not a formula of the allowed arithmetic.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise KelpsegError(f"formula {text!r} does not parse ({exc.msg})") from exc
    symbols: set[str] = set()
    root = _compile(tree.body, text, symbols)
    return Formula(text=text, symbols=frozenset(symbols), _root=root)


def _compile(node: ast.expr, text: str, symbols: set[str]) -> Node:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        value = float(node.value)
        return lambda env: value
    if isinstance(node, ast.Name):
        name = node.id
        symbols.add(name)
        return lambda env: env[name]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _compile(node.operand, text, symbols)
        if isinstance(node.op, ast.UAdd):
            return inner
        return lambda env: -inner(env)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left = _compile(node.left, text, symbols)
        right = _compile(node.right, text, symbols)
        return lambda env: op(left(env), right(env))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in FUNCTIONS
        and len(node.args) == 1
        and not node.keywords
    ):
        fn = FUNCTIONS[node.func.id]
        arg = _compile(node.args[0], text, symbols)
        return lambda env: fn(arg(env))
    raise KelpsegError(f"formula {text!r}: {ast.dump(node)[:60]} is not allowed arithmetic")
