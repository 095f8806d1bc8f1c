"""The inference runtime: model bundles, onnxruntime sessions, the separator and the streaming
vocal front-end. Never imports training code."""
