"""Pictures into tensors: decoding, orientation, fitting, and the decoder processes."""
