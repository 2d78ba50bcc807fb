// UniPC (Zhao et al. 2023) with x₀ prediction and B(h) = e^h − 1 ("bh2"), as in
// diffusers' UniPCMultistepScheduler. VP state x_t = α_t x₀ + σ_t ε, λ = log(α/σ),
// h = λ_t − λ_{s0}, ĥ = −h, φ₁ = e^ĥ − 1, B = e^ĥ − 1, D_k = (m_k − m_0)/r_k with
// r_k = (λ_{s_k} − λ_{s0})/h for the earlier x₀ estimates m_k:
//   UniP (predictor), order p:  x_t = (σ_t/σ_{s0}) x − α_t φ₁ m_0 − α_t B Σ_k ρᵖ_k D_k
//   UniC (corrector), order p:  x_t ← (σ_t/σ_{s0}) x_{s0} − α_t φ₁ m_0
//                                      − α_t B (Σ_k ρᶜ_k D_k + ρᶜ_p (m_t − m_0))
// where ρ solves R ρ = b with R_{jk} = r_k^j and b_j = j! φ_{j+1}(ĥ)/B (b_j built by
// the recursion φ_{k+1} = φ_k/ĥ − 1/k!); p = 2 uses ρᵖ = ½. The corrector reuses
// the model call of the next step, so there are S network calls. The order warms
// up from 1 and drops to 1 for the last step (σ = 0).
#include <array>

#include "context.hpp"
#include "diffuse/error.hpp"

namespace diffuse::sampler_detail {

namespace {

// Solves the n × n system A x = b (n ≤ 3) by Gaussian elimination with pivoting.
std::vector<double> unipc_solve(std::vector<std::vector<double>> A, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t k = 0; k < n; ++k) {
    size_t piv = k;
    for (size_t r = k + 1; r < n; ++r)
      if (std::abs(A[r][k]) > std::abs(A[piv][k])) piv = r;
    std::swap(A[k], A[piv]);
    std::swap(b[k], b[piv]);
    if (A[k][k] == 0.0) throw Error("UniPC: singular coefficient system (repeated noise levels in the grid?)");
    for (size_t r = k + 1; r < n; ++r) {
      const double f = A[r][k] / A[k][k];
      for (size_t cc = k; cc < n; ++cc) A[r][cc] -= f * A[k][cc];
      b[r] -= f * b[k];
    }
  }
  std::vector<double> x(n);
  for (size_t k = n; k-- > 0;) {
    double s = b[k];
    for (size_t cc = k + 1; cc < n; ++cc) s -= A[k][cc] * x[cc];
    x[k] = s / A[k][k];
  }
  return x;
}

double unipc_lambda(const GridPoint& p) { return -std::log(p.sigma); }  // log(α/σ) = −log σ_VE

struct UnipcCoefs {
  double h_phi_1, B;
  std::vector<double> rks;           // r_1 … r_{p−1}, then 1
  std::vector<std::vector<double>> R;  // p × p
  std::vector<double> b;             // p
};

// rks for the p − 1 earlier points lambdas_k (k = 1 … p−1) relative to s0, step to t.
UnipcCoefs unipc_coefs(double lambda_s0, double lambda_t, const std::vector<double>& earlier, int order) {
  const double h = lambda_t - lambda_s0, hh = -h;
  UnipcCoefs c;
  for (double l : earlier) c.rks.push_back((l - lambda_s0) / h);
  c.rks.push_back(1.0);
  c.h_phi_1 = std::expm1(hh);
  c.B = std::expm1(hh);
  double h_phi_k = c.h_phi_1 / hh - 1.0, factorial = 1.0;
  for (int i = 1; i <= order; ++i) {
    std::vector<double> row;
    for (double r : c.rks) row.push_back(std::pow(r, i - 1));
    c.R.push_back(row);
    c.b.push_back(h_phi_k * factorial / c.B);
    factorial *= double(i + 1);
    h_phi_k = h_phi_k / hh - 1.0 / factorial;
  }
  return c;
}

}  // namespace

torch::Tensor sample_unipc(Context& c, torch::Tensor x) {
  const int order = c.cfg.order.value_or(2);
  const int64_t S = c.steps();
  std::vector<torch::Tensor> ms;  // x₀ estimates, newest last
  std::vector<int64_t> at;        // their grid indices
  torch::Tensor last_sample;
  int this_order = 1, lower_order_nums = 0;
  for (int64_t i = 0; i < S; ++i) {
    const GridPoint& p = c.grid[i];
    auto m = c.denoise(x, p).x0;
    if (i > 0 && last_sample.defined()) {
      // UniC: correct x at grid i with the new estimate m, from grid i − 1.
      const int64_t s0 = i - 1;
      std::vector<double> earlier;
      for (int k = 1; k < this_order; ++k) earlier.push_back(unipc_lambda(c.grid[at[at.size() - 1 - k]]));
      auto cf = unipc_coefs(unipc_lambda(c.grid[s0]), unipc_lambda(p), earlier, this_order);
      std::vector<double> rho = this_order == 1 ? std::vector<double>{0.5} : unipc_solve(cf.R, cf.b);
      const double a_t = std::sqrt(p.alpha_bar), sg_t = std::sqrt(1.0 - p.alpha_bar);
      const double sg_s0 = std::sqrt(1.0 - c.grid[s0].alpha_bar);
      const auto& m0 = ms.back();
      auto res = rho.back() * (m - m0);
      for (int k = 1; k < this_order; ++k)
        res = res + rho[k - 1] * (ms[ms.size() - 1 - k] - m0) / cf.rks[k - 1];
      x = (sg_t / sg_s0) * last_sample - a_t * cf.h_phi_1 * m0 - a_t * cf.B * res;
    }
    ms.push_back(m);
    at.push_back(i);
    if (int(ms.size()) > order) {
      ms.erase(ms.begin());
      at.erase(at.begin());
    }
    this_order = std::min<int>(order, int(S - i));  // lower order for the final steps
    this_order = std::min(this_order, lower_order_nums + 1);  // warm-up
    last_sample = x;
    // UniP: predict x at grid i + 1.
    const GridPoint& q = c.grid[i + 1];
    if (q.sigma == 0.0) {
      x = m;  // λ = ∞: the order-1 step to σ = 0 returns the x₀ estimate
    } else {
      std::vector<double> earlier;
      for (int k = 1; k < this_order; ++k) earlier.push_back(unipc_lambda(c.grid[at[at.size() - 1 - k]]));
      auto cf = unipc_coefs(unipc_lambda(p), unipc_lambda(q), earlier, this_order);
      const double a_t = std::sqrt(q.alpha_bar), sg_t = std::sqrt(1.0 - q.alpha_bar);
      const double sg_s0 = std::sqrt(1.0 - p.alpha_bar);
      auto next = (sg_t / sg_s0) * x - a_t * cf.h_phi_1 * m;
      if (this_order >= 2) {
        std::vector<double> rho;
        if (this_order == 2) {
          rho = {0.5};
        } else {
          std::vector<std::vector<double>> R(this_order - 1);
          for (int r = 0; r < this_order - 1; ++r) R[r] = {cf.R[r].begin(), cf.R[r].end() - 1};
          rho = unipc_solve(R, {cf.b.begin(), cf.b.end() - 1});
        }
        auto res = torch::zeros_like(x);
        for (int k = 1; k < this_order; ++k) res = res + rho[k - 1] * (ms[ms.size() - 1 - k] - m) / cf.rks[k - 1];
        next = next - a_t * cf.B * res;
      }
      x = next;
    }
    if (lower_order_nums < order) ++lower_order_nums;
    c.report(i, p, x, m);
  }
  return x;
}

}  // namespace diffuse::sampler_detail
