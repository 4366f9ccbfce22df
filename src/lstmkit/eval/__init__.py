"""lstmkit.eval: metrics, plots and run reports."""

from .metrics import classification_metrics, confusion_matrix, format_confusion, per_class_report

__all__ = ["classification_metrics", "confusion_matrix", "format_confusion", "per_class_report"]
