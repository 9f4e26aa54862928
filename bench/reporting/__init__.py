"""Reporting stage: writing the analysed results out as tables, documents and plots.

The report's tables (``tables``), the files a report writes (``writers``), the document and its
sections (``document``, ``sections``, ``paper``), its plots and HTML (``plots``, ``html``) and
number formatting shared by all of them (``formatting``).
"""
