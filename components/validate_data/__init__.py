"""validate_data: TFDV statistics, schema, anomalies, skew and drift before training."""
