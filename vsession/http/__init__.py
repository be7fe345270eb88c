"""HTTP surface: middlewares, page handlers and JSON handlers."""
