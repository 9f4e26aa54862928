"""On the path only in ``make repro`` variants (bench/repro.py): hides the CPU features named in
``BENCH_CPU_FEATURES_OFF`` (avx512, avx512_bf16, amx_tile) from ``torch.cpu``'s probes, in
every Python process of the run, so vLLM loads the kernel library and attention kernels it
would choose on a CPU without them."""

import os
import sys

_OFF = [f for f in os.environ.get("BENCH_CPU_FEATURES_OFF", "").split(",") if f]

if _OFF:
    import importlib.abc
    import importlib.util

    class _HideFeatures(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "torch.cpu":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                for feature in _OFF:
                    setattr(module, f"_is_{feature}_supported", lambda: False)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _HideFeatures())
