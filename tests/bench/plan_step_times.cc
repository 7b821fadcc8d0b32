// Per-step times of an execution plan, for the steps ONEDNN_VERBOSE does not see (Octet's own
// loops: QuantizeLinear, the int8 global average, DequantizeLinear, Flatten) as well as the
// oneDNN ones, plus the wall time of whole runs. Each step runs alone (stream waited after it),
// so the figure includes its OpenMP region's start-up; minimum over runs.
//   plan_step_times MODEL BATCH THREADS RUNS
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/plan.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL BATCH THREADS RUNS\n", argv[0]);
    return 2;
  }
  const int batch = std::atoi(argv[2]), threads = std::atoi(argv[3]), runs = std::atoi(argv[4]);
  auto model = octet::Model::LoadFromFile(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  octet::ContextOptions co;
  co.num_threads = threads;
  auto ctx = (*model)->CreateContext(co);
  if (!ctx.ok()) return 1;
  std::vector<octet::Tensor> inputs;
  std::vector<octet::Shape> shapes;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (const octet::TensorSpec& spec : (*model)->inputs()) {
    octet::Shape s = spec.dims;
    for (int64_t& d : s) d = d < 0 ? batch : d;
    octet::Tensor t = octet::Tensor::Zeros(spec.dtype, s);
    if (spec.dtype == octet::DType::kF32) {
      for (int64_t i = 0; i < t.num_elements(); ++i) t.data_as<float>()[i] = uni(rng);
    }
    shapes.push_back(s);
    inputs.push_back(std::move(t));
  }
  auto plan = (*ctx)->PlanFor(shapes);
  if (!plan.ok()) return 1;
  omp_set_num_threads(threads);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  using Clock = std::chrono::steady_clock;
  const auto& steps = (*plan)->steps();
  std::vector<double> best(steps.size(), 1e30);
  double best_run = 1e30;
  for (int r = 0; r < runs + 2; ++r) {
    const auto t0 = Clock::now();
    if (!(*ctx)->Run(inputs).ok()) return 1;
    if (r >= 2)
      best_run =
          std::min(best_run, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    for (size_t i = 0; i < steps.size(); ++i) {
      const auto s0 = Clock::now();
      if (!steps[i].kernel->Run(stream).ok()) return 1;
      stream.wait();
      if (r >= 2) {
        best[i] =
            std::min(best[i], std::chrono::duration<double, std::milli>(Clock::now() - s0).count());
      }
    }
  }
  double total = 0;
  std::map<std::string, std::pair<int, double>> by_impl;
  for (size_t i = 0; i < steps.size(); ++i) {
    total += best[i];
    auto& e = by_impl[steps[i].op_type + " " + steps[i].impl];
    e.first++;
    e.second += best[i];
  }
  std::printf("whole run: min %.3f ms; sum of per-step minima %.3f ms (%zu steps)\n", best_run,
              total, steps.size());
  for (const auto& [name, e] : by_impl)
    std::printf("%8.3f ms x%-3d %s\n", e.second, e.first, name.c_str());
  return 0;
}
