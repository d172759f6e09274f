"""Printing of carnets of Pass Numériques (PDF) and QR code helpers."""
