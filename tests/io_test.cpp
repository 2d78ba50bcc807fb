// safetensors, CSV, JSON config, atomic writes, sliced Wasserstein.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/metrics.hpp"
#include "diffuse/train.hpp"

using namespace diffuse;
namespace fs = std::filesystem;

namespace {
std::string tmpdir(const std::string& name) {
  auto d = fs::path(::testing::TempDir()) / ("diffuse_io_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "";
}
}  // namespace

TEST(Safetensors, RoundTripsDtypesShapesAndMetadata) {
  const auto dir = tmpdir("st");
  std::map<std::string, torch::Tensor> t = {
      {"a", torch::randn({2, 3})},
      {"b", torch::arange(5, torch::kLong)},
      {"c", torch::randn({4}, torch::kFloat64)},
      {"d", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"scalar", torch::tensor(7, torch::kLong)}};
  save_safetensors(dir + "/x.safetensors", t, {{"config", "{\"k\": 1}"}, {"step", "3"}});
  auto f = load_safetensors(dir + "/x.safetensors");
  ASSERT_EQ(f.tensors.size(), t.size());
  for (const auto& [k, v] : t) {
    EXPECT_EQ(f.tensors.at(k).scalar_type(), v.scalar_type()) << k;
    EXPECT_TRUE(torch::equal(f.tensors.at(k), v)) << k;
  }
  EXPECT_EQ(f.metadata.at("step"), "3");
  EXPECT_EQ(f.metadata.at("config"), "{\"k\": 1}");
  // The layout is the reference one: u64 little-endian header size, JSON, 8-aligned data.
  std::ifstream in(dir + "/x.safetensors", std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  EXPECT_EQ(n % 8, 0u);
  std::string header(n, '\0');
  in.read(header.data(), n);
  EXPECT_EQ(header.front(), '{');
  EXPECT_NE(header.find("\"__metadata__\""), std::string::npos);
  EXPECT_NE(header.find("\"dtype\":\"BF16\""), std::string::npos);
  for (const auto& e : fs::directory_iterator(dir))  // no temp files left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos);
}

TEST(Safetensors, CorruptFilesGiveClearErrors) {
  const auto dir = tmpdir("bad");
  EXPECT_NE(message_of([&] { load_safetensors(dir + "/missing.safetensors"); }).find("cannot open"),
            std::string::npos);
  { std::ofstream(dir + "/short") << "abc"; }
  EXPECT_NE(message_of([&] { load_safetensors(dir + "/short"); }).find("too short"), std::string::npos);
  save_safetensors(dir + "/ok", {{"a", torch::ones({100})}});
  fs::resize_file(dir + "/ok", fs::file_size(dir + "/ok") - 16);
  EXPECT_NE(message_of([&] { load_safetensors(dir + "/ok"); }).find("is truncated: tensor 'a' ends at byte 400"),
            std::string::npos);
}

TEST(Csv, ReadsHeaderAndReportsBadRows) {
  const auto dir = tmpdir("csv");
  { std::ofstream(dir + "/a.csv") << "x,y\n1,2\n3.5, -4\n"; }
  auto x = read_csv(dir + "/a.csv");
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_FLOAT_EQ(x[1][1].item<float>(), -4.0f);
  { std::ofstream(dir + "/b.csv") << "1,2\n3,oops\n"; }
  EXPECT_NE(message_of([&] { read_csv(dir + "/b.csv"); }).find("b.csv:2: field 2 ('oops') is not a finite number"),
            std::string::npos);
  { std::ofstream(dir + "/c.csv") << "1,2\n3\n"; }
  EXPECT_NE(message_of([&] { read_csv(dir + "/c.csv"); }).find("1 values where earlier rows have 2"),
            std::string::npos);
  write_csv(dir + "/d.csv", torch::tensor({{1.25, 2.0}, {3.0, 4.0}}));
  EXPECT_TRUE(torch::equal(read_csv(dir + "/d.csv"), torch::tensor({{1.25f, 2.0f}, {3.0f, 4.0f}})));
}

TEST(Csv, QuotedFieldsRoundTripAndBadQuotesNameTheLine) {
  const std::vector<std::string> fields = {"plain", "a,comma", "say \"hi\"", "two\nlines", "", "crlf\r\nend"};
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  std::string text = "h1,h2\r\n\n";  // a CRLF header and a blank line (skipped)
  for (const auto& f : fields) text += csv_field(f) + "," + csv_field(f) + "\n";
  const auto rec = parse_csv_records(text, "t.csv");
  ASSERT_EQ(rec.size(), fields.size() + 1);
  EXPECT_EQ(rec[0].fields, (std::vector<std::string>{"h1", "h2"}));
  for (size_t k = 0; k < fields.size(); ++k)
    EXPECT_EQ(rec[k + 1].fields, (std::vector<std::string>{fields[k], fields[k]})) << "field " << k;
  EXPECT_EQ(rec[1].line, 3);  // after the header and the blank line
  EXPECT_EQ(rec[4].line, 6);
  EXPECT_EQ(rec[5].line, 9);  // row 6's two quoted fields each held a line break
  EXPECT_NE(message_of([] { parse_csv_records("a,b\n\"open,c\n", "x.csv"); }).find("x.csv:2: a quoted field has no closing quote"),
            std::string::npos);
  EXPECT_NE(message_of([] { parse_csv_records("a\n\"q\"tail,b\n", "y.csv"); }).find("y.csv:2: field 1 goes on after its closing quote"),
            std::string::npos);
}

TEST(Config, UnknownKeysListTheValidOnes) {
  auto msg = message_of([] { train_config_from_json(R"({"stpes": 10})"); });
  EXPECT_NE(msg.find("unknown key 'stpes' in config"), std::string::npos) << msg;
  EXPECT_NE(msg.find("valid keys: model_kind, data, data_dir, image_size, background, schedule, prediction, loss, model, unet, vae, autoencoder, kl_weight, latent"), std::string::npos) << msg;
  msg = message_of([] { train_config_from_json(R"({"schedule": {"kind": "linear", "TT": 5}})"); });
  EXPECT_NE(msg.find("unknown key 'TT' in 'schedule'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("beta_start"), std::string::npos) << msg;
  msg = message_of([] { train_config_from_json(R"({"steps": "many"})"); });
  EXPECT_NE(msg.find("bad value for 'steps'"), std::string::npos) << msg;
  msg = message_of([] { train_config_from_json("{not json"); });
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

TEST(Config, JsonRoundTripKeepsEveryField) {
  TrainConfig c;
  c.data = "toy:moons";
  c.schedule.kind = ScheduleKind::Sigmoid;
  c.schedule.T = 100;
  c.prediction = PredictionType::V;
  c.loss.weighting = LossWeighting::MinSnr;
  c.model.hidden = 64;
  c.steps = 123;
  c.seed = 99;
  c.lr = 3e-4;
  auto back = train_config_from_json(train_config_to_json(c));
  EXPECT_EQ(train_config_to_json(back), train_config_to_json(c));
  EXPECT_EQ(back.schedule.kind, ScheduleKind::Sigmoid);
  EXPECT_EQ(back.prediction, PredictionType::V);
  EXPECT_EQ(back.steps, 123);
}

TEST(SlicedWasserstein, ClosedFormForShiftedGaussians) {
  // SW₂² between N(0, I) and N(m, I) is E_θ[(θᵀm)²] = ‖m‖²/D (the shapes cancel).
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  const int64_t N = 5000, D = 4;
  auto a = torch::randn({N, D}, g, torch::kFloat64);
  auto m = torch::tensor({1.0, -2.0, 0.5, 1.0}, torch::kFloat64);
  auto b = torch::randn({N, D}, g, torch::kFloat64) + m;
  const double want = std::sqrt(m.pow(2).sum().item<double>() / D);
  EXPECT_NEAR(sliced_wasserstein(a, b, 1000, 1), want, 0.08 * want);
  EXPECT_NEAR(sliced_wasserstein(a, a, 64, 1), 0.0, 1e-12);
  // Different set sizes are allowed.
  EXPECT_NEAR(sliced_wasserstein(a.slice(0, 0, 2000), b, 1000, 1), want, 0.1 * want);
}
