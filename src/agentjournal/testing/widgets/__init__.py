"""A tiny component with its own migrations, to test the per-component migration runner."""
