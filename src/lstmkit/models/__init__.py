"""lstmkit.models: task models, each a plain nn.Module, and a registry."""

from . import captioner, clips, pixelrnn, segmenter, superres, video  # noqa: F401 (each registers its models)
from .forecaster import ForecasterConfig, LSTMForecaster
from .lstm_fcn import LSTMFCN, LSTMFCNConfig
from .registry import create_model, list_models, register_model
from .rnn_classifier import RNNClassifier, RNNClassifierConfig
from .tcn_classifier import TCNClassifier, TCNClassifierConfig
from .transformer_classifier import TransformerClassifier, TransformerClassifierConfig

__all__ = ["ForecasterConfig", "LSTMForecaster", "LSTMFCN", "LSTMFCNConfig", "RNNClassifier", "RNNClassifierConfig", "TCNClassifier", "TCNClassifierConfig", "TransformerClassifier", "TransformerClassifierConfig", "create_model", "list_models", "register_model"]
