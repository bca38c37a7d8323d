"""Benchmarks: latency, size, memory and accuracy kept, per model x backend x precision.

Run ``python -m benchmarks`` (or ``lstm-zoo bench``); results go to benchmarks/results/.
Every measurement runs in its own subprocess so thread settings and peak RSS belong
to that backend alone; comparisons are reported as ratios within one run, because
these machines are noisy.
"""
