"""Domain rules of the Pass Numérique. Nothing in this package imports Flask."""
