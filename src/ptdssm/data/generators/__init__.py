"""Offline data generators: ListOps and Pathfinder in the LRA release layouts, MNIST-1D, synthetic long-range tasks.

Modules: :mod:`.listops`, :mod:`.pathfinder`, :mod:`.mnist1d` (also registers the ``mnist1d`` task),
:mod:`.synthetic` (registers ``adding``, ``copying``, ``selective-copying``, ``associative-recall``).
Import the submodules directly; this package imports nothing heavy.
"""
