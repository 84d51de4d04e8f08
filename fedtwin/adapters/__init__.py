"""Services: Kafka, Redis and the model store, MLflow, the embedded stack, outages."""
