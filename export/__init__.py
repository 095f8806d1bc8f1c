"""ONNX export of the networks and the bundles that ship them."""
