"""quadnet: one-pass SGD in overparameterized quadratic networks.

Teacher–student networks ŷ = a Σ_i (w_i·x/√N)², y = b Σ_k (w*_k·x/√N)², trained by one-pass SGD,
analysed through the overlaps Q = WWᵀ/N, M = WW*ᵀ/N, P = W*W*ᵀ/N (arXiv:2604.03068).
Arrays may be NumPy or CuPy; results come back on the module they went in on.

The map of the package (what lives where) is in CONTRIBUTING.md; every name below is documented
where it is defined.
"""

from . import book, landscape, plotting, starts, summaries  # noqa: F401 (submodules: qn.book, qn.summaries, ...)
from .analysis import LineFit, alignment, escape_time, line_fit, log_slope, mean_and_stderr, power_law_fit
from .backend import array_module, cupy_available, default_backend, get_backend, to_numpy
from .escape import (
    EscapeTimes,
    NormTransient,
    chain_escape_times,
    escape_level,
    escape_time_estimate,
    escape_time_law,
    gaussian_escape_times,
    noise_seed_variance,
    norm_transient,
    transient_log_gain,
)
from .fixed_points import StationaryState, ode_jacobian, quotient_spectrum, stationary_state
from .hessian import hessian, loss_gradient, predicted_spectrum, special_point
from .manifold import (
    RankDeficientWarning,
    closest_solution,
    distance_to_manifold_min,
    polar,
    solution_overlaps,
    stiefel_dimension,
)
from .model import default_readouts, init_student, make_rng, overlaps_from_weights, teacher
from .montecarlo import MCEstimate, monte_carlo_loss
from .ode import LongRunWarning, RunInterrupted, Trajectory, integrate_ode, ode_rhs
from .overlaps import population_loss
from .profiles import profile
from .regimes import (
    AlignmentDecay,
    BiasLifetime,
    EscapeRates,
    Staircase,
    Stationary,
    alignment_decay,
    bias_lifetime,
    escape_rates,
    sequential_frame,
    staircase,
    stationary_loss,
)
from .sgd import MemoryBudgetError, SGDTrajectory, numba_available, sgd_overlaps, sgd_weights
from .stability import StepLimits, step_limits
from .starts import gaussian_overlaps, informed_overlaps
from .sweep import (
    Cache,
    SweepError,
    SweepInterrupted,
    SweepResults,
    SweepStats,
    dask_executor,
    default_cache_dir,
    grid_points,
    sweep,
)
from .theory import (
    CriticalStepWarning,
    Plateau,
    basin_lr,
    critical_lr,
    escape_rate,
    late_time_loss,
    manifold_critical_lr,
    plateau,
    plateau_basin_q,
)

__version__ = "0.1.0"

__all__ = [
    # backends
    "array_module", "cupy_available", "default_backend", "get_backend", "to_numpy",
    # model, starts and overlaps
    "default_readouts", "init_student", "make_rng", "overlaps_from_weights", "teacher",
    "starts", "gaussian_overlaps", "informed_overlaps", "population_loss", "MCEstimate", "monte_carlo_loss",
    # dynamics: the ODE and the simulators
    "Trajectory", "integrate_ode", "ode_rhs", "LongRunWarning", "RunInterrupted",
    "SGDTrajectory", "numba_available", "sgd_overlaps", "sgd_weights", "MemoryBudgetError",
    # theory: plateau, steps, escape
    "Plateau", "plateau", "critical_lr", "plateau_basin_q", "basin_lr", "escape_rate", "late_time_loss",
    "manifold_critical_lr", "CriticalStepWarning", "StepLimits", "step_limits",
    "NormTransient", "norm_transient", "transient_log_gain", "noise_seed_variance", "escape_level",
    "escape_time_law", "escape_time_estimate", "EscapeTimes", "chain_escape_times", "gaussian_escape_times",
    "StationaryState", "stationary_state", "ode_jacobian", "quotient_spectrum",
    # manifold, implicit bias and the Hessian
    "polar", "closest_solution", "distance_to_manifold_min", "solution_overlaps", "stiefel_dimension",
    "RankDeficientWarning", "hessian", "loss_gradient", "predicted_spectrum", "special_point",
    # beyond the main line (chapter 8)
    "Stationary", "stationary_loss", "EscapeRates", "escape_rates", "Staircase", "staircase", "sequential_frame",
    "BiasLifetime", "bias_lifetime", "AlignmentDecay", "alignment_decay",
    # measurements on trajectories
    "LineFit", "line_fit", "alignment", "escape_time", "log_slope", "mean_and_stderr", "power_law_fit",
    # sweeps and profiles
    "Cache", "SweepError", "SweepInterrupted", "SweepResults", "SweepStats", "dask_executor", "default_cache_dir",
    "grid_points", "sweep", "profile",
    "__version__",
]  # fmt: skip
