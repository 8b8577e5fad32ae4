"""The guard that stops a run going nowhere.

SqueezeNet from scratch can sit at chance: the ReLU after the final 1x1 conv dies and every logit
is 0, so the loss stays at exactly ln(num_classes) (2.3026 for 10 classes). `LossGuard` notices
that (and NaN/inf losses) and stops the run with advice instead of training on silently.
"""

from __future__ import annotations

import dataclasses
import math

from squeezelab.errors import SqueezelabError


class TrainingStopped(SqueezelabError):
    """Training was stopped because it cannot go on usefully (NaN loss, stuck at chance)."""


@dataclasses.dataclass
class LossGuard:
    """Stops on a non-finite loss, or on `stuck_steps` steps in a row at ln(num_classes)."""

    num_classes: int
    stuck_steps: int = 300
    lr: float = 0.0
    tolerance: float = 0.01
    steps_at_chance: int = 0

    def check(self, loss: float, epoch: int, step: int) -> None:
        problem = self.problem(loss, epoch, step)
        if problem is not None:
            raise problem

    def problem(self, loss: float, epoch: int, step: int) -> TrainingStopped | None:
        """The error that stops the run at this loss, or None to go on (counts steps at chance)."""
        if not math.isfinite(loss):
            return TrainingStopped(
                f"loss became {loss} at epoch {epoch} step {step}; stopped (the last good checkpoint is kept): "
                f"lower --lr (now {self.lr:g}) or use --model with batch_norm, or check the data for broken values"
            )
        chance = math.log(self.num_classes)
        self.steps_at_chance = self.steps_at_chance + 1 if abs(loss - chance) < self.tolerance else 0
        if self.stuck_steps and self.steps_at_chance >= self.stuck_steps:
            return TrainingStopped(
                f"loss has stayed at ln({self.num_classes}) = {chance:.4f} (chance) for {self.steps_at_chance} steps: "
                "the network outputs the same for every image. Usual causes: the ReLU after the final conv died "
                "(build with final_relu=False), no batch norm (batch_norm=True), or --lr too high for the batch "
                f"(now {self.lr:g}; try 10x lower or --accumulate). Pass --stuck-steps 0 to train on anyway"
            )
        return None
