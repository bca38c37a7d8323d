"""Shipped pretrained weights and their metadata (see zoo.weights)."""
