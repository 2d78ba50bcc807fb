// Every process of the test binary gets its own temporary folder: `make test` runs the tests
// one per core (ctest -j, each test its own process through gtest_discover_tests), and tests
// name their folders under ::testing::TempDir() or std::filesystem::temp_directory_path() by
// the test, not by the process. TEST_TMPDIR (read by TempDir()) and TMPDIR (read by
// temp_directory_path()) point into <system temp>/diffuse_tests_<pid>/ for the life of the
// process, which removes the folder when it exits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace {

struct PrivateTmp {
  std::filesystem::path dir;
  PrivateTmp() {
    std::error_code ec;
    auto base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    dir = base / ("diffuse_tests_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir, ec);
    if (ec) return;  // keep the system's: the tests then share it, as before
    ::setenv("TMPDIR", dir.c_str(), 1);
    ::setenv("TEST_TMPDIR", dir.c_str(), 1);
  }
  ~PrivateTmp() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const PrivateTmp private_tmp;

TEST(PrivateTmp, TempFoldersAreThisProcesssOwn) {
  const std::string mine = "diffuse_tests_" + std::to_string(::getpid());
  EXPECT_NE(::testing::TempDir().find(mine), std::string::npos) << ::testing::TempDir();
  EXPECT_NE(std::filesystem::temp_directory_path().string().find(mine), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_directory(std::filesystem::temp_directory_path()));
}

}  // namespace
