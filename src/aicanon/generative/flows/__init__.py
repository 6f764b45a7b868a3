"""Normalizing flows: invertible layers with tractable log-determinants, sharing one protocol
(:class:`aicanon.generative.flows.base.Flow`)."""
