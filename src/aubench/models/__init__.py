"""Backbones, shared blocks and one module per method, looked up by name through `registry`."""
