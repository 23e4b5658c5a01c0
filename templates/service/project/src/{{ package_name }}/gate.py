"""The promotion gate: may a newly trained version replace the one being served?

A new version serves only when its data check passed (``validation.py``) and each metric
compared is at least as good as the serving version's, within a tolerance:

* higher is better (accuracy, f1, precision, recall, roc_auc, r2, ...):
  ``new >= serving - tolerance * |serving|``;
* lower is better (mae, mse, rmse, log_loss, error, loss, ...):
  ``new <= serving + tolerance * |serving|``.

``tolerance`` is ``PROMOTION_TOLERANCE`` (relative, 0.01 by default). The metrics compared
are ``PROMOTION_METRICS`` when it is set (``"mae:lower,r2"``: names, each with its direction
when its name does not tell it), else every metric both versions report whose direction
the name tells (``DIRECTIONS``); names starting with ``baseline`` describe the data, not
the model, and are not compared. When no metric can be compared the gate refuses: promote
the version by hand (``make promote-model``) or set ``PROMOTION_METRICS``.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["higher", "lower"]

# Words of a metric's name (split at "_", "-", " ") that tell its direction; lower wins.
LOWER_IS_BETTER = (
    "mae mse rmse msle rmsle mape smape wape medae error errors loss logloss brier deviance "
    "hamming perplexity"
).split()
HIGHER_IS_BETTER = (
    "accuracy acc f1 precision recall auc roc r2 score kappa mcc jaccard iou ap map ndcg "
    "sensitivity specificity explained"
).split()
DIRECTIONS: dict[str, Direction] = {
    **dict.fromkeys(HIGHER_IS_BETTER, "higher"),
    **dict.fromkeys(LOWER_IS_BETTER, "lower"),
}
NOT_COMPARED_PREFIX = "baseline"


@dataclass(frozen=True)
class Comparison:
    """One metric of the new version against the serving one."""

    metric: str
    direction: Direction
    serving: float
    candidate: float
    passed: bool


@dataclass(frozen=True)
class GateReport:
    """Whether the new version may serve, and why."""

    against: str  # the serving version ("" when nothing serves: the new version serves)
    passed: bool
    reasons: tuple[str, ...] = ()  # why it did not pass
    comparisons: tuple[Comparison, ...] = ()
    notes: tuple[str, ...] = field(default=())  # metrics left out, and why

    def text(self) -> str:
        if not self.against:
            return "gate: nothing serves yet, the new version serves"
        lines = [f"gate {'PASSED' if self.passed else 'REFUSED'} against {self.against}:"]
        for item in self.comparisons:
            better = ">=" if item.direction == "higher" else "<="
            verdict = "ok" if item.passed else "worse"
            lines.append(
                f"  - {item.metric}: {item.candidate:.6g} vs {item.serving:.6g} "
                f"({item.direction} is better, needs {better} within tolerance): {verdict}"
            )
        lines += [f"  - {reason}" for reason in self.reasons]
        lines += [f"  - note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "comparisons": [vars(item) for item in self.comparisons],
        }


def direction(metric: str) -> Direction | None:
    """Whether a higher or a lower value of ``metric`` is better; None when unknown."""
    words = [word for word in re.split(r"[^a-z0-9]+", metric.lower()) if word]
    if not words or words[0] == NOT_COMPARED_PREFIX:
        return None
    found = {DIRECTIONS[word] for word in words if word in DIRECTIONS}
    if "lower" in found:
        return "lower"
    return "higher" if found else None


def parse_metrics_setting(setting: str) -> dict[str, Direction | None]:
    """``"mae:lower,r2"`` -> ``{"mae": "lower", "r2": None}`` (None: from the name)."""
    chosen: dict[str, Direction | None] = {}
    for item in filter(None, (part.strip() for part in setting.split(","))):
        name, _, given = item.partition(":")
        given = given.strip().lower()
        if given not in ("", "higher", "lower"):
            raise ValueError(
                f"PROMOTION_METRICS: {item!r} must be a metric name, optionally followed by "
                "':higher' or ':lower'"
            )
        chosen[name.strip()] = "higher" if given == "higher" else "lower" if given else None
    return chosen


def evaluate(
    candidate: Mapping[str, float],
    serving: Mapping[str, float] | None,
    *,
    against: str,
    data_passed: bool = True,
    tolerance: float = 0.01,
    metrics_setting: str = "",
    parity_problem: str = "",
) -> GateReport:
    """Apply the gate to the metrics of a new version (``serving`` None: nothing serves).

    ``parity_problem`` says how the saved model failed to reproduce the trained one
    (``registry.reload_parity``); empty when it did.
    """
    reasons: list[str] = []
    if not data_passed:
        reasons.append("the data check failed (see the data check report)")
    if parity_problem:
        reasons.append(f"the saved model does not reproduce the trained one: {parity_problem}")
    if serving is None:
        return GateReport("", passed=not reasons, reasons=tuple(reasons))
    chosen = parse_metrics_setting(metrics_setting)
    if not candidate and not serving and not chosen:
        note = (
            "no metric to compare: the pipeline reports none (add the notebook's evaluation "
            "to it), so the data check and the saved model's parity decide"
        )
        return GateReport(against, not reasons, tuple(reasons), notes=(note,))
    names = list(chosen) if chosen else sorted(set(candidate) & set(serving))
    comparisons: list[Comparison] = []
    notes: list[str] = []
    for name in names:
        way = chosen.get(name) or direction(name)
        if name not in candidate or name not in serving:
            missing = "the new version" if name not in candidate else against
            reasons.append(f"metric {name!r} is not reported by {missing}")
        elif way is None:
            (reasons if chosen else notes).append(
                f"{name!r} not compared: its name does not tell whether higher or lower is "
                "better (set PROMOTION_METRICS, e.g. 'name:higher')"
            )
        elif not (math.isfinite(candidate[name]) and math.isfinite(serving[name])):
            reasons.append(f"metric {name!r} is not a finite number")
        else:
            comparisons.append(_compare(name, way, candidate[name], serving[name], tolerance))
    reasons += [
        f"{item.metric} is worse than {against}'s beyond the tolerance of {tolerance:g}"
        for item in comparisons
        if not item.passed
    ]
    if not comparisons and not reasons:
        reasons.append(
            "no metric could be compared with the serving version's: set PROMOTION_METRICS "
            "or promote the version by hand (make promote-model)"
        )
    return GateReport(against, not reasons, tuple(reasons), tuple(comparisons), tuple(notes))


def _compare(
    name: str, way: Direction, candidate: float, serving: float, tolerance: float
) -> Comparison:
    slack = tolerance * abs(serving)
    passed = candidate >= serving - slack if way == "higher" else candidate <= serving + slack
    return Comparison(name, way, serving, candidate, passed)
