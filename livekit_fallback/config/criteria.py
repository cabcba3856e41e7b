"""Safe evaluator for ``step_criteria_lk`` expressions.

Node configs gate their transitions with small boolean expressions over the
call's state, such as ``verified == True`` or
``greet_turn_count >= 2 or greeted == True``. These strings come from the
database, so they are parsed with :mod:`ast` and checked against a whitelist
(names, constants, comparisons, ``and``/``or``/``not``). They are never passed
to :func:`eval`; evaluation walks the checked tree.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CriteriaError

__all__ = ["Criteria", "CriteriaError", "parse_criteria"]

MAX_EXPRESSION_LENGTH = 500
"""Longest accepted expression, in characters; longer text is rejected."""

_MAX_NODES = 100

_COMPARATORS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}

_CONSTANT_TYPES = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class Criteria:
    """A parsed, whitelisted criteria expression.

    Build it with :func:`parse_criteria`. An empty expression is always met.

    Attributes:
        source: The expression text as given.
        names: The state names the expression reads, sorted.
    """

    source: str
    names: tuple[str, ...]
    _tree: ast.Expression | None

    def evaluate(self, state: Mapping[str, Any]) -> bool:
        """Return whether the criteria hold for ``state``.

        Missing names read as ``None``; a comparison between values that cannot
        be ordered (``None >= 2``) is false rather than an error, so an unset
        counter simply means "not yet".
        """
        if self._tree is None:
            return True
        return bool(_eval(self._tree.body, state))

    def unmet(self, state: Mapping[str, Any]) -> list[str]:
        """Explain why the criteria do not hold, as a list of unmet conditions.

        Returns an empty list when the criteria are met. For ``a and b`` each
        false side is listed; for ``a or b`` the whole alternative is listed once.
        """
        if self._tree is None or self.evaluate(state):
            return []
        return _explain(self._tree.body, state)


def parse_criteria(expression: str | None) -> Criteria:
    """Parse and check a criteria expression.

    Args:
        expression: Text such as ``"verified == True"``; ``None`` or blank text
            means "no criteria" and is always met.

    Returns:
        The checked :class:`Criteria`.

    Raises:
        CriteriaError: The text is too long, is not a Python expression, or uses
            anything beyond names, constants, comparisons and ``and``/``or``/``not``.
    """
    text = (expression or "").strip()
    if not text:
        return Criteria(source=expression or "", names=(), _tree=None)
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise CriteriaError(f"criteria expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CriteriaError(f"criteria expression {text!r} is not valid syntax: {exc.msg}") from None
    names: set[str] = set()
    for count, node in enumerate(ast.walk(tree), start=1):
        if count > _MAX_NODES:
            raise CriteriaError(f"criteria expression {text!r} is too complex")
        _check_node(node, text, names)
    return Criteria(source=expression or "", names=tuple(sorted(names)), _tree=tree)


def _check_node(node: ast.AST, text: str, names: set[str]) -> None:
    if isinstance(node, (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.Not, ast.Load)):
        return
    if isinstance(node, ast.UnaryOp):
        negative_number = (
            isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) in (int, float)
        )
        if not isinstance(node.op, ast.Not) and not negative_number:
            raise CriteriaError(
                f"criteria expression {text!r}: only 'not' (and '-' before a number) is allowed as a unary operator"
            )
        return
    if isinstance(node, ast.USub):
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARATORS:
                raise CriteriaError(
                    f"criteria expression {text!r}: operator {type(op).__name__} is not allowed "
                    "(use ==, !=, <, <=, >, >=)"
                )
        return
    if type(node) in _COMPARATORS:
        return
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise CriteriaError(f"criteria expression {text!r}: name {node.id!r} may not start with '_'")
        names.add(node.id)
        return
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, _CONSTANT_TYPES):
            raise CriteriaError(f"criteria expression {text!r}: constant {node.value!r} is not allowed")
        return
    raise CriteriaError(f"criteria expression {text!r}: {type(node).__name__} is not allowed")


def _eval(node: ast.expr, state: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, state) for v in node.values)
        return any(_eval(v, state) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return -node.operand.value  # type: ignore[attr-defined]  # a checked numeric constant
        return not _eval(node.operand, state)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, state)
        for op, right_node in zip(node.ops, node.comparators, strict=False):
            right = _eval(right_node, state)
            try:
                ok = _COMPARATORS[type(op)](left, right)
            except TypeError:
                return False
            if not ok:
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        return state.get(node.id)
    if isinstance(node, ast.Constant):
        return node.value
    raise CriteriaError(f"unexpected node {type(node).__name__}")  # pragma: no cover - parse checks


def _explain(node: ast.expr, state: Mapping[str, Any]) -> list[str]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        unmet: list[str] = []
        for value in node.values:
            if not _eval(value, state):
                unmet.extend(_explain(value, state))
        return unmet
    return [ast.unparse(node)]
