"""Generative models: normalizing flows (planar/radial, Real NVP, Glow) and neural ODEs."""
