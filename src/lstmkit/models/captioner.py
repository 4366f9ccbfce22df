"""Image captioning: CNN encoder + LSTM decoder with soft attention (Show, Attend and Tell)."""
