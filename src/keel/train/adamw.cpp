#include "keel/train/adamw.h"

#include <cmath>

namespace keel::train {

Status check_adamw_options(const AdamWOptions& o) {
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) {
    return invalid_argument("AdamW betas must be in [0, 1)");
  }
  if (!(o.epsilon > 0)) return invalid_argument("AdamW epsilon must be positive");
  if (!(o.weight_decay >= 0)) return invalid_argument("AdamW weight_decay must not be negative");
  if (!(o.max_grad_norm >= 0)) return invalid_argument("max_grad_norm must not be negative");
  return Status::Ok();
}

double global_grad_norm(std::span<const ParameterRef> parameters) {
  double sum = 0;
  for (const ParameterRef& p : parameters) {
    for (float g : p.grad) sum += static_cast<double>(g) * g;
  }
  return std::sqrt(sum);
}

double clip_grad_norm(std::span<const ParameterRef> parameters, double max_norm) {
  const double norm = global_grad_norm(parameters);
  if (norm > max_norm) {
    const auto factor = static_cast<float>(max_norm / (norm + 1e-6));
    for (const ParameterRef& p : parameters) {
      for (float& g : p.grad) g *= factor;
    }
  }
  return norm;
}

Result<double> AdamW::step(std::span<const ParameterRef> parameters, float learning_rate) {
  KEEL_RETURN_IF_ERROR(check_adamw_options(options_));
  if (steps_ == 0) {
    m_.clear();
    v_.clear();
    for (const ParameterRef& p : parameters) {
      m_.emplace_back(p.value.size(), 0.0f);
      v_.emplace_back(p.value.size(), 0.0f);
    }
  }
  if (parameters.size() != m_.size()) {
    return invalid_argument("AdamW was started with " + std::to_string(m_.size()) + " parameters, step has " +
                            std::to_string(parameters.size()));
  }
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (parameters[i].value.size() != m_[i].size() || parameters[i].grad.size() != m_[i].size()) {
      return invalid_argument("parameter " + parameters[i].name + " changed size between AdamW steps");
    }
  }
  const double norm = global_grad_norm(parameters);
  if (!std::isfinite(norm)) return invalid_argument("gradient norm is not finite; the step was skipped");
  if (options_.max_grad_norm > 0) clip_grad_norm(parameters, options_.max_grad_norm);

  ++steps_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double correction1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double correction2 = 1.0 - std::pow(b2, static_cast<double>(steps_));
  // torch: step_size = lr / bias_correction1; denom = sqrt(v) / sqrt(bias_correction2) + eps.
  const auto step_size = static_cast<float>(learning_rate / correction1);
  const auto root_correction2 = static_cast<float>(std::sqrt(correction2));
  const float decay = 1.0f - learning_rate * options_.weight_decay;
  const auto fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
  for (size_t i = 0; i < parameters.size(); ++i) {
    std::span<float> p = parameters[i].value;
    std::span<const float> g = parameters[i].grad;
    std::vector<float>& m = m_[i];
    std::vector<float>& v = v_[i];
    for (size_t j = 0; j < p.size(); ++j) {
      p[j] *= decay;
      m[j] = fb1 * m[j] + (1.0f - fb1) * g[j];
      v[j] = fb2 * v[j] + (1.0f - fb2) * g[j] * g[j];
      const float denom = std::sqrt(v[j]) / root_correction2 + options_.epsilon;
      p[j] -= step_size * m[j] / denom;
    }
  }
  return norm;
}

Status AdamW::restore(int64_t steps, std::vector<std::vector<float>> m, std::vector<std::vector<float>> v) {
  if (steps < 0) return invalid_argument("AdamW cannot restore a negative step count");
  if (m.size() != v.size()) return invalid_argument("AdamW's moments differ in count");
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i].size() != v[i].size()) return invalid_argument("AdamW's moments of parameter " + std::to_string(i) + " differ in size");
  }
  if (steps > 0 && m.empty()) return invalid_argument("AdamW restored after steps without moments");
  steps_ = steps;
  m_ = std::move(m);
  v_ = std::move(v);
  return Status::Ok();
}

}  // namespace keel::train
