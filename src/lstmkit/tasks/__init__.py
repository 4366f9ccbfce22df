"""lstmkit.tasks: how each model family is trained and evaluated, on one shared loop."""

from .trainer import FitResult, TrainConfig, fit

__all__ = ["FitResult", "TrainConfig", "fit"]
