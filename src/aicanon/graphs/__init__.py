"""Graph learning: message passing on edge-index tensors with scatter operations."""
