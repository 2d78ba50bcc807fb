#!/usr/bin/python3
"""Reference values of the variational-bound terms for tests/likelihood_test.cpp.

Computed independently of diffuse's C++ code, from Ho et al. 2020 (eqs. 5-7, 13) and
improved-diffusion's gaussian_diffusion.py (_vb_terms_bpd, _prior_bpd; fixed variances),
in float64 with PyTorch, and the discretized decoder with mpmath at 50 digits.

The fixed "model" (identical in the C++ test): a linear schedule with T = 10,
beta from 0.02 to 0.4, and the epsilon-prediction

    eps_theta(x_t, t) = tanh(x_t) * (t + 1) / T        (t = 0 ... T-1, diffuse's index)

so x0_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t).
Data: two rows of six 8-bit values mapped by u / 127.5 - 1; x_t = sqrt(abar_t) x0 +
sqrt(1 - abar_t) z_t with the fixed z_t[i, d] = sin(1.7 (6 i + d + 1) + 0.3 t).
Values are nats per dimension (the mean over the 6 dims of a row).

Also the expected bound of the exact Gaussian denoiser on Gaussian data, minus the data's
entropy (tests/likelihood_test.cpp, GaussianBoundAboveEntropy): data N(mu, Sigma) in D = 8
dimensions, A = torch.randn(8, 8, generator=Generator().manual_seed(11), float64) * 0.6,
Sigma = A A^T + 0.02 I, mu = linspace(-2, 3, 8); the linear schedule with the total noise of
T = 1000 (beta from 1e-4 * 1000/T to 0.02 * 1000/T). Every term is an expectation over
x0 ~ N(mu, Sigma) of a Gaussian KL or log-density, written with full matrices (no
eigen-decomposition, unlike the C++ closed form), the error of the exact x0_hat = E[x0 | x_t]
entering through tr Cov(x0 | x_t) = tr(Sigma - abar Sigma (abar Sigma + (1 - abar) I)^-1 Sigma);
the entropy is scipy.stats.multivariate_normal(mu, Sigma).entropy().

Run:  /usr/bin/python3 tools/reference/nll_terms.py   (Debian: python3-torch, python3-mpmath,
      python3-scipy)
"""
import math

import mpmath
import torch

torch.set_default_dtype(torch.float64)
mpmath.mp.dps = 50

T = 10
betas = torch.linspace(0.02, 0.4, T)
abar = torch.cumprod(1 - betas, 0)
abar_prev = torch.cat([torch.ones(1), abar[:-1]])
post_var = betas * (1 - abar_prev) / (1 - abar)              # beta-tilde_t (0 at t = 0)
post_logvar_clipped = torch.log(torch.cat([post_var[1:2], post_var[1:]]))
coef_x0 = betas * abar_prev.sqrt() / (1 - abar)
coef_xt = (1 - betas).sqrt() * (1 - abar_prev) / (1 - abar)
model_logvar = {
    "beta-tilde": post_logvar_clipped,                                    # FIXED_SMALL
    "beta": torch.log(torch.cat([post_var[1:2], betas[1:]])),             # FIXED_LARGE
}

U = torch.tensor([[0, 37, 127, 128, 200, 255], [255, 3, 90, 160, 254, 1]], dtype=torch.float64)
X0 = U / 127.5 - 1


def z_of(t):
    i = torch.arange(2).view(2, 1)
    d = torch.arange(6).view(1, 6)
    return torch.sin(1.7 * (6 * i + d + 1) + 0.3 * t)


def x_t_of(t):
    return abar[t].sqrt() * X0 + (1 - abar[t]).sqrt() * z_of(t)


def eps_model(x, t):
    return torch.tanh(x) * (t + 1) / T


def kl_normal(m1, v1, m2, v2):  # variances, not log-variances
    return 0.5 * (math.log(v2) - math.log(v1) + v1 / v2 + (m1 - m2) ** 2 / v2 - 1)


def log_prob_bin(x, mean, var):
    """log P(bin of x) under N(mean, var), Ho et al. 2020 eq. 13, with mpmath."""
    s = mpmath.sqrt(mpmath.mpf(var))
    u = round(x * 127.5 + 127.5)
    lo = -mpmath.inf if u == 0 else (mpmath.mpf(x) - mpmath.mpf(1) / 255 - mean) / s
    hi = mpmath.inf if u == 255 else (mpmath.mpf(x) + mpmath.mpf(1) / 255 - mean) / s
    # P = Phi(hi) - Phi(lo), written with erfc to keep digits in both tails
    p = (mpmath.erfc(-hi / mpmath.sqrt(2)) - mpmath.erfc(-lo / mpmath.sqrt(2))) / 2 if hi <= 0 or lo == -mpmath.inf \
        else (mpmath.erfc(lo / mpmath.sqrt(2)) - mpmath.erfc(hi / mpmath.sqrt(2))) / 2
    return float(mpmath.log(p))


def term(t, variance, decoder, clip):
    xt = x_t_of(t)
    x0_hat = (xt - (1 - abar[t]).sqrt() * eps_model(xt, t)) / abar[t].sqrt()
    if clip > 0:
        x0_hat = x0_hat.clamp(-clip, clip)
    mean_model = coef_x0[t] * x0_hat + coef_xt[t] * xt
    var_model = math.exp(model_logvar[variance][t])
    out = []
    for i in range(2):
        vals = []
        for d in range(6):
            if t == 0:
                x, m = X0[i, d].item(), mean_model[i, d].item()
                if decoder == "discretized-8bit":
                    vals.append(-log_prob_bin(x, m, var_model))
                else:
                    vals.append(0.5 * math.log(2 * math.pi * var_model) + (x - m) ** 2 / (2 * var_model))
            else:
                mean_post = (coef_x0[t] * X0[i, d] + coef_xt[t] * xt[i, d]).item()
                vals.append(kl_normal(mean_post, post_var[t].item(), mean_model[i, d].item(), var_model))
        out.append(sum(vals) / 6)
    return out


def prior():
    v = 1 - abar[-1].item()
    return [sum(kl_normal(abar[-1].sqrt().item() * X0[i, d].item(), v, 0.0, 1.0) for d in range(6)) / 6
            for i in range(2)]


def tails():
    """-log P(bin) far in the tails: (x, mean, var) -> value."""
    cases = [(0.0, 0.9, 1e-4), (0.0, -0.9, 1e-4), (1.0, 0.2, 1e-4), (-1.0, 0.2, 1e-4),
             (-1.0, -0.99, 1e-3), (10 / 127.5 - 1, 10 / 127.5 - 1, 1e-6)]
    return [(x, m, v, -log_prob_bin(x, m, v)) for x, m, v in cases]


def gaussian_bound_gap(T_, variance, D=8):
    """E[bound] - H in nats/dim for the exact denoiser, continuous decoder (see docstring)."""
    import scipy.stats
    g = torch.Generator().manual_seed(11)
    A = torch.randn(D, D, generator=g, dtype=torch.float64) * 0.6
    Sigma = A @ A.T + 0.02 * torch.eye(D)
    mu = torch.linspace(-2, 3, D)
    b = torch.tensor([1e-4 * 1000 / T_ + (0.02 - 1e-4) * 1000 / T_ * i / (T_ - 1) for i in range(T_)])
    ab = torch.cumprod(1 - b, 0)
    ab_prev = torch.cat([torch.ones(1), ab[:-1]])
    bt = b * (1 - ab_prev) / (1 - ab)  # beta-tilde; bt[0] = 0
    var = torch.cat([bt[1:2], (bt if variance == "beta-tilde" else b)[1:]])  # sigma_t^2, sigma_0^2 = bt_1
    c0 = b * ab_prev.sqrt() / (1 - ab)
    I = torch.eye(D)

    def tr_post_cov(t):  # tr Cov(x0 | x_t)
        a = ab[t]
        return torch.trace(Sigma - a * Sigma @ torch.linalg.solve(a * Sigma + (1 - a) * I, Sigma)).item()

    aT = ab[-1].item()
    total = 0.5 * (D * (1 - aT) + aT * (mu @ mu + torch.trace(Sigma)).item() - D - D * math.log(1 - aT))
    for t in range(1, T_):  # KL(q(x_{t-1} | x_t, x0) || N(mu_theta, sigma_t^2 I)), mu_tilde - mu_theta = c0 (x0 - x0_hat)
        v, p = var[t].item(), bt[t].item()
        total += 0.5 * D * (math.log(v) - math.log(p) + p / v - 1) + c0[t].item() ** 2 * tr_post_cov(t) / (2 * v)
    v0 = var[0].item()  # decoder: -log N(x0; x0_hat, sigma_0^2 I)
    total += 0.5 * D * math.log(2 * math.pi * v0) + tr_post_cov(0) / (2 * v0)
    H = scipy.stats.multivariate_normal(mu.numpy(), Sigma.numpy()).entropy()
    return (total - H) / D


if __name__ == "__main__":
    f = lambda *xs: ", ".join(f"{x:.17g}" for x in (xs[0] if len(xs) == 1 else xs))
    print(f"// prior L_T per row\nconst double kNllPrior[2] = {{{f(prior())}}};")
    configs = [("beta-tilde", "discretized-8bit", 0.0), ("beta", "discretized-8bit", 0.0),
               ("beta-tilde", "continuous", 0.0), ("beta", "continuous", 0.0),
               ("beta-tilde", "discretized-8bit", 1.0)]
    print("// terms[config][t][row]: configs (variance, decoder, clip_x0) = "
          + ", ".join(f"({v}, {d}, {c:g})" for v, d, c in configs[:2]) + ",\n// "
          + ", ".join(f"({v}, {d}, {c:g})" for v, d, c in configs[2:]))
    print("const double kNllTerms[5][10][2] = {")
    for cfg in configs:
        print("  {" + ", ".join("{" + f(term(t, *cfg)) + "}" for t in range(T)) + "},")
    print("};")
    print("// tails: x, mean, var, -log P(bin)")
    print("const double kNllTails[6][4] = {" + ", ".join("{" + f(c) + "}" for c in tails()) + "};")
    print("// E[bound] - entropy of the exact Gaussian denoiser, nats/dim: {T, beta-tilde, beta}")
    print("const double kNllGaussGap[2][3] = {" + ", ".join(
        "{" + f(T_, gaussian_bound_gap(T_, "beta-tilde"), gaussian_bound_gap(T_, "beta")) + "}" for T_ in (1000, 100)) + "};")
