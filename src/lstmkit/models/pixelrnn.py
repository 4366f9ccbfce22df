"""Autoregressive image models: PixelRNN (Row LSTM, Diagonal BiLSTM), PixelCNN and an independent-pixel baseline."""
