"""JSON Schemas of the Job -> operator contract (package data)."""
