"""Gaussian diffusion models: one core (schedules, forward process, losses, samplers, respacing,
timestep sampling) on which the diffusion papers are additions."""
