"""Time-series forecasting and classification: Informer, Autoformer and the deep TSC review's networks."""
