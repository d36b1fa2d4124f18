"""The tagging pipeline: decoders fill shared-memory batches, ONNX Runtime runs them."""
