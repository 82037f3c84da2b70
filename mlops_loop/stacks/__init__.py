"""Stacks compose constructs, grant access between them and output what operators need."""
