"""`vsession doctor`: checks of a deployment, each with how to fix what it finds."""
