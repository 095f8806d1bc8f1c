"""Neural networks as pure torch modules: the spleeter separator and the classifiers."""
