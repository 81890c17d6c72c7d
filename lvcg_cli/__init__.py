"""lvcg: latent vectorcardiogram representations of 12-lead ECGs.

The public, importable API lives in the sub-packages (``lvcg_cli.signals``, ``lvcg_cli.model``,
``lvcg_cli.downstream``); the command line is assembled in :mod:`lvcg_cli.main`.
"""

__version__ = "0.1.0"
