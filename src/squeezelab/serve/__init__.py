"""HTTP serving: a FastAPI app with a page, over PyTorch or ONNX Runtime models."""
