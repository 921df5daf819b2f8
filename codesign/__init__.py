"""codesign: hardware/network co-design of quantized early-exit neural networks on edge accelerators."""

import warnings

# Brevitas announces an optional CUDA kernel package on import; irrelevant on CPU.
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")

__version__ = "0.1.0"
