"""quadnet: one-pass SGD in overparameterized quadratic networks.

Teacher–student networks ŷ = a Σ_i (w_i·x/√N)², y = b Σ_k (w*_k·x/√N)², trained by one-pass SGD,
analysed through the overlaps Q = WWᵀ/N, M = WW*ᵀ/N, P = W*W*ᵀ/N (arXiv:2604.03068).
Arrays may be NumPy or CuPy; results come back on the module they went in on.
"""
from .analysis import alignment, escape_time, log_slope, mean_and_stderr, power_law_fit
from .backend import array_module, cupy_available, default_backend, get_backend, to_numpy
from .hessian import hessian, loss_gradient, predicted_spectrum, special_point
from .manifold import closest_solution, distance_to_manifold_min, polar, solution_overlaps, stiefel_dimension
from .model import default_readouts, init_student, make_rng, overlaps_from_weights, teacher
from .ode import Trajectory, integrate_ode, ode_rhs
from .montecarlo import MCEstimate, monte_carlo_loss
from .overlaps import population_loss
from . import book, plotting
from .profiles import profile
from .theory import Plateau, critical_lr, escape_rate, escape_time_estimate, late_time_loss, manifold_critical_lr, plateau

__version__ = "0.1.0"

__all__ = [
    "alignment", "escape_time", "log_slope", "mean_and_stderr", "power_law_fit",
    "array_module", "cupy_available", "default_backend", "get_backend", "to_numpy",
    "hessian", "loss_gradient", "predicted_spectrum", "special_point",
    "closest_solution", "distance_to_manifold_min", "polar", "solution_overlaps", "stiefel_dimension",
    "default_readouts", "init_student", "make_rng", "overlaps_from_weights", "teacher",
    "Trajectory", "integrate_ode", "ode_rhs",
    "population_loss", "profile", "MCEstimate", "monte_carlo_loss",
    "Plateau", "critical_lr", "escape_rate", "escape_time_estimate", "late_time_loss", "manifold_critical_lr", "plateau",
    "__version__",
]

from .sgd import MemoryBudgetError, SGDTrajectory, numba_available, sgd_overlaps, sgd_weights  # noqa: E402

__all__ += ["SGDTrajectory", "numba_available", "sgd_overlaps", "sgd_weights"]  # and quadnet.MemoryBudgetError

from .theory import CriticalStepWarning  # noqa: E402
from .sweep import (  # noqa: E402
    Cache, SweepError, SweepResults, SweepStats, dask_executor, default_cache_dir, grid_points, sweep,
)

__all__ += [
    "CriticalStepWarning", "Cache", "SweepError", "SweepResults", "SweepStats", "dask_executor", "default_cache_dir",
    "grid_points", "sweep",
]
