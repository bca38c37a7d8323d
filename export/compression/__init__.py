"""Smaller artifacts: post-training quantization, and the fine-tuning compressions (magnitude
and structured pruning, clustering, quantization-aware training) with the adapters for
layers tfmot lacks.
"""
