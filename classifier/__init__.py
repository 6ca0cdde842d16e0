"""Radio galaxy classifiers: models, training engine and metrics."""
