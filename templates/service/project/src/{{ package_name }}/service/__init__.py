"""HTTP service: FastAPI application serving the trained model."""
