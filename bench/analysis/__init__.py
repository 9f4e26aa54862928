"""Analysis stage: turning a run's records into accuracies, costs and the comparisons a report states.

Per-task summaries and accuracies (``summarize``, ``accuracy``), statistics and the evidence behind
each claim (``stats``, ``evidence``), costs, their bases and intervals (``cost``, ``cost_bases``,
``cost_intervals``), the headline comparison (``headline``), estimates made before a run
(``estimate``) and the published reference figures the results are set against (``published``).
"""
