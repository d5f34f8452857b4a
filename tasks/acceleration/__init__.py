"""Acceleration-signal prediction: a 2-layer LSTM forecasts the next 100 samples of a vibration signal."""
