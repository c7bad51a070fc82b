from __future__ import annotations

import math

import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.features.expression import compile_formula, safe_div, safe_pow


def test_formula_reads_its_symbols_and_computes_arithmetic() -> None:
    f = compile_formula("g*(N-R)/(N+C1*R-C2*B+L)")
    assert f.symbols == {"g", "N", "R", "C1", "C2", "B", "L"}
    env = {
        "g": 2.5,
        "N": torch.tensor([3.0]),
        "R": torch.tensor([1.0]),
        "B": torch.tensor([0.5]),
        "C1": 6.0,
        "C2": 7.5,
        "L": 1.0,
    }
    assert f(env).item() == pytest.approx(2.5 * 2 / (3 + 6 - 3.75 + 1))


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "N.real",
        "N if R else G",
        "[N, R]",
        "f(N)",
        "N < R",
        "lambda: 1",
        "exp(N, R)",
        "'a'",
    ],
)
def test_anything_but_arithmetic_is_refused(text: str) -> None:
    with pytest.raises(KelpsegError, match=r"not allowed|does not parse"):
        compile_formula(text)


def test_undefined_arithmetic_is_nan_never_inf() -> None:
    x = torch.tensor([0.0, -4.0, 4.0, float("nan")])
    assert torch.isnan(safe_div(torch.ones(4), x)[[0, 3]]).all()
    assert torch.isnan(compile_formula("ln(N)")({"N": x})[[0, 1, 3]]).all()
    assert torch.isnan(compile_formula("N**0.5")({"N": x})[1])
    assert torch.isnan(safe_pow(x, -1.0)[0])
    assert torch.isnan(compile_formula("N/(N-N)")({"N": x})).all()
    for text in ("1/N", "ln(N)", "N**-2", "sqrt(N)", "exp(N)/N"):
        assert not torch.isinf(compile_formula(text)({"N": x})).any(), text


def test_scalar_parts_fold_to_numbers() -> None:
    assert compile_formula("(1/3)*2")({}) == pytest.approx(2 / 3)
    assert math.isnan(compile_formula("1/0")({}))
    assert math.isnan(compile_formula("(-8)**(1/3)")({}))
    assert compile_formula("abs(-2)+sqrt(4)")({}) == 4.0


def test_number_raised_to_a_band() -> None:
    n = torch.tensor([-1.0, 0.0, 2.0])
    torch.testing.assert_close(compile_formula("2**N")({"N": n}), torch.tensor([0.5, 1.0, 4.0]))
    zero_base = compile_formula("0**N")({"N": n})
    assert torch.isnan(zero_base[0]) and zero_base[2] == 0
