#!/usr/bin/python3
"""Reference trajectories of the stochastic samplers for tests/sampler_noise_test.cpp.

Each sampler is written here from its published equations, independently of diffuse's
C++ code, and run in float64 on a fixed model with a fixed noise stream:

  ddpm             Ho et al. 2020, Alg. 2, respaced as improved-diffusion's
                   SpacedDiffusion (beta_i = 1 - abar_t / abar_t'), posterior mean of
                   q(x_t' | x_t, x0_hat); variance beta-tilde ("fixed_small") or beta
                   ("fixed_large"); no noise on the last step (improved-diffusion's
                   nonzero_mask).
  ddim             diffusers DDIMScheduler.step with eta and variance_noise:
                   std = eta sqrt((1 - abar')/(1 - abar)) sqrt(1 - abar/abar'),
                   x' = sqrt(abar') x0 + sqrt(1 - abar' - std^2) eps + std z.
  euler-ancestral  k-diffusion sample_euler_ancestral / get_ancestral_step(eta),
                   x <- x + (sigma_down - sigma) d + s_noise sigma_up z.
  dpm++2m-sde      k-diffusion sample_dpmpp_2m_sde, solver_type "midpoint", with fresh
                   Gaussian z in place of the Brownian-tree noise sampler.
  euler, heun      k-diffusion sample_euler / sample_heun with S_churn:
                   gamma = min(S_churn / S, sqrt 2 - 1) on [s_tmin, s_tmax],
                   sigma_hat = sigma (1 + gamma), x <- x + sqrt(sigma_hat^2 - sigma^2) s_noise z.

The model (identical in the C++ test), a sample ("x0") prediction on the VP state:

    x0_theta(x_t, t) = tanh(x_t) * (1 - t / 2000),   eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)

on the linear schedule (T = 1000, beta 1e-4 ... 0.02, float64). The sigma-space samplers
call it as k-diffusion's DiscreteEpsDDPMDenoiser wrapper does: x_vp = x / sqrt(1 + sigma^2)
at t(sigma), log-sigma interpolated between the integer timesteps (sigma_to_t) and clamped
to [0, T - 1].

Grid: 10 steps, diffusers' "trailing" spacing t_i = round(T - i T / S) - 1 (999, 899, ...,
99), then sigma = 0. Start x_T[i, d] = sin(1.3 (4 i + d) + 0.5), 3 rows of 4.

Noise: one generator, torch.Generator().manual_seed(7), one torch.randn((3, 4)) in float32
per draw, converted to float64 (diffuse's NoiseStream::shared). Draw order, as diffuse
documents it: ddpm draws after every step but the last, ddim after every step when
eta > 0, euler-ancestral after every step (k-diffusion draws the last one only when
sigma_next > 0; it is never used), dpm++2m-sde after every step with sigma_next > 0 when
eta > 0, euler/heun once per step in which gamma > 0 (k-diffusion draws every step and
discards the draw when gamma = 0).

Run:  /usr/bin/python3 tools/reference/stochastic_samplers.py   (Debian: python3-torch)
"""
import math

import torch

torch.set_default_dtype(torch.float64)

T = 1000
betas = torch.linspace(1e-4, 0.02, T)
abar = torch.cumprod(1 - betas, 0)
sigmas_all = ((1 - abar) / abar).sqrt()
log_sigmas = sigmas_all.log()
S = 10
B, D = 3, 4


def grid_timesteps():
    return [int(round(T - i * T / S)) - 1 for i in range(S)]


def sigma_to_t(sigma):
    """k-diffusion DiscreteSchedule.sigma_to_t: log-sigma interpolation, clamped."""
    ls = math.log(sigma)
    if ls <= log_sigmas[0]:
        return 0.0
    if ls >= log_sigmas[-1]:
        return float(T - 1)
    lo = int((log_sigmas <= ls).nonzero().max())
    w = (ls - log_sigmas[lo].item()) / (log_sigmas[lo + 1].item() - log_sigmas[lo].item())
    return lo + w


def x0_model(x_vp, t):
    return torch.tanh(x_vp) * (1 - t / 2000)


def eps_model(x_vp, t):  # integer t only (ddpm, ddim)
    a = abar[t].item()
    return (x_vp - math.sqrt(a) * x0_model(x_vp, t)) / math.sqrt(1 - a)


def denoise_ve(x, sigma, t=None):
    """D(x; sigma) in the VE state x0 + sigma eps."""
    return x0_model(x / math.sqrt(1 + sigma * sigma), sigma_to_t(sigma) if t is None else t)


def start():
    k = torch.arange(B * D).view(B, D).double()
    return torch.sin(1.3 * k + 0.5)


class Noise:
    def __init__(self, seed=7):
        self.g = torch.Generator().manual_seed(seed)

    def __call__(self):
        return torch.randn((B, D), generator=self.g, dtype=torch.float32).double()


def ddpm(variance):
    ts = grid_timesteps()
    z = Noise()
    x = start()
    for i, t in enumerate(ts):
        a = abar[t].item()
        a_prev = abar[ts[i + 1]].item() if i + 1 < S else 1.0
        beta = 1 - a / a_prev
        x0 = x0_model(x, t)
        x = math.sqrt(a_prev) * beta / (1 - a) * x0 + math.sqrt(1 - beta) * (1 - a_prev) / (1 - a) * x
        if i + 1 < S:
            var = (1 - a_prev) / (1 - a) * beta if variance == "beta-tilde" else beta
            x = x + math.sqrt(var) * z()
    return x


def ddim(eta, final_alpha_one=True):
    ts = grid_timesteps()
    z = Noise()
    x = start()
    for i, t in enumerate(ts):
        a = abar[t].item()
        a_prev = abar[ts[i + 1]].item() if i + 1 < S else (1.0 if final_alpha_one else abar[0].item())
        x0, eps = x0_model(x, t), eps_model(x, t)
        std = eta * math.sqrt((1 - a_prev) / (1 - a)) * math.sqrt(1 - a / a_prev)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev - std ** 2) * eps
        if eta > 0:
            x = x + std * z()
    return x


def ve_grid():
    ts = grid_timesteps()
    return ts + [None], [sigmas_all[t].item() for t in ts] + [0.0]


def euler_ancestral(eta, s_noise):
    ts, sig = ve_grid()
    z = Noise()
    x = start() * math.sqrt(1 + sig[0] ** 2)
    for i in range(S):
        s, nxt = sig[i], sig[i + 1]
        up = min(nxt, eta * math.sqrt(nxt ** 2 * (s ** 2 - nxt ** 2) / s ** 2))
        down = math.sqrt(nxt ** 2 - up ** 2)
        d = (x - denoise_ve(x, s, ts[i])) / s
        x = x + d * (down - s)
        noise = z()
        if nxt > 0:
            x = x + noise * s_noise * up
    return x


def dpmpp_2m_sde(eta, s_noise):
    ts, sig = ve_grid()
    z = Noise()
    x = start() * math.sqrt(1 + sig[0] ** 2)
    old, h_last = None, None
    for i in range(S):
        denoised = denoise_ve(x, sig[i], ts[i])
        if sig[i + 1] == 0:
            x = denoised
        else:
            t, s = -math.log(sig[i]), -math.log(sig[i + 1])
            h = s - t
            eta_h = eta * h
            x = sig[i + 1] / sig[i] * math.exp(-eta_h) * x + (-math.expm1(-h - eta_h)) * denoised
            if old is not None:
                r = h_last / h
                x = x + 0.5 * (-math.expm1(-h - eta_h)) * (1 / r) * (denoised - old)
            if eta:
                x = x + z() * sig[i + 1] * math.sqrt(-math.expm1(-2 * eta_h)) * s_noise
            h_last = h
        old = denoised
    return x


def churn_step(x, i, sig, z, churn, s_tmin, s_tmax, s_noise):
    gamma = min(churn / S, 2 ** 0.5 - 1) if s_tmin <= sig[i] <= s_tmax else 0.0
    sigma_hat = sig[i] * (gamma + 1)
    if gamma > 0:
        x = x + z() * s_noise * (sigma_hat ** 2 - sig[i] ** 2) ** 0.5
    return x, sigma_hat, gamma > 0


def karras_churn(churn, s_tmin, s_tmax, s_noise, heun):
    """k-diffusion sample_euler (heun=False) or sample_heun (heun=True) with S_churn."""
    ts, sig = ve_grid()
    z = Noise()
    x = start() * math.sqrt(1 + sig[0] ** 2)
    for i in range(S):
        x, sh, moved = churn_step(x, i, sig, z, churn, s_tmin, s_tmax, s_noise)
        d = (x - denoise_ve(x, sh, None if moved else ts[i])) / sh
        dt = sig[i + 1] - sh
        if not heun or sig[i + 1] == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            d2 = (x2 - denoise_ve(x2, sig[i + 1], ts[i + 1])) / sig[i + 1]
            x = x + (d + d2) / 2 * dt
    return x


# (label, function) in the order of the C++ table kStochasticCases.
CASES = [
    ("ddpm, beta-tilde", lambda: ddpm("beta-tilde")),
    ("ddpm, beta", lambda: ddpm("beta")),
    ("ddim, eta 1", lambda: ddim(1.0)),
    ("ddim, eta 0.6, final_alpha_one false", lambda: ddim(0.6, final_alpha_one=False)),
    ("euler-ancestral, eta 1, s_noise 1", lambda: euler_ancestral(1.0, 1.0)),
    ("euler-ancestral, eta 0.7, s_noise 1.2", lambda: euler_ancestral(0.7, 1.2)),
    ("dpm++2m-sde, eta 1, s_noise 1", lambda: dpmpp_2m_sde(1.0, 1.0)),
    ("dpm++2m-sde, eta 0.5, s_noise 0.8", lambda: dpmpp_2m_sde(0.5, 0.8)),
    ("euler, churn 5, s_tmin 0.1, s_tmax 10, s_noise 1.1", lambda: karras_churn(5.0, 0.1, 10.0, 1.1, heun=False)),
    ("heun, churn 2, s_noise 1", lambda: karras_churn(2.0, 0.0, math.inf, 1.0, heun=True)),
]

if __name__ == "__main__":
    print(f"// x_0 after 10 trailing steps, rows of {B} x {D}; printed by tools/reference/stochastic_samplers.py")
    print(f"const double kStochasticRef[{len(CASES)}][{B * D}] = {{")
    for label, fn in CASES:
        x = fn()
        print(f"  // {label}\n  {{" + ", ".join(f"{v:.17g}" for v in x.flatten().tolist()) + "},")
    print("};")
