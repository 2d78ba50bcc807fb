#!/usr/bin/python3
"""The Euler, Euler-ancestral and Heun full loops of diffusers' scheduler tests, replayed
in plain PyTorch, for tests/diffusers_compat_test.cpp.

diffusers is not a Debian package; this script rewrites, from diffusers'
EulerDiscreteScheduler, EulerAncestralDiscreteScheduler and HeunDiscreteScheduler
(set_timesteps, scale_model_input, step) and tests/schedulers/test_scheduler_*.py
(full_loop: T = 1100, linear beta 1e-4 ... 0.02, "linspace" spacing, 10 steps, the dummy
model sample * t / (t + 1), dummy_sample_deter * init_noise_sigma, noise from
torch.manual_seed(0)), the loops whose sums diffusers publishes with 4-5 digits and
absolute tolerances of 1e-2 / 1e-3. It prints sum |x| of each loop to full precision, with
the sigma table computed two ways:

  float32  as diffusers does (alphas_cumprod in float32, sigmas cast to float32). This
           column reproduces diffusers' published sums to their printed digits (Euler on
           Karras sigmas, printed with 17 digits, to 4e-6 relative), except
           for the two v-prediction loops of Euler and Heun: there diffusers publishes
           0.0002 (its mean 2.2676e-06 x 768 = 1.7e-3 contradicts that sum) and 4.6934e-07
           against 2.418e-10 and 4.924e-07 here; its absolute tolerance of 1e-2 never
           checks either.
  float64  as diffuse does (its NoiseSchedule is float64): the value diffuse's loop must
           give, up to float32 arithmetic on the samples (measured: within 6e-5 relative).

The f32/f64 column says how sensitive each sum is to the sigma table (up to 9e-4 for Heun
on Karras sigmas); it is the reason the C++ test compares with the float64 column.

Run:  /usr/bin/python3 tools/reference/diffusers_loops.py   (Debian: python3-torch, numpy)
"""
import numpy as np
import torch

T, STEPS = 1100, 10


def dummy_sample_deter():
    n = 4 * 3 * 8 * 8
    return (torch.arange(n, dtype=torch.float32).reshape(3, 8, 8, 4) / n).permute(3, 0, 1, 2).contiguous()


def dummy_model(sample, t):
    t = t.reshape(-1, 1, 1, 1).to(sample.dtype)
    return sample * t / (t + 1)


def sigma_table(precision):
    if precision == "float32":
        betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
        ac = torch.cumprod(1.0 - betas, 0)
        return np.array(((1 - ac) / ac) ** 0.5)  # float32 numpy array
    b = np.array([1e-4 + (0.02 - 1e-4) * i / (T - 1) for i in range(T)])
    ac = np.cumprod(1.0 - b)
    return np.sqrt((1 - ac) / ac)


def sigma_to_t(sigma, log_sigmas):
    """diffusers EulerDiscreteScheduler._sigma_to_t (log-sigma interpolation)."""
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low_idx = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    high_idx = low_idx + 1
    low, high = log_sigmas[low_idx], log_sigmas[high_idx]
    w = np.clip((low - log_sigma) / (low - high), 0, 1)
    return ((1 - w) * low_idx + w * high_idx).reshape(np.shape(sigma))


def schedule(precision, karras):
    """timesteps (float32 tensor) and sigmas (float32 tensor, 0 appended) of set_timesteps."""
    table = sigma_table(precision)
    log_sigmas = np.log(table)
    timesteps = np.linspace(0, T - 1, STEPS, dtype=float)[::-1].copy()
    sigmas = np.interp(timesteps, np.arange(0, len(table)), table)
    if karras:
        smin, smax, rho = sigmas[-1], sigmas[0], 7.0
        ramp = np.linspace(0, 1, STEPS)
        sigmas = (smax ** (1 / rho) + ramp * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
        timesteps = np.array([sigma_to_t(s, log_sigmas) for s in sigmas])
    sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))
    return torch.from_numpy(timesteps.astype(np.float32)), sigmas


def x0_of(model_output, sample, sigma, prediction):
    if prediction == "epsilon":
        return sample - sigma * model_output
    return model_output * (-sigma / (sigma ** 2 + 1) ** 0.5) + sample / (sigma ** 2 + 1)


def euler(prediction, precision, karras=False, ancestral=False):
    timesteps, sigmas = schedule(precision, karras)
    generator = torch.manual_seed(0)
    sample = dummy_sample_deter() * sigmas.max()  # init_noise_sigma for "linspace"
    for i, t in enumerate(timesteps):
        sigma = sigmas[i]
        sample = sample / ((sigma ** 2 + 1) ** 0.5)  # scale_model_input, written back by the loop
        out = dummy_model(sample, t)
        x0 = x0_of(out, sample, sigma, prediction)
        if ancestral:
            s_from, s_to = sigmas[i], sigmas[i + 1]
            up = (s_to ** 2 * (s_from ** 2 - s_to ** 2) / s_from ** 2) ** 0.5
            down = (s_to ** 2 - up ** 2) ** 0.5
            sample = sample + (sample - x0) / sigma * (down - sigma)
            sample = sample + torch.randn(out.shape, generator=generator, dtype=out.dtype) * up
        else:
            sample = sample + (sample - x0) / sigma * (sigmas[i + 1] - sigma)
    return sample


def heun(prediction, precision, karras=False):
    ts, sg = schedule(precision, karras)
    sigmas = torch.cat([sg[:1], sg[1:-1].repeat_interleave(2), sg[-1:]])
    timesteps = torch.cat([ts[:1], ts[1:].repeat_interleave(2)])
    sample = dummy_sample_deter() * sigmas.max()
    first, prev_d, dt, saved = True, None, None, None
    for k, t in enumerate(timesteps):
        sample = sample / ((sigmas[k] ** 2 + 1) ** 0.5)
        out = dummy_model(sample, t)
        if first:
            sigma, nxt = sigmas[k], sigmas[k + 1]
            x0 = x0_of(out, sample, sigma, prediction)
            d = (sample - x0) / sigma
            prev_d, dt, saved = d, nxt - sigma, sample
            sample = sample + d * dt
            first = False
            if nxt == 0:
                break
        else:
            nxt = sigmas[k]
            x0 = x0_of(out, sample, nxt, prediction)
            d = ((sample - x0) / nxt + prev_d) / 2
            sample = saved + d * dt
            first = True
    return sample


# (label, loop, sum |x| published by diffusers' test of that name)
CASES = [
    ("euler, epsilon", lambda p: euler("epsilon", p), "10.0807"),                      # test_full_loop_no_noise
    ("euler, v", lambda p: euler("v", p), "0.0002"),                                   # _with_v_prediction (mean 2.2676e-06)
    ("euler, epsilon, karras", lambda p: euler("epsilon", p, karras=True), "124.52299499511719"),
    ("euler-ancestral, epsilon", lambda p: euler("epsilon", p, ancestral=True), "152.3192"),
    ("euler-ancestral, v", lambda p: euler("v", p, ancestral=True), "108.4439"),
    ("heun, epsilon", lambda p: heun("epsilon", p), "0.1233"),
    ("heun, v", lambda p: heun("v", p), "4.6934e-07"),
    ("heun, epsilon, karras", lambda p: heun("epsilon", p, karras=True), "0.00015"),
]

if __name__ == "__main__":
    print(f"{'loop':26s} {'diffusers':>20s} {'float32 sigmas':>18s} {'float64 sigmas':>24s}  f32/f64 differ by")
    for label, fn, published in CASES:
        a = fn("float32").abs().sum().item()
        b = fn("float64").abs().sum().item()
        print(f"{label:26s} {published:>20s} {a:18.10g} {b:24.17g}  {abs(a - b) / abs(b):.1e}")
