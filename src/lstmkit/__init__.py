"""lstmkit: LSTMs that are practical, correct and fast for sequence and vision work."""

from .nn import LSTM, LSTMCell, LSTMState, VariantConfig

__version__ = "0.1.0"

__all__ = ["LSTM", "LSTMCell", "LSTMState", "VariantConfig", "__version__"]
