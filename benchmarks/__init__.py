"""
distwit's benchmarks: each figure measured against a baseline in the same
run and reported as a ratio.  Run ``python -m benchmarks`` (``--quick``
for the short version CI runs); see RESULTS.md for a full run's numbers.
"""
