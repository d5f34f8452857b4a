"""Seeded generator of a rotating-machine acceleration signal, written as a CWRU-style .npz file.

The signal (units: g) is the sum of
  * shaft harmonics: 1x, 2x, 3x the shaft rate with random phases (unbalance, misalignment);
  * a gear-mesh tone at ``mesh_order`` x shaft rate;
  * a bearing-defect impulse train at the outer-race defect frequency (BPFO = 3.585 x shaft rate,
    as for the CWRU drive-end bearing) with small timing jitter; each impulse rings a structural
    resonance (a damped sinusoid), and the impulse strength is amplitude-modulated at the shaft rate
    (the load zone), as in real bearing-fault vibration;
  * white measurement noise.
The next 100 samples are largely predictable from the previous 2,500 (the impact train is nearly
periodic and rings for ~2 ms), but not by persistence or the mean; the jitter and the per-impact
amplitude variation keep the task from being trivially periodic. NB: sums of (modulated) periodic
components are also predictable by a long linear autoregression, which is therefore a strong
baseline here, as on many real machines.
The file holds ``DE`` (float64 [N, 1], like the CWRU files) and ``sample_rate`` (Hz).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from common.io import atomic_path


@dataclasses.dataclass(frozen=True)
class VibrationSpec:
    sample_rate: int = 12_000  # Hz, as the CWRU 12k drive-end recordings
    duration_seconds: float = 20.0
    shaft_hz: float = 29.95  # 1797 rpm
    mesh_order: float = 24.0  # gear-mesh tone = mesh_order x shaft rate
    bpfo_order: float = 3.585  # outer-race defect impacts per shaft revolution
    resonance_hz: float = 1_800.0  # structural resonance rung by each impact
    resonance_decay_ms: float = 2.0  # e-folding time of the ringing
    impulse_g: float = 0.6  # peak acceleration of one impact before modulation
    jitter_fraction: float = 0.003  # std of impact timing error, as a fraction of the impact period
    noise_g: float = 0.01  # std of the white measurement noise
    seed: int = 0


def generate(spec: VibrationSpec) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    count = int(round(spec.sample_rate * spec.duration_seconds))
    time = np.arange(count) / spec.sample_rate
    shaft = 2 * np.pi * spec.shaft_hz * time
    signal = np.zeros(count)
    for order, amplitude in ((1, 0.03), (2, 0.015), (3, 0.008)):
        signal += amplitude * np.sin(order * shaft + rng.uniform(0, 2 * np.pi))
    signal += 0.012 * np.sin(spec.mesh_order * shaft + rng.uniform(0, 2 * np.pi))

    # Impact times on a regular grid plus independent jitter (slip of the rolling elements).
    period = 1.0 / (spec.bpfo_order * spec.shaft_hz)
    grid = np.arange(0.0, spec.duration_seconds, period)
    impacts = grid + rng.normal(0.0, spec.jitter_fraction * period, size=grid.shape)
    # One ringing kernel, 8 decay times long, shifted to each impact with sub-sample accuracy.
    decay = spec.resonance_decay_ms / 1000.0
    length = int(8 * decay * spec.sample_rate)
    load_zone_phase = rng.uniform(0, 2 * np.pi)
    for impact in impacts:
        start = int(np.ceil(impact * spec.sample_rate))
        if start >= count:
            continue
        stop = min(start + length, count)
        local = np.arange(start, stop) / spec.sample_rate - impact
        strength = spec.impulse_g * (0.6 + 0.4 * np.cos(2 * np.pi * spec.shaft_hz * impact + load_zone_phase))
        strength *= rng.lognormal(0.0, 0.1)  # impact-to-impact variation
        signal[start:stop] += strength * np.exp(-local / decay) * np.sin(2 * np.pi * spec.resonance_hz * local)
    signal += rng.normal(0.0, spec.noise_g, size=count)
    return signal


def write_npz(spec: VibrationSpec, path: str | Path) -> Path:
    """Writes the signal as ``DE`` [N, 1] float64 plus ``sample_rate``, atomically."""
    path = Path(path)
    signal = generate(spec)
    with atomic_path(path, suffix=".npz") as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, DE=signal[:, None], sample_rate=np.array(spec.sample_rate))
    return path
