"""lstmkit.models: task models, each a plain nn.Module, and a registry."""

from .forecaster import ForecasterConfig, LSTMForecaster
from .lstm_fcn import LSTMFCN, LSTMFCNConfig
from .registry import create_model, list_models, register_model
from .rnn_classifier import RNNClassifier, RNNClassifierConfig
from .tcn_classifier import TCNClassifier, TCNClassifierConfig
from .transformer_classifier import TransformerClassifier, TransformerClassifierConfig

from .captioner import AttentionCaptioner
from .clips import ClipLSTM, ClipLSTMConfig, FrameClassifier, FrameClassifierConfig
from .pixelrnn import IndependentPixels, PixelCNN, PixelRNN
from .segmenter import FCNSegmenter, ReSeg
from .superres import LSTMSuperRes, LSTMSuperResConfig
from .video import ConvLSTMForecaster, ConvLSTMForecasterConfig

__all__ = ["AttentionCaptioner", "ClipLSTM", "ClipLSTMConfig", "FrameClassifier", "FrameClassifierConfig", "IndependentPixels", "PixelCNN", "PixelRNN", "FCNSegmenter", "ReSeg", "LSTMSuperRes", "LSTMSuperResConfig", "ConvLSTMForecaster", "ConvLSTMForecasterConfig",
           "ForecasterConfig", "LSTMForecaster", "LSTMFCN", "LSTMFCNConfig", "RNNClassifier", "RNNClassifierConfig", "TCNClassifier", "TCNClassifierConfig", "TransformerClassifier", "TransformerClassifierConfig", "create_model", "list_models", "register_model"]
