"""Ablation policies: how a study becomes trials.

``ABLATORS`` maps the names ``lagom(ablator=...)`` accepts to policy classes; register a
new policy by subclassing :class:`AbstractAblator` and adding it here or passing the class.
"""

from maggy.ablation.ablator.abstract import AbstractAblator
from maggy.ablation.ablator.declared import DeclaredTrials
from maggy.ablation.ablator.loco import LOCO
from maggy.ablation.ablator.pairs import Pairs
from maggy.ablation.ablator.shapley import Shapley

__all__ = ["AbstractAblator", "LOCO", "DeclaredTrials", "Pairs", "Shapley", "ABLATORS"]

#: Names accepted by ``lagom(ablator=...)``; "loco_pytorch" is the name older Maggy code used.
ABLATORS = {"loco": LOCO, "loco_pytorch": LOCO, "pairs": Pairs, "shapley": Shapley}
