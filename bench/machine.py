"""One line that says what machine a benchmark ran on (its figures depend on it: bf16 on
a CPU with AMX is about 4x fp32, with AVX512-BF16 alone about 2x)."""
from __future__ import annotations

import os
import platform


def describe() -> str:
    import torch

    model, flags = platform.processor() or "unknown CPU", ""
    try:
        info = open("/proc/cpuinfo").read()
        model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                      if line.startswith("model name")), model)
        flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    except OSError:
        pass
    bf16 = "AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else "none"
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{model}, {os.cpu_count()} cores, native bf16: {bf16}, {cuda}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), GLIBC_TUNABLES "
            f"{'set' if os.environ.get('GLIBC_TUNABLES') else 'unset'}")
