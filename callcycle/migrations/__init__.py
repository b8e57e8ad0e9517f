"""Numbered SQL migrations; see callcycle.migrate."""
