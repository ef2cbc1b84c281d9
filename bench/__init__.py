"""``make bench``: the pipeline's figures side by side in one run, reported as ratios to baselines of the same run.

Figures are measured and reported, never asserted: the machines are shared and noisy. See bench/README.md.
"""
