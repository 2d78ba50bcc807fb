// The emoji data set: Noto Color Emoji glyphs rendered with FreeType, labeled by the
// Unicode emoji groups of emoji-test.txt (see data.hpp and docs/emoji.md).
//
// Pipeline per glyph:
//   FreeType: FT_Select_Size(face, 0) (the one 109-ppem strike), FT_Load_Glyph(gid,
//   FT_LOAD_COLOR) decodes the CBDT PNG into a 136×128 premultiplied BGRA bitmap
//   p = (α·c/255, α) whose drawing lies in the centre 128 columns.
//   Composite ("over"): out = c·α/255 + bg·(1 − α/255) = p + bg·(1 − α/255), the same as
//   un-premultiplying c = 255·p/α and compositing, without the division.
//   Area average to S×S: output pixel (i, j) is the mean of the 128×128 pixels in rows
//   ⌊128i/S⌋ … ⌈128(i+1)/S⌉ − 1 (likewise columns) — torch's adaptive average pooling,
//   whole k×k blocks when S divides 128; rounded to uint8 once, at the end.
#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_TRUETYPE_TABLES_H
#include FT_TRUETYPE_TAGS_H

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

namespace emoji_impl {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFontPackage = "fonts-noto-color-emoji";
constexpr const char* kTestPackage = "unicode-data";
constexpr int64_t kNative = 128;  // side of the drawing inside each 136×128 bitmap

// ---- files --------------------------------------------------------------------------

// `known` if it exists, else the first file named `name` under `root` (sorted walk), else "".
std::string emoji_find_file(const std::string& known, const std::string& root, const std::string& name) {
  std::error_code ec;
  if (fs::is_regular_file(known, ec)) return known;
  std::vector<std::string> found;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec))
    if (it->path().filename() == name) found.push_back(it->path().string());
  std::sort(found.begin(), found.end());
  return found.empty() ? "" : found.front();
}

// `given`, or Debian's file found under `root`; a missing file names the package to install.
std::string emoji_locate(const std::string& given, const std::string& known, const std::string& root,
                         const std::string& name, const std::string& package) {
  if (!given.empty()) {
    if (!fs::is_regular_file(given))
      throw Error("'" + given + "' not found",
                  "install Debian's " + package + " (make setup), or pass the path of " + name);
    return given;
  }
  auto p = emoji_find_file(known, root, name);
  if (p.empty())
    throw Error(name + " is not installed (searched " + root + ")",
                "install Debian's " + package + ": sudo apt-get install " + package + " (or make setup)");
  return p;
}

std::string emoji_font_path(const std::string& given) {
  return emoji_locate(given, "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", "/usr/share/fonts",
                      "NotoColorEmoji.ttf", kFontPackage);
}

std::string emoji_test_path(const std::string& given) {
  return emoji_locate(given, "/usr/share/unicode/emoji/emoji-test.txt", "/usr/share/unicode", "emoji-test.txt",
                      kTestPackage);
}

// ---- emoji-test.txt ----------------------------------------------------------------------

struct EmojiEntry {
  std::vector<uint32_t> cps;  // code points without U+FE0F
  int64_t group = 0;          // index into emoji_class_names()
  std::string text;           // the code points in hex, "1F44B 1F3FB"
};

bool emoji_is_skin_tone(uint32_t cp) { return cp >= 0x1F3FB && cp <= 0x1F3FF; }

// "Smileys & Emotion" → "smileys-emotion"
std::string emoji_group_key(const std::string& g) {
  std::string out;
  for (char ch : g) {
    if (std::isalnum(static_cast<unsigned char>(ch))) out += char(std::tolower(static_cast<unsigned char>(ch)));
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

// Fully-qualified lines of the nine groups, in file order:
//   1F44B 1F3FB ; fully-qualified # 👋🏻 E1.0 waving hand: light skin tone
std::vector<EmojiEntry> emoji_read_test_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read '" + path + "'", "install Debian's " + std::string(kTestPackage));
  const auto names = emoji_class_names();
  std::vector<EmojiEntry> out;
  int64_t group = -1;  // -1: outside the nine groups (the Component group, the header)
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# group:", 0) == 0) {
      const auto key = emoji_group_key(line.substr(8));
      auto it = std::find(names.begin(), names.end(), key);
      group = it == names.end() ? -1 : int64_t(it - names.begin());
      continue;
    }
    if (group < 0 || line.empty() || line[0] == '#') continue;
    const auto semi = line.find(';');
    if (semi == std::string::npos) continue;
    const auto hash = line.find('#', semi);
    std::istringstream status(line.substr(semi + 1, hash == std::string::npos ? std::string::npos : hash - semi - 1));
    std::string st;
    status >> st;
    if (st != "fully-qualified") continue;
    EmojiEntry e;
    e.group = group;
    std::istringstream cps(line.substr(0, semi));
    std::string hex;
    while (cps >> hex) {
      const auto cp = uint32_t(std::stoul(hex, nullptr, 16));
      if (cp == 0xFE0F) continue;  // emoji presentation selector: the colour glyph is the default here
      e.cps.push_back(cp);
      e.text += (e.text.empty() ? "" : " ") + hex;
    }
    if (!e.cps.empty()) out.push_back(std::move(e));
  }
  if (out.empty()) throw Error("'" + path + "' lists no fully-qualified emoji", "is it Unicode's emoji-test.txt?");
  return out;
}

// The split key: the code points without skin-tone modifiers, as Unicode writes them (upper-case
// hex, at least four digits, one space between: "1F9D1 200D 1F91D 200D 1F9D1"); FNV-1a 64 of it.
uint64_t emoji_split_hash(const std::vector<uint32_t>& cps) {
  std::string key;
  char buf[16];
  for (uint32_t cp : cps) {
    if (emoji_is_skin_tone(cp)) continue;
    std::snprintf(buf, sizeof buf, "%s%04X", key.empty() ? "" : " ", unsigned(cp));
    key += buf;
  }
  uint64_t h = 14695981039346656037ull;  // FNV-1a: h = (h ⊕ byte) · 1099511628211
  for (unsigned char ch : key) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// ---- GSUB ligatures -------------------------------------------------------------------------

// Big-endian reads from a table with bounds checks (a damaged font is an error, not a crash).
struct Bytes {
  const std::vector<FT_Byte>& b;
  uint32_t u16(size_t o) const {
    if (o + 2 > b.size()) throw Error("the emoji font's GSUB table is truncated");
    return uint32_t(b[o]) << 8 | b[o + 1];
  }
  uint32_t u32(size_t o) const { return u16(o) << 16 | u16(o + 2); }
};

// Coverage table → glyph ids in coverage-index order (format 1: a list, 2: ranges).
std::vector<uint32_t> gsub_coverage(const Bytes& t, size_t o) {
  std::vector<uint32_t> out;
  const uint32_t fmt = t.u16(o), n = t.u16(o + 2);
  if (fmt == 1) {
    for (uint32_t i = 0; i < n; ++i) out.push_back(t.u16(o + 4 + 2 * i));
  } else if (fmt == 2) {
    for (uint32_t i = 0; i < n; ++i) {
      const size_t r = o + 4 + 6 * i;
      const uint32_t start = t.u16(r), stop = t.u16(r + 2), index = t.u16(r + 4);
      if (out.size() < index + (stop - start + 1)) out.resize(index + (stop - start + 1));
      for (uint32_t g = start; g <= stop; ++g) out[index + g - start] = g;
    }
  }
  return out;
}

// Every ligature (OpenType GSUB lookup type 4, also inside type-7 extensions):
// components → ligature glyph; the first lookup that defines a sequence wins.
std::map<std::vector<uint32_t>, uint32_t> gsub_ligatures(FT_Face face) {
  std::map<std::vector<uint32_t>, uint32_t> out;
  FT_ULong len = 0;
  if (FT_Load_Sfnt_Table(face, TTAG_GSUB, 0, nullptr, &len) != 0 || len == 0) return out;
  std::vector<FT_Byte> buf(len);
  if (FT_Load_Sfnt_Table(face, TTAG_GSUB, 0, buf.data(), &len) != 0) return out;
  const Bytes t{buf};
  const size_t lookups = t.u16(8);  // GSUB header: version (2×u16), script, feature, lookup list
  for (uint32_t l = 0, n = t.u16(lookups); l < n; ++l) {
    const size_t lk = lookups + t.u16(lookups + 2 + 2 * l);
    uint32_t type = t.u16(lk);
    for (uint32_t s = 0, ns = t.u16(lk + 4); s < ns; ++s) {
      size_t st = lk + t.u16(lk + 6 + 2 * s);
      uint32_t st_type = type;
      if (type == 7) {  // extension: format, wrapped type, 32-bit offset
        st_type = t.u16(st + 2);
        st += t.u32(st + 4);
      }
      if (st_type != 4 || t.u16(st) != 1) continue;
      // LigatureSubst format 1: coverage, ligature sets (one per covered first glyph).
      const auto first = gsub_coverage(t, st + t.u16(st + 2));
      const uint32_t sets = std::min<uint32_t>(t.u16(st + 4), uint32_t(first.size()));
      for (uint32_t k = 0; k < sets; ++k) {
        const size_t set = st + t.u16(st + 6 + 2 * k);
        for (uint32_t m = 0, nl = t.u16(set); m < nl; ++m) {
          const size_t lig = set + t.u16(set + 2 + 2 * m);
          const uint32_t glyph = t.u16(lig), count = t.u16(lig + 2);
          std::vector<uint32_t> comps{first[k]};
          for (uint32_t c = 1; c < count; ++c) comps.push_back(t.u16(lig + 4 + 2 * (c - 1)));
          out.emplace(std::move(comps), glyph);
        }
      }
    }
  }
  return out;
}

// ---- rendering --------------------------------------------------------------------------------

struct FtLibrary {
  FT_Library lib = nullptr;
  FT_Face face = nullptr;
  ~FtLibrary() {
    if (face) FT_Done_Face(face);
    if (lib) FT_Done_FreeType(lib);
  }
};

// (#rrggbb, white, black) → RGB 0…255
std::array<double, 3> emoji_parse_background(const std::string& s) {
  if (s == "white") return {255, 255, 255};
  if (s == "black") return {0, 0, 0};
  if (s.size() == 7 && s[0] == '#' &&
      std::all_of(s.begin() + 1, s.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); })) {
    const unsigned long v = std::stoul(s.substr(1), nullptr, 16);
    return {double(v >> 16 & 255), double(v >> 8 & 255), double(v & 255)};
  }
  throw Error("unknown background '" + s + "'", "valid backgrounds: white, black or #rrggbb (e.g. #808080)");
}

// Renders glyph `gid` into out (3, S, S) uint8; returns its chroma, the α-weighted mean of
// max(c) − min(c) over the straight colours c: Σ α·(max c − min c) / Σ α = Σ (max p − min p) / Σ α/255.
double emoji_render(FT_Face face, uint32_t gid, const std::array<double, 3>& bg, int64_t S, uint8_t* out) {
  if (FT_Load_Glyph(face, gid, FT_LOAD_COLOR) != 0)
    throw Error("FreeType cannot load emoji glyph " + std::to_string(gid));
  const FT_Bitmap& b = face->glyph->bitmap;
  if (b.pixel_mode != FT_PIXEL_MODE_BGRA || b.rows != unsigned(kNative) || b.width < unsigned(kNative))
    throw Error("emoji glyph " + std::to_string(gid) + " is not a 128-row colour bitmap (" +
                    std::to_string(b.width) + "×" + std::to_string(b.rows) + ")",
                "use Noto Color Emoji (Debian's " + std::string(kFontPackage) + ")");
  const int64_t x0 = (int64_t(b.width) - kNative) / 2;
  // Composite the 128×128 centre onto the background, float RGB (3, 128, 128).
  std::vector<double> rgb(3 * kNative * kNative);
  double chroma_sum = 0, alpha_sum = 0;
  for (int64_t y = 0; y < kNative; ++y) {
    const FT_Byte* row = b.buffer + y * b.pitch + 4 * x0;
    for (int64_t x = 0; x < kNative; ++x) {
      const FT_Byte* px = row + 4 * x;  // B, G, R, A premultiplied
      const double a = px[3] / 255.0, p[3] = {double(px[2]), double(px[1]), double(px[0])};
      for (int c = 0; c < 3; ++c) rgb[(c * kNative + y) * kNative + x] = p[c] + bg[c] * (1 - a);
      chroma_sum += std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]});
      alpha_sum += a;
    }
  }
  // Area average: adaptive pooling windows [⌊128i/S⌋, ⌈128(i+1)/S⌉).
  for (int64_t i = 0; i < S; ++i) {
    const int64_t y0 = i * kNative / S, y1 = ((i + 1) * kNative + S - 1) / S;
    for (int64_t j = 0; j < S; ++j) {
      const int64_t xa = j * kNative / S, xb = ((j + 1) * kNative + S - 1) / S;
      for (int c = 0; c < 3; ++c) {
        double sum = 0;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = xa; x < xb; ++x) sum += rgb[(c * kNative + y) * kNative + x];
        const double v = std::nearbyint(sum / double((y1 - y0) * (xb - xa)));
        out[(c * S + i) * S + j] = uint8_t(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return alpha_sum > 0 ? chroma_sum / alpha_sum : 0.0;
}

}  // namespace
}  // namespace emoji_impl

std::vector<std::string> emoji_class_names() {
  return {"smileys-emotion", "people-body", "animals-nature", "food-drink", "travel-places",
          "activities",      "objects",     "symbols",        "flags"};
}

EmojiOptions parse_emoji_spec(const std::string& spec, EmojiOptions o) {
  const std::string valid = "emoji[:train|:test|:all][:color][:no-skin-tones], e.g. emoji:test:color";
  if (spec.rfind("emoji", 0) != 0 || (spec.size() > 5 && spec[5] != ':'))
    throw Error("'" + spec + "' is not an emoji spec", valid);
  bool split_given = false;
  std::stringstream rest(spec.size() > 6 ? spec.substr(6) : "");
  std::string tok;
  while (std::getline(rest, tok, ':')) {
    if (tok == "train" || tok == "test" || tok == "all") {
      if (split_given) throw Error("'" + spec + "' names two splits", valid);
      o.split = tok;
      split_given = true;
    } else if (tok == "color") {
      o.color_only = true;
    } else if (tok == "no-skin-tones") {
      o.skin_tones = false;
    } else {
      throw Error("unknown part '" + tok + "' in '" + spec + "'", "valid: " + valid);
    }
  }
  if (spec.size() > 5 && spec.back() == ':') throw Error("'" + spec + "' ends with ':'", valid);
  return o;
}

EmojiSet load_emoji(const EmojiOptions& o) {
  using namespace emoji_impl;
  if (o.image_size < 1 || o.image_size > kNative)
    throw Error("emoji image size must be 1 … 128 (got " + std::to_string(o.image_size) + ")",
                "the glyphs are drawn at 128×128; 16, 32 and 64 average whole blocks");
  if (o.split != "train" && o.split != "test" && o.split != "all")
    throw Error("unknown emoji split '" + o.split + "'", "valid splits: train, test, all");
  const auto bg = emoji_parse_background(o.background);
  const std::string font_path = emoji_font_path(o.font);
  const auto entries = emoji_read_test_file(emoji_test_path(o.emoji_test));

  FtLibrary ft;
  if (FT_Init_FreeType(&ft.lib) != 0) throw Error("cannot initialise FreeType");
  if (FT_New_Face(ft.lib, font_path.c_str(), 0, &ft.face) != 0)
    throw Error("FreeType cannot open '" + font_path + "' as a font", "reinstall Debian's " + std::string(kFontPackage));
  if (!FT_HAS_COLOR(ft.face) || ft.face->num_fixed_sizes < 1 || FT_Select_Size(ft.face, 0) != 0)
    throw Error("'" + font_path + "' has no colour bitmaps", "use NotoColorEmoji.ttf from " + std::string(kFontPackage));
  const auto ligatures = gsub_ligatures(ft.face);

  // Sequence → glyph; keep the first sequence of each glyph; filter by split and skin tone.
  struct Item { uint32_t gid; const EmojiEntry* e; };
  std::vector<Item> items;
  std::set<uint32_t> seen;
  for (const auto& e : entries) {
    std::vector<uint32_t> gids;
    for (uint32_t cp : e.cps) gids.push_back(FT_Get_Char_Index(ft.face, cp));
    uint32_t gid = 0;
    if (std::find(gids.begin(), gids.end(), 0u) == gids.end()) {
      if (gids.size() == 1) gid = gids[0];
      else if (auto it = ligatures.find(gids); it != ligatures.end()) gid = it->second;
    }
    if (gid == 0 || !seen.insert(gid).second) continue;
    const bool test = emoji_split_hash(e.cps) % 10 == 0;
    if ((o.split == "train" && test) || (o.split == "test" && !test)) continue;
    if (!o.skin_tones && std::any_of(e.cps.begin(), e.cps.end(), emoji_is_skin_tone)) continue;
    items.push_back({gid, &e});
  }
  if (items.empty()) throw Error("no emoji of '" + font_path + "' match the sequences of emoji-test.txt");

  // Render (FreeType faces are not thread-safe: one after the other, ~0.5 s for all).
  const int64_t S = o.image_size, n = int64_t(items.size());
  auto images = torch::empty({n, 3, S, S}, torch::kUInt8);
  EmojiSet out;
  out.class_names = emoji_class_names();
  std::vector<int64_t> labels;
  int64_t kept = 0;
  for (const auto& it : items) {
    const double chroma = emoji_render(ft.face, it.gid, bg, S, images[kept].data_ptr<uint8_t>());
    if (o.color_only && chroma < kEmojiGrayChroma) continue;
    labels.push_back(it.e->group);
    out.sequences.push_back(it.e->text);
    out.glyphs.push_back(it.gid);
    out.chroma.push_back(chroma);
    ++kept;
  }
  if (kept == 0) throw Error("every emoji of the " + o.split + " split is near-gray", "drop :color");
  out.images = images.slice(0, 0, kept).clone();
  out.labels = torch::tensor(labels, torch::kLong);
  return out;
}

// The data source of an emoji spec (DataOptions: image_size 0 → 32, background; data_dir:
// a folder holding NotoColorEmoji.ttf and emoji-test.txt instead of Debian's locations).
std::unique_ptr<DataSource> make_emoji_source(const std::string& spec, const DataOptions& d) {
  EmojiOptions o = parse_emoji_spec(spec);
  o.image_size = d.image_size > 0 ? d.image_size : 32;
  o.background = d.background;
  if (!d.data_dir.empty()) {
    o.font = d.data_dir + "/NotoColorEmoji.ttf";
    o.emoji_test = d.data_dir + "/emoji-test.txt";
  }
  auto set = load_emoji(o);
  return make_image_source(spec, set.images, set.labels, set.class_names);
}

}  // namespace diffuse
