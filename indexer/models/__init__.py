"""Models: tag lists, versions, published layouts, ONNX Runtime sessions, fp16/int8 copies."""
