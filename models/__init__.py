"""The forecasting models, the online learner, baselines and metrics. No I/O here."""
