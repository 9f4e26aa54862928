"""GPU energy from NVML's cumulative counters, where NVML exists (GPU boxes); None elsewhere."""

from __future__ import annotations


class EnergyMeter:
    """Total energy of all visible NVIDIA GPUs in joules, or None when NVML is unavailable."""

    def __init__(self) -> None:
        self._nvml = None
        self._handles: list = []
        try:
            import pynvml  # from nvidia-ml-py, installed with the CUDA build

            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - no library, no driver or no GPU all mean "not measured"
            self._nvml = None

    @property
    def available(self) -> bool:
        return self._nvml is not None and bool(self._handles)

    def joules(self) -> float | None:
        if not self.available:
            return None
        assert self._nvml is not None  # available says so
        # nvmlDeviceGetTotalEnergyConsumption: millijoules since the driver was loaded.
        return sum(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles) / 1000.0
