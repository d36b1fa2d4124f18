"""dtindex: keeps an image gallery tagged by ONNX tagging models, incrementally."""

__version__ = "0.1.0"
