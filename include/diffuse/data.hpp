// diffuse — data sources: the seed-002 signals, 2-D toys, CSV files, images.
//
// A data spec names a source on the command line:
//   signals           50-dim curves, each a weighted sum of random sinusoids (seed 002)
//   toy:swissroll  toy:8gaussians  toy:moons  toy:checkerboard    2-D toys
//   csv:PATH          one vector per row (a header row of names is allowed)
//   fashion-mnist     Fashion-MNIST train split (fashion-mnist:test for the test split),
//                     from Debian's dataset-fashion-mnist (or DataOptions::data_dir)
//   folder:PATH       a folder of PNG images, labels from subfolder names if any
//   emoji             Noto Color Emoji rendered to RGB, labeled by Unicode emoji group (the
//                     train split; emoji:test for the test split; :color drops near-gray
//                     glyphs, :no-skin-tones the skin-tone variants; see load_emoji)
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace diffuse {

struct DataBatch {
  torch::Tensor x;       // (n, D) vectors or (n, C, H, W) images in [−1, 1], float32
  torch::Tensor labels;  // (n) int64 class ids, or undefined for unlabeled data
};

class DataSource {
 public:
  virtual ~DataSource() = default;
  // Shape of one sample: {D} for vectors, {C, H, W} for images.
  virtual std::vector<int64_t> shape() const = 0;
  bool is_image() const { return shape().size() == 3; }
  // n fresh draws (or, for a finite set, n items drawn with replacement).
  virtual DataBatch sample(int64_t n, torch::Generator& gen) const = 0;
  // The whole set for finite vector sources (CSV); undefined otherwise.
  virtual torch::Tensor all() const { return {}; }
  // Finite image sets (fashion-mnist, folder:PATH, …): the number of images, the
  // images at `index` ((n) int64, each in [0, size())) and the labels of all images
  // ((size()) int64, undefined when unlabeled). Sources of fresh draws have size() 0,
  // and items() throws there.
  virtual int64_t size() const { return 0; }
  virtual DataBatch items(const torch::Tensor& index) const;
  virtual torch::Tensor labels() const { return {}; }
  virtual int64_t num_classes() const { return 0; }
  virtual std::vector<std::string> class_names() const { return {}; }
  virtual std::string spec() const = 0;
};

struct DataOptions {
  std::string data_dir;      // fashion-mnist: folder of the IDX files ("": Debian's location)
  int64_t image_size = 0;    // folder:PATH, emoji: side of the square images (0: the source's
                             // default, 28 for folders, 32 for emoji)
  int64_t channels = 0;      // folder:PATH: 1 or 3 (0: from the first image)
  std::string background = "white";  // emoji: colour behind the glyphs (white, black, #rrggbb)
};

// Parses a spec, throwing diffuse::Error that lists the valid specs.
std::unique_ptr<DataSource> make_data_source(const std::string& spec, const DataOptions& o = {});
std::vector<std::string> data_spec_names();
// Images of a dataset as a source (images (N, C, H, W) uint8, labels (N) int64 or undefined).
std::unique_ptr<DataSource> make_image_source(std::string spec, torch::Tensor images, torch::Tensor labels,
                                              std::vector<std::string> class_names);

// Seed 002's signals: x(u) = Σ_k w_k sin(2π f_k u + φ_k), u = 0 … 1 over `dim` points,
// f_k ~ U(freq_min, freq_max) cycles, φ_k ~ U(0, 2π), w ~ U(0, 1) normalised to Σw = 1
// (so |x| ≤ 1).
struct SignalsOptions {
  int64_t dim = 50;         // points per curve
  int64_t components = 3;   // sinusoids per curve
  double freq_min = 0.5;    // lowest frequency, cycles per curve
  double freq_max = 4.0;    // highest frequency, cycles per curve
};
std::unique_ptr<DataSource> make_signals(const SignalsOptions& o = {});

// Per-dimension standardisation x ↦ (x − mean)/std, fitted on data (N, D).
struct Normalizer {
  torch::Tensor mean, std;  // (D) float32; undefined = identity
  static Normalizer fit(const torch::Tensor& data);
  torch::Tensor encode(const torch::Tensor& x) const;
  torch::Tensor decode(const torch::Tensor& x) const;
};

}  // namespace diffuse

namespace diffuse {
// Whether a spec names image data (fashion-mnist…, folder:…, emoji…), without loading it.
bool is_image_spec(const std::string& spec);
}  // namespace diffuse

namespace diffuse {
// ---- emoji: Noto Color Emoji as a labeled RGB data set (src/data/emoji.cpp, docs/emoji.md) ----
// Each colour glyph of NotoColorEmoji.ttf (Debian's fonts-noto-color-emoji) that a
// fully-qualified sequence of emoji-test.txt (Debian's unicode-data) reaches — a single
// code point through the cmap, a sequence (flags, skin tones, ZWJ) through the font's GSUB
// ligatures — is rendered by FreeType (136×128 premultiplied BGRA), composited onto the
// background, cropped to the centred 128×128 and area-averaged to image_size. The label is
// the sequence's Unicode emoji group (nine; the Component group is left out).
// Split: a sequence is in the test split iff FNV-1a-64(its key) % 10 == 0, the key being its
// code points in hex without U+FE0F and the skin-tone modifiers, so all skin tones of an
// emoji fall in the same split.
constexpr double kEmojiGrayChroma = 10.0;  // color_only drops glyphs whose chroma is below this

struct EmojiOptions {
  std::string font;                   // NotoColorEmoji.ttf ("": Debian's, under /usr/share/fonts)
  std::string emoji_test;             // emoji-test.txt ("": Debian's, under /usr/share/unicode)
  int64_t image_size = 32;            // 1 … 128 (128: native; divisors of 128 average whole blocks)
  std::string background = "white";   // white, black or #rrggbb
  std::string split = "train";        // train (~90%), test (~10%) or all
  bool color_only = false;            // drop near-gray glyphs (chroma < kEmojiGrayChroma)
  bool skin_tones = true;             // keep sequences holding a skin-tone modifier U+1F3FB…U+1F3FF
};

struct EmojiSet {
  torch::Tensor images;                  // (N, 3, S, S) uint8 RGB, in emoji-test.txt order
  torch::Tensor labels;                  // (N) int64 index into class_names
  std::vector<std::string> class_names;  // smileys-emotion, people-body, … flags
  std::vector<std::string> sequences;    // per image: its code points, "1F600", "1F1FA 1F1F8"
  std::vector<int64_t> glyphs;           // per image: glyph id in the font
  std::vector<double> chroma;            // per image: α-weighted mean of max(RGB) − min(RGB), 0 … 255
};

// Throws diffuse::Error naming the Debian package when the font or emoji-test.txt is missing.
EmojiSet load_emoji(const EmojiOptions& o = {});
// "emoji[:train|:test|:all][:color][:no-skin-tones]" → split, color_only, skin_tones over `base`.
EmojiOptions parse_emoji_spec(const std::string& spec, EmojiOptions base = {});
std::vector<std::string> emoji_class_names();  // the nine groups, label order
}  // namespace diffuse
