"""Loaders for the official file formats of the datasets in the registry (aicanon.core.data)."""
