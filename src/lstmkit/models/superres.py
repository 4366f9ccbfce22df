"""LSTM super-resolution: ReNet sweeps over low-resolution features, then sub-pixel upsampling."""
