"""The pump's data: wire formats, window features, simulated data sets and their validation. Pure."""
