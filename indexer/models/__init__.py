"""Models: tag lists, versions, published layouts, ONNX Runtime sessions, fp16, built-in."""
