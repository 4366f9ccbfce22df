"""lstmkit: LSTMs that are practical, correct and fast for sequence and vision work."""

from .nn import LSTM, LSTMCell, LSTMState, VariantConfig

__version__ = "0.1.0"

__all__ = ["LSTM", "LSTMCell", "LSTMClassifier", "LSTMState", "VariantConfig", "__version__"]


def __getattr__(name: str):
    if name == "LSTMClassifier":  # imported on first use: it needs scikit-learn
        from .sklearn import LSTMClassifier

        return LSTMClassifier
    raise AttributeError(f"module 'lstmkit' has no attribute {name!r}")
