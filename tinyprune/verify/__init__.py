"""Verification against the real runtimes: the exact arena by search (arena.py), accuracy, board fit."""
