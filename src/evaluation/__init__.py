"""How every stage-3 number is computed: anomaly scores, pixel and component metrics over the inference
cache, segment error counts, plots and the results tables."""
