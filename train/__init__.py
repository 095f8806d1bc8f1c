"""Training: data, recipes and the engine behind `vocalstream train`."""
