"""Security helpers that are not tied to one view."""
