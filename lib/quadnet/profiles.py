"""Problem sizes for the book: ``QUADNET_PROFILE`` = quick | default | paper.

``quick``   CI sizes: every chapter in well under a minute on two cores.
``default`` a laptop: a few minutes per chapter, publication-looking figures.
``paper``   large N and many seeds: a GPU or a cluster.

Chapters write ``N = profile().pick(quick=500, default=4000, paper=10**6)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["Profile", "profile", "PROFILES"]

PROFILES = ("quick", "default", "paper")


@dataclass(frozen=True)
class Profile:
    """A named size profile (one of :data:`PROFILES`); see :func:`profile`.

    Attributes
    ----------
    name : str
    """

    name: str

    def pick(self, *, quick: Any, default: Any, paper: Any = None) -> Any:
        """The value for this profile (``paper`` falls back to ``default`` when not given).

        Parameters
        ----------
        quick, default, paper : any
            The value to use under each profile.

        Returns
        -------
        The value of the active profile.

        Examples
        --------
        >>> from quadnet import profile
        >>> profile("quick").pick(quick=500, default=4000, paper=10**6)
        500
        >>> profile("paper").pick(quick=500, default=4000)
        4000
        """
        if self.name == "quick":
            return quick
        if self.name == "paper" and paper is not None:
            return paper
        return default

    def __str__(self) -> str:
        return self.name


def profile(name: str | None = None) -> Profile:
    """The active profile: ``name`` if given, else ``QUADNET_PROFILE`` (default 'default').

    Parameters
    ----------
    name : str or None
        'quick', 'default' or 'paper' (case and surrounding spaces ignored).

    Returns
    -------
    Profile

    Raises
    ------
    TypeError
        ``name`` is not a string.
    ValueError
        An unknown name (in the argument or in ``QUADNET_PROFILE``).

    Examples
    --------
    >>> from quadnet import profile
    >>> str(profile(" Quick "))
    'quick'
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"profile name (QUADNET_PROFILE) must be a string, one of {PROFILES}, got {name!r}")
    name = (name or os.environ.get("QUADNET_PROFILE") or "default").strip().lower()
    if name not in PROFILES:
        raise ValueError(f"QUADNET_PROFILE must be one of {PROFILES}, got {name!r}")
    return Profile(name)
