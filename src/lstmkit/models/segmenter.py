"""Semantic segmentation models: ReSeg-style (ReNet encoder + upsampling decoder) and a matched fully convolutional baseline."""
