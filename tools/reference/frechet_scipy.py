#!/usr/bin/env python3
"""Reference values for tests/frechet_test.cpp (FrechetReference.*): the Fréchet
distance as pytorch-fid computes it (scipy.linalg.sqrtm of Σ₁Σ₂) and the improved
precision/recall of Kynkäänniemi et al. 2019 (brute-force k-NN in numpy), on two
feature sets defined by formulas, so that C++ builds the same sets without an RNG.

Run:  python3 tools/reference/frechet_scipy.py   (Debian: python3-scipy)
"""
import numpy as np
from scipy import linalg


def sets():
    i = np.arange(200, dtype=np.float64)[:, None]
    j = np.arange(8, dtype=np.float64)[None, :]
    a = np.sin(0.37 * i * (j + 1) + 0.11 * j) + 0.05 * j * np.cos(0.91 * i)
    i = np.arange(150, dtype=np.float64)[:, None]
    b = 1.2 * np.cos(0.23 * i * (j + 2) - 0.3 * j) + 0.1 * np.sin(1.7 * i + j)
    return a, b


def fd(a, b):
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    covmean = covmean.real
    return ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def radii(x, k):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def covered(points, centers, r):
    d = np.sqrt(((points[:, None, :] - centers[None, :, :]) ** 2).sum(-1))
    return (d <= r[None, :]).any(1).mean()


a, b = sets()
print(f"fd(a, b) = {fd(a, b):.12f}")
for k in (1, 3, 5):
    p = covered(b, a, radii(a, k))
    r = covered(a, b, radii(b, k))
    print(f"k = {k}: precision(real=a, fake=b) = {p:.12f}, recall = {r:.12f}")
