"""Built-in transformers."""
