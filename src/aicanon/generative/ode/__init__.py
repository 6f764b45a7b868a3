"""Neural ordinary differential equations (Chen et al., NeurIPS 2018): solvers, the adjoint method,
ODE-Nets, continuous normalising flows and the latent ODE."""

from aicanon.generative.ode.adjoint import odeint_adjoint
from aicanon.generative.ode.cnf import CNF, PlanarDynamics
from aicanon.generative.ode.latent_ode import LatentODE, RecurrentBaseline
from aicanon.generative.ode.odenet import ODEBlock, mnist_odenet, mnist_resnet
from aicanon.generative.ode.solvers import SolverStats, odeint

__all__ = [
    "CNF",
    "LatentODE",
    "ODEBlock",
    "PlanarDynamics",
    "RecurrentBaseline",
    "SolverStats",
    "mnist_odenet",
    "mnist_resnet",
    "odeint",
    "odeint_adjoint",
]
