"""Clip and volume classifiers: CNN-LSTM (LRCN-style), single-frame CNN, bidirectional LSTM over slices, single-slice 2D baseline."""
