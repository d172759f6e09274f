"""Web plumbing shared by every blueprint: access gate, rendering, forms, errors."""
