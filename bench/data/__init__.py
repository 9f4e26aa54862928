"""Data stage: the models and data sets a run needs, and where they come from.

Downloads from and offline reads of the Hugging Face Hub (``hub``), what an API
model id serves on a given date (``lifecycle``) and the tasks' own data shipped with the package (``taskdata``).
"""
