"""JPEG decoding and preparation on an NVIDIA GPU (the optional `gpu` extra, issue 26).

`decode` batches JPEGs through NVIDIA's nvImageCodec and says which files it refused
(those go to the CPU decoders unchanged); `graph` is the preparation after it (resize,
pad, channel order, layout, scale) as a small ONNX graph, so the very graph the CUDA
provider runs on the device is the one the tests run on the CPU provider against
`imaging.prepare`; `choice` is the one rule for when the GPU decodes. Nothing here is
imported unless a run asks for the GPU: nvImageCodec and onnx are extras.
"""
