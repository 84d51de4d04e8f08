"""The training recipe, the promotion gate and the plant's recalibration for retrain. Pure."""
