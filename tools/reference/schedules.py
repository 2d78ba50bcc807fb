#!/usr/bin/env python3
"""Reference β / ᾱ values for tests/schedule_test.cpp, computed independently
with numpy from the papers' formulas (not from diffuse's code).

Run:  python3 tools/reference/schedules.py     (Debian: apt-get install python3-numpy)
"""
import numpy as np


def linear(T, b0=1e-4, b1=0.02):
    return np.linspace(b0, b1, T, dtype=np.float64)


def quadratic(T, b0=1e-4, b1=0.02):
    return np.linspace(b0 ** 0.5, b1 ** 0.5, T, dtype=np.float64) ** 2


def cosine(T, s=0.008, max_beta=0.999):
    # Nichol & Dhariwal 2021, eq. 17 (as in improved-diffusion's betas_for_alpha_bar)
    f = lambda t: np.cos((t / T + s) / (1 + s) * np.pi / 2) ** 2
    i = np.arange(T, dtype=np.float64)
    return np.minimum(1 - f(i + 1) / f(i), max_beta)


def sigmoid(T, beta_max=0.1, lo=-6.0, hi=6.0):
    # seed 002: beta_t = sigmoid(f(t)) * beta_max, f linear from lo to hi
    f = np.linspace(lo, hi, T, dtype=np.float64)
    return beta_max / (1 + np.exp(-f))


def sin2(T, max_beta=0.999):
    # seed 001: beta_t = 1 - cos^2(pi t / 2T), t = 1..T
    t = np.arange(1, T + 1, dtype=np.float64)
    return np.minimum(1 - np.cos(np.pi * t / (2 * T)) ** 2, max_beta)


CASES = [
    ("linear", linear(1000)),
    ("quadratic", quadratic(1000)),
    ("cosine", cosine(1000)),
    ("sigmoid", sigmoid(100)),
    ("sin2", sin2(100)),
]

if __name__ == "__main__":
    for name, betas in CASES:
        ab = np.cumprod(1 - betas)
        T = len(betas)
        for t in sorted({0, 1, T // 4, T // 2, T - 2, T - 1}):
            print(f'  {{"{name}", {t}, {betas[t]:.17g}, {ab[t]:.17g}}},')
