#!/usr/bin/python3
"""Reference SSIM and PSNR for tests/reconstruction_test.cpp, written independently of the C++ with
scipy.ndimage (Wang et al. 2004 as skimage's structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=2): an 11-tap Gaussian, valid positions).

The images are a formula both sides compute (no data file): for c < 2, i < 16, j < 14,
  x[c, i, j] = 0.8 sin(0.7 i + 1.3 j + c)
  y[c, i, j] = clip(x + 0.3 cos(1.1 i j + 0.5 c), -1, 1)
Run: /usr/bin/python3 tools/reference/ssim_reference.py
"""
import numpy as np
from scipy.ndimage import correlate1d

c, i, j = np.meshgrid(np.arange(2), np.arange(16), np.arange(14), indexing="ij")
x = 0.8 * np.sin(0.7 * i + 1.3 * j + c)
y = np.clip(x + 0.3 * np.cos(1.1 * i * j + 0.5 * c), -1, 1)
r = np.arange(-5, 6)
g = np.exp(-r**2 / (2 * 1.5**2))
g /= g.sum()


def filt(t):  # valid positions only
    t = correlate1d(t, g, axis=-1, mode="constant")[..., 5:-5]
    return correlate1d(t, g, axis=-2, mode="constant")[..., 5:-5, :]


R = 2.0
c1, c2 = (0.01 * R) ** 2, (0.03 * R) ** 2
mx, my = filt(x), filt(y)
sxx, syy, sxy = filt(x * x) - mx * mx, filt(y * y) - my * my, filt(x * y) - mx * my
ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
psnr = 10 * np.log10(R * R / np.mean((x - y) ** 2))
print(f"ssim {ssim.mean()!r}\npsnr {psnr!r}")
