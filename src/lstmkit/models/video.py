"""Video prediction: ConvLSTM encoder-forecaster."""
