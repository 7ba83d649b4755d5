"""Which points of a sweep are worth having: the accuracy-vs-flash Pareto front and the smallest point
within an accuracy budget. Shared by the sweep (its choice) and the report (its marks)."""
from __future__ import annotations


def smallest_within(results: list[dict], reference_accuracy: float, max_loss: float) -> dict | None:
    """The result with the fewest flash bytes whose accuracy is at most `max_loss` below the
    reference (fractions, e.g. 0.01 for one point); ties go to the more accurate."""
    fitting = [r for r in results if r["accuracy"] >= reference_accuracy - max_loss - 1e-12]
    return min(fitting, key=lambda r: (r["flash_bytes"], -r["accuracy"])) if fitting else None


def pareto_front(results: list[dict]) -> list[dict]:
    """The results no other result beats in both flash and accuracy, smallest first."""
    front: list[dict] = []
    for result in sorted(results, key=lambda r: (r["flash_bytes"], -r["accuracy"])):
        if not front or result["accuracy"] > front[-1]["accuracy"]:
            front.append(result)
    return front
