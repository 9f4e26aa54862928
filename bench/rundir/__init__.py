"""Run folders: what a run writes to disk and how it is read back.

The record files (``records``), the run's manifest and status (``manifest``, ``status``), content
hashes (``hashing``) and loading and merging whole run folders (``run_folders``).
"""
